#!/usr/bin/env node
'use strict'
// Mineflayer bots driven by JSON lines, for tests and the benchmark.
//
//   node bots.js --host H --port P
//
// stdin:  {"id": 1, "op": "join", "name": "ana"}            one command per line
// stdout: {"id": 1, "ok": true, ...} or {"id": 1, "ok": false, "error": "..."}
//         {"event": "chat" | "actionbar" | "end", "name": "ana", "text": "..."}   what a player sees
// Ops: join, quit, chat, pos, dig, dig_together, ground, blocks, jump, inventory, walk.
// The bots know only what the game server sends them: chat, the action bar, blocks and items.
const readline = require('readline')
const mineflayer = require('mineflayer')
const { Vec3 } = require('vec3')

const VERSION = '1.21.4'
const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt }
const host = opt('--host', '127.0.0.1')
const port = Number(opt('--port', '25565'))
const bots = new Map()

process.stdout.on('error', () => process.exit(0)) // the driver went away
function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
// Chat text without its colour codes.
function plain (msg) { return msg.toString().replace(/\u00a7[0-9a-fk-or]/g, '') }

function join (name) {
  return new Promise((resolve, reject) => {
    const bot = mineflayer.createBot({ host, port, username: name, version: VERSION, auth: 'offline', checkTimeoutInterval: 120000 })
    let spawned = false
    bot.on('messagestr', (text, position) => {
      if (position === 'game_info') return
      out({ event: 'chat', name, text: text.replace(/\u00a7[0-9a-fk-or]/g, '') })
    })
    bot.on('actionBar', (msg) => out({ event: 'actionbar', name, text: plain(msg) }))
    bot.on('error', (e) => { if (!spawned) reject(e) })
    bot.on('kicked', (reason) => out({ event: 'kicked', name, text: String(reason) }))
    bot.on('end', (reason) => {
      if (bots.get(name) === bot) bots.delete(name)
      out({ event: 'end', name, text: String(reason) })
      if (!spawned) reject(new Error(`connection ended: ${reason}`))
    })
    bot.once('spawn', async () => {
      spawned = true
      bots.set(name, bot)
      try { await bot.waitForChunksToLoad() } catch (e) {}
      await chunksSettled(bot)
      resolve({ pos: vec(bot.entity.position), gamemode: bot.game.gameMode })
    })
  })
}

function vec (v) { return [v.x, v.y, v.z] }
function bot (name) {
  const b = bots.get(name)
  if (!b) throw new Error(`no bot ${name}`)
  return b
}
// The highest block of a column that a treasure could rest on (not air, water or a plant).
function ground (b, x, z) {
  for (let y = 120; y > -64; y--) {
    const bl = b.blockAt(new Vec3(x, y, z))
    if (bl && bl.boundingBox === 'block') return y
  }
  return null
}
function sleep (ms) { return new Promise(resolve => setTimeout(resolve, ms)) }
async function waitChunk (b, x, z, ms = 10000) {
  const t0 = Date.now()
  let refreshed = false
  while (!b.blockAt(new Vec3(x, 0, z))) {
    if (!refreshed && Date.now() - t0 > 3000) {
      refreshed = true
      await refreshChunks(b)
    }
    if (Date.now() - t0 > ms) throw new Error(`chunk of ${x},${z} not loaded`)
    await sleep(50)
  }
}
// flying-squid sends the chunks around a player after a move of more than 16 blocks, but not while an
// earlier send is still going (its `sendingChunks`), and it does not look again when that send ends: a
// teleport during a send leaves the chunks around its destination unsent. So a bot lets each send
// finish (no new chunk for a while) before it moves far, and out of view and back (two operator
// teleports, sent to Cairn as teleports) makes the server send the chunks afresh.
async function chunksSettled (b, quietMs = 400, maxMs = 8000) {
  let last = Date.now()
  const seen = () => { last = Date.now() }
  b.on('chunkColumnLoad', seen)
  try {
    const t0 = Date.now()
    while (Date.now() - last < quietMs && Date.now() - t0 < maxMs) await sleep(50)
  } finally {
    b.removeListener('chunkColumnLoad', seen)
  }
}
async function refreshChunks (b) {
  const p = b.entity.position.clone()
  for (const to of [[p.x + 160, p.y, p.z], [p.x, p.y, p.z]]) {
    await chunksSettled(b)
    const moved = new Promise(resolve => b.once('forcedMove', resolve))
    b.chat(`/tp ${to[0].toFixed(2)} ${to[1].toFixed(2)} ${to[2].toFixed(2)}`)
    await Promise.race([moved, sleep(3000)])
  }
}

const ops = {
  async join (c) {
    const r = await join(c.name)
    // The server may set the game mode just after spawn: wait for the one the caller expects.
    const t0 = Date.now()
    while (c.gamemode && bot(c.name).game.gameMode !== c.gamemode && Date.now() - t0 < 5000) await sleep(20)
    return { ...r, gamemode: bot(c.name).game.gameMode }
  },
  async quit (c) {
    const b = bot(c.name)
    const ended = new Promise(resolve => b.once('end', resolve))
    b.quit()
    await ended
    return {}
  },
  async quit_all () {
    const all = [...bots.values()]
    await Promise.all(all.map(b => new Promise(resolve => { b.once('end', resolve); b.quit() })))
    return { quit: all.length }
  },
  async chat (c) { bot(c.name).chat(c.text); return {} },
  async pos (c) { return { pos: vec(bot(c.name).entity.position) } },
  // Break one block and wait until the game shows it gone.
  async dig (c) {
    const b = bot(c.name)
    const p = new Vec3(...c.pos)
    await waitChunk(b, p.x, p.z)
    const block = b.blockAt(p)
    if (!block || block.name === 'air') return { dug: false, block: block && block.name }
    await b.dig(block, 'ignore')
    return { dug: true, block: block.name }
  },
  // Several bots break the same block in the same turn of the loop: their packets leave together.
  // `digs`: [{name, pos}], one block per bot (the same block, or blocks next to each other).
  async dig_together (c) {
    const jobs = c.digs.map(d => ({ b: bot(d.name), p: new Vec3(...d.pos) }))
    for (const { b, p } of jobs) {
      await waitChunk(b, p.x, p.z)
      const block = b.blockAt(p)
      if (!block || block.boundingBox !== 'block') throw new Error(`no solid block at ${p}`)
    }
    const results = await Promise.allSettled(jobs.map(({ b, p }) => b.dig(b.blockAt(p), 'ignore')))
    return { results: results.map(r => r.status) }
  },
  // /tp onto a column (as an operator), wait until the game has moved the player, then break the
  // block under the player's feet. Returns what the player stood on.
  async tp_dig (c) {
    const b = bot(c.name)
    await waitChunk(b, c.x, c.z)
    const y = ground(b, c.x, c.z)
    if (y === null) return { dug: false }
    const t0 = Date.now()
    const moved = new Promise(resolve => b.once('forcedMove', resolve))
    b.chat(`/tp ${c.x} ${y + 1} ${c.z}`)
    await Promise.race([moved, sleep(3000)])
    const t1 = Date.now()
    await sleep(c.settle ?? 100)
    const block = b.blockAt(new Vec3(c.x, y, c.z))
    await b.dig(block, 'ignore')
    return { dug: true, y, block: block.name, ms: [t1 - t0, Date.now() - t1], mode: b.game.gameMode }
  },
  async tp (c) {
    const b = bot(c.name)
    await chunksSettled(b) // a send still going would leave the destination's chunks unsent
    const moved = new Promise(resolve => b.once('forcedMove', resolve))
    b.chat(`/tp ${c.x} ${c.y} ${c.z}`)
    await Promise.race([moved, sleep(3000)])
    return { pos: vec(b.entity.position) }
  },
  async ground (c) {
    const b = bot(c.name)
    await waitChunk(b, c.x, c.z)
    return { y: ground(b, c.x, c.z) }
  },
  // The names of blocks, and whether each is a full solid cube.
  async blocks (c) {
    const b = bot(c.name)
    const found = await Promise.all(c.positions.map(async (q) => {
      await waitChunk(b, q[0], q[2])
      return b.blockAt(new Vec3(...q))
    }))
    return { blocks: found.map(bl => bl ? bl.name : null), solid: found.map(bl => !!bl && bl.boundingBox === 'block') }
  },
  // Move the player by (dx, dy, dz) in a single position packet, with no teleport.
  async jump (c) {
    const b = bot(c.name)
    const p = b.entity.position.offset(c.dx || 0, c.dy || 0, c.dz || 0)
    b.entity.position = p
    b.entity.velocity.set(0, 0, 0)
    // One position packet, as a client would send it; mineflayer's physics pauses over unloaded chunks.
    b._client.write('position', { x: p.x, y: p.y, z: p.z, onGround: false, flags: { onGround: false, hasHorizontalCollision: false } })
    await sleep(100)
    return { pos: vec(b.entity.position) }
  },
  // Walk (a real walk, a few blocks a second) towards x, z for at most `ms`.
  async walk (c) {
    const b = bot(c.name)
    const target = new Vec3(c.x, b.entity.position.y, c.z)
    await b.lookAt(target.offset(0, 1.6, 0), true)
    b.setControlState('forward', true)
    b.setControlState('jump', !!c.jump)
    const t0 = Date.now()
    while (Date.now() - t0 < (c.ms || 3000)) {
      const d = b.entity.position.distanceTo(new Vec3(c.x, b.entity.position.y, c.z))
      if (d < 1) break
      await b.lookAt(new Vec3(c.x, b.entity.position.y + 1.6, c.z), true)
      await sleep(50)
    }
    b.clearControlStates()
    return { pos: vec(b.entity.position) }
  },
  async inventory (c) {
    const items = {}
    for (const it of bot(c.name).inventory.items()) items[it.name] = (items[it.name] || 0) + it.count
    return { items }
  },
  async fill (c) { // fill every inventory slot with the given item, through the /give-less creative path
    const b = bot(c.name)
    const Item = require('prismarine-item')(b.registry)
    const def = b.registry.itemsByName[c.item]
    for (let slot = 9; slot <= 44; slot++) await b.creative.setInventorySlot(slot, new Item(def.id, def.stackSize))
    return {}
  }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let c
  try { c = JSON.parse(line) } catch (e) { return out({ ok: false, error: `bad json: ${line}` }) }
  const f = ops[c.op]
  if (!f) return out({ id: c.id, ok: false, error: `unknown op ${c.op}` })
  Promise.resolve().then(() => f(c)).then(
    r => out({ id: c.id, ok: true, ...r }),
    e => out({ id: c.id, ok: false, error: String(e && e.message ? e.message : e) })
  )
})
rl.on('close', () => {
  for (const b of bots.values()) b.quit()
  setTimeout(() => process.exit(0), 200)
})
process.on('SIGTERM', () => process.exit(0))
out({ event: 'ready' })
