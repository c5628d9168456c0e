#!/usr/bin/env node
'use strict'
// A flying-squid Minecraft server with the Cairn plugin (docs/integration-minecraft.md).
//
//   node integrations/minecraft/server.js --port P --cairn-url URL [--world NAME] [--pregen-radius R] [--ops]
//
// Keys come from CAIRN_GAME_KEY and CAIRN_ADMIN_KEY. Offline mode: no Mojang account is needed.
const path = require('path')
const { performance, monitorEventLoopDelay } = require('perf_hooks')

const VERSION = '1.21.4' // listed as tested by both flying-squid and mineflayer

const USAGE = `usage: node server.js --port P --cairn-url URL [--world NAME] [--pregen-radius R] [--ops]
       [--host H] [--seed N] [--gamemode survival|creative] [--state-dir DIR] [--view-distance N]
       [--no-plugin] [--stats-every SECONDS] [--verbose]`

function parseArgs (argv) {
  const o = {
    port: null, cairnUrl: null, world: 'overworld', pregenRadius: 256, ops: false, host: '127.0.0.1', seed: 1,
    gamemode: 'survival', stateDir: null, viewDistance: 6, plugin: true, statsEvery: 0, verbose: false
  }
  const need = (i, name) => {
    if (i + 1 >= argv.length) fail(`${name} needs a value`)
    return argv[i + 1]
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    switch (a) {
      case '--port': o.port = Number(need(i, a)); i++; break
      case '--cairn-url': o.cairnUrl = need(i, a); i++; break
      case '--world': o.world = need(i, a); i++; break
      case '--pregen-radius': o.pregenRadius = Number(need(i, a)); i++; break
      case '--ops': o.ops = true; break
      case '--host': o.host = need(i, a); i++; break
      case '--seed': o.seed = Number(need(i, a)); i++; break
      case '--gamemode': o.gamemode = need(i, a); i++; break
      case '--state-dir': o.stateDir = need(i, a); i++; break
      case '--view-distance': o.viewDistance = Number(need(i, a)); i++; break
      case '--no-plugin': o.plugin = false; break
      case '--stats-every': o.statsEvery = Number(need(i, a)); i++; break
      case '--verbose': o.verbose = true; break
      case '-h': case '--help': console.log(USAGE); process.exit(0); break
      default: fail(`unknown option ${a}`)
    }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) fail('--port must be a port number')
  if (o.plugin && !o.cairnUrl) fail('--cairn-url is required')
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(o.world)) fail('--world must be 1-64 characters from [A-Za-z0-9_.:-]')
  if (!Number.isFinite(o.pregenRadius) || o.pregenRadius < 0 || o.pregenRadius > 4096) fail('--pregen-radius must be 0..4096')
  if (!['survival', 'creative'].includes(o.gamemode)) fail('--gamemode must be survival or creative')
  if (o.plugin && (!process.env.CAIRN_GAME_KEY || !process.env.CAIRN_ADMIN_KEY)) {
    fail('CAIRN_GAME_KEY and CAIRN_ADMIN_KEY must be set in the environment')
  }
  return o
}

function fail (msg) {
  console.error(`server.js: ${msg}\n${USAGE}`)
  process.exit(2)
}

async function main () {
  const o = parseArgs(process.argv.slice(2))
  const mc = require('flying-squid')
  const gameMode = o.gamemode === 'creative' ? 1 : 0
  const serv = mc.createMCServer({
    motd: 'Cairn treasure hunt',
    host: o.host,
    port: o.port,
    'max-players': 100,
    'online-mode': false,
    logging: o.verbose,
    gameMode,
    difficulty: 0, // peaceful: no mobs interrupt a hunt
    generation: { name: 'diamond_square', options: { worldHeight: 80, seed: o.seed } },
    kickTimeout: 30000,
    plugins: {},
    modpe: false,
    'view-distance': o.viewDistance,
    'player-list-text': { header: { text: 'Cairn' }, footer: { text: 'treasure hunt' } },
    'everybody-op': o.ops,
    'max-entities': 100,
    version: VERSION
  })
  serv.on('error', e => console.error(`server error: ${e && e.stack}`))
  require('./lib/compat').apply(serv)

  let plugin = null
  if (o.plugin) {
    const cairnPlugin = require(path.join(__dirname, 'plugin.js'))
    if (o.stateDir) require('fs').mkdirSync(o.stateDir, { recursive: true })
    plugin = cairnPlugin({
      cairnUrl: o.cairnUrl,
      gameKey: process.env.CAIRN_GAME_KEY,
      adminKey: process.env.CAIRN_ADMIN_KEY,
      world: o.world,
      stateDir: o.stateDir
    })
    serv.addPlugin('cairn', plugin, {})
  }
  // flying-squid's 1.21.4 login packet does not carry the game mode, so clients start in survival:
  // send it again once the player has spawned.
  serv.on('newPlayer', (player) => {
    player.once('spawned', () => player.setGameMode(gameMode))
  })

  await new Promise((resolve, reject) => {
    serv.once('listening', resolve)
    serv.once('error', reject)
  })
  await serv.waitForReady(30000)
  if (plugin) {
    try {
      await serv.cairn.prepare(o.pregenRadius)
    } catch (e) {
      console.error(`server.js: ${e.message}`)
      process.exit(1)
    }
    serv.cairn.start()
  } else {
    await serv.pregenWorld(serv.overworld, Math.ceil(o.pregenRadius / 16))
  }
  if (o.statsEvery > 0) startStats(serv, o.statsEvery)

  let stopping = false
  const stop = async (sig) => {
    if (stopping) return
    stopping = true
    if (serv.cairn) await serv.cairn.stop()
    for (const p of serv.players) { try { p.kick('Server closed') } catch (e) {} }
    try { await serv.destroy() } catch (e) {}
    process.exit(0)
  }
  // flying-squid's own hook exits at once with 128 + signal; this one lets the plugin save its queue first.
  process.removeAllListeners('SIGINT')
  process.removeAllListeners('SIGTERM')
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  console.log(`minecraft server ready on port ${serv.listeningPort ?? o.port}`)
}

// One JSON line per interval: the event loop's busy time per tick (what the tick costs) and the delay.
function startStats (serv, seconds) {
  const hist = monitorEventLoopDelay({ resolution: 10 })
  hist.enable()
  let elu = performance.eventLoopUtilization()
  let ticks = serv.tickCount
  let t = performance.now()
  let cpu = process.cpuUsage()
  let pluginMs = serv.cairn ? serv.cairn.st.stats.busy_ms : 0
  setInterval(() => {
    const now = performance.now()
    const e = performance.eventLoopUtilization(elu)
    const n = serv.tickCount - ticks
    const c = process.cpuUsage(cpu)
    const pm = serv.cairn ? serv.cairn.st.stats.busy_ms : 0
    const line = {
      stats: true,
      seconds: (now - t) / 1000,
      ticks: n,
      busy_ms_per_tick: n ? (e.active / n) : null,
      cpu_ms_per_tick: n ? ((c.user + c.system) / 1000 / n) : null,
      plugin_ms_per_tick: n && serv.cairn ? (pm - pluginMs) / n : null,
      utilization: e.utilization,
      loop_delay_p99_ms: hist.percentile(99) / 1e6,
      players: serv.players.length
    }
    if (serv.cairn) line.cairn = { ...serv.cairn.st.stats, latency: serv.cairn.cairn.takeLatencies() }
    console.log(JSON.stringify(line))
    hist.reset()
    elu = performance.eventLoopUtilization()
    ticks = serv.tickCount
    t = now
    cpu = process.cpuUsage()
    pluginMs = pm
  }, seconds * 1000).unref()
}

main().catch(e => {
  console.error(`server.js: ${e.stack || e}`)
  process.exit(1)
})
