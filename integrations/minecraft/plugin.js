'use strict'
// The Cairn plugin for flying-squid: the game's events become Cairn calls (docs/integration-minecraft.md).
//
// The game loop never waits on Cairn. Every call is asynchronous; digs wait in a queue with their
// request_id and are retried with backoff while Cairn is down; grants are acked only after their
// items are in the inventory (or on the ground at the player's feet).
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const { Vec3 } = require('vec3')
const { Cairn, CairnError, retryable } = require('./lib/cairn')
const { classTable, scanChunk, scanColumn, AIR, WATER, SOLID } = require('./lib/sites')

const POSITION_EVERY_TICKS = 5 // 4 Hz at 20 ticks per second
const GRANT_SWEEP_MS = 15000
const HUNT_REFRESH_MS = 10000
const UPLOAD_DEBOUNCE_MS = 2000 // after new chunks
const EDIT_DEBOUNCE_MS = 10000 // after blocks changed in known chunks only
const MAX_BACKOFF_MS = 8000
const MAX_DIGS_PER_BATCH = 500
const DIG_QUEUE_MAX = 64 // per player: a player who breaks blocks faster than Cairn answers loses the oldest misses

const TIER_COLOR = { common: '&f', uncommon: '&a', rare: '&9', epic: '&5', legendary: '&6' }
const TEMP_COLOR = { burning: '&4', hot: '&c', warm: '&6', cool: '&b', cold: '&9' }
const VERTICAL = { above: 'above you', level: 'at your level', below: 'below you' }

function cairnPlugin (config) {
  const cfg = {
    world: 'overworld',
    stateDir: null,
    log: (msg) => console.log(`[cairn] ${msg}`),
    ...config
  }
  const log = cfg.log
  const cairn = new Cairn({ url: cfg.cairnUrl, gameKey: cfg.gameKey, adminKey: cfg.adminKey })
  // Shared between the server hook and the player hooks.
  const st = {
    serv: null,
    hunts: new Map(), // id -> {id, name, state, world, ends_at, treasures_left, treasures_total}
    chunks: new Map(), // "cx,cz" -> {cols, counts, n, text}: per-column NDJSON, text joined once per change
    editedColumns: new Set(), // "x,z" of changed blocks, rescanned in the next scan pass
    newChunks: false, // the set gained chunks since the last upload (vs. only edits)
    scanQueue: [],
    sitesDirty: false,
    uploading: null,
    lastUpload: 0,
    siteCount: 0,
    digs: [], // queued digs: {player, hunt, body, tries}
    inFlight: null, // the batch on the wire
    backoffUntil: 0,
    backoffMs: 0,
    cairnDown: false,
    delivered: new Map(), // grant_id -> player: delivered, not yet acked (persisted)
    acked: new Set(), // grant ids acked in this run: never delivered twice
    delivering: new Set(), // players whose grants are being fetched
    recentFinds: [], // {hunt, at: Vec3, player, treasure, t}: who was first at a spot, for `taken`
    stopFollow: null,
    timers: [],
    stats: { digs: 0, found: 0, taken: 0, retries: 0, positions: 0, granted: 0, busy_ms: 0 }
  }

  // The plugin's own CPU time (ms), for the tick benchmark: every entry point from the game and every
  // handler of a Cairn reply is wrapped. Node's own socket and HTTP parsing is not in it.
  function timed (fn) {
    return function (...args) {
      const t0 = process.cpuUsage()
      try { return fn.apply(this, args) } finally {
        const c = process.cpuUsage(t0)
        st.stats.busy_ms += (c.user + c.system) / 1000
      }
    }
  }
  cairn.onBusy = (ms) => { st.stats.busy_ms += ms }

  // ---- persistence of delivered-but-unacked grants --------------------------------------------
  const deliveredFile = cfg.stateDir ? path.join(cfg.stateDir, 'delivered-grants.json') : null
  if (deliveredFile) {
    try {
      for (const [gid, player] of Object.entries(JSON.parse(fs.readFileSync(deliveredFile, 'utf8')))) st.delivered.set(gid, player)
    } catch (e) { /* first start */ }
  }
  const queueFile = cfg.stateDir ? path.join(cfg.stateDir, 'dig-queue.json') : null
  if (queueFile) {
    try {
      st.digs = JSON.parse(fs.readFileSync(queueFile, 'utf8'))
      fs.rmSync(queueFile)
      log(`${st.digs.length} digs from the last run are queued`)
    } catch (e) { /* nothing queued */ }
  }
  let saving = Promise.resolve()
  function saveDelivered () {
    if (!deliveredFile) return saving
    const text = JSON.stringify(Object.fromEntries(st.delivered))
    saving = saving.then(async () => {
      const tmp = deliveredFile + '.tmp'
      await fs.promises.writeFile(tmp, text)
      await fs.promises.rename(tmp, deliveredFile)
    }).catch(e => log(`could not save ${deliveredFile}: ${e.message}`))
    return saving
  }

  // ---- messages --------------------------------------------------------------------------------
  // `&` colour codes: parsed by flying-squid for JSON chat; NBT chat (1.20.3+) carries them as `§` codes.
  function component (text) {
    const serv = st.serv
    if (serv.supportFeature('chatPacketsUseNbtComponents')) text = text.replace(/&([0-9a-fk-or])/g, '\u00a7$1')
    return serv._createChatComponent(text)
  }
  function tell (player, text) {
    const serv = st.serv
    try {
      if (serv.supportFeature('signedChat')) {
        player._client.write('system_chat', { content: component(text).toNetworkFormat(), type: 1, isActionBar: false })
      } else {
        player.chat(text)
      }
    } catch (e) { /* the player left */ }
  }
  function actionBar (player, text) {
    const serv = st.serv
    try {
      const comp = component(text)
      if (serv.supportFeature('signedChat')) {
        player._client.write('system_chat', { content: comp.toNetworkFormat(), type: 1, isActionBar: true })
      } else {
        player._client.write('chat', { message: comp.toNetworkFormat(), position: 2, sender: '0' })
      }
    } catch (e) { /* the player left */ }
  }
  function broadcast (text) {
    for (const p of st.serv.players) tell(p, text)
  }
  function online (name) {
    return st.serv.players.find(p => p.username === name && !p.disconnected)
  }
  function inWorld (player) {
    return player.world === st.serv.overworld
  }
  function blockPos (v) {
    return [Math.floor(v.x), Math.floor(v.y), Math.floor(v.z)]
  }
  function duration (seconds) {
    seconds = Math.max(0, Math.round(seconds))
    if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h ${Math.floor(seconds % 3600 / 60)}m`
    if (seconds >= 60) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`
    return `${seconds}s`
  }
  function activeHunts () {
    const now = Date.now()
    return [...st.hunts.values()].filter(h => h.world === cfg.world && h.state === 'active' &&
      (!h.ends_at || Date.parse(h.ends_at) > now))
  }
  function temperatureText (temp, vertical) {
    if (!temp) return ''
    const v = vertical ? ` &7(${VERTICAL[vertical] || vertical})` : ''
    return `${TEMP_COLOR[temp] || '&f'}${temp.toUpperCase()}${v}`
  }
  function itemsText (items) {
    return items.map(i => `${i.count} ${i.item.replace(/^minecraft:/, '').replace(/_/g, ' ')}`).join(', ')
  }

  // ---- hunts -----------------------------------------------------------------------------------
  async function refreshHunts () {
    try {
      const body = await cairn.request('GET', '/v1/hunts')
      st.hunts = new Map(body.hunts.map(h => [h.id, h]))
      if (st.cairnDown) cairnBack()
    } catch (e) {
      if (retryable(e)) cairnUnreachable(e)
      else log(`listing hunts failed: ${e.message}`)
    }
  }

  // ---- sites: scan generated chunks, upload them ----------------------------------------------
  let table = null
  // A changed block changes the sites of its column only: rescan that column.
  async function rescanEdits () {
    const edits = [...st.editedColumns]
    st.editedColumns.clear()
    for (const key of edits) {
      const [x, z] = key.split(',').map(Number)
      const cx = Math.floor(x / 16)
      const cz = Math.floor(z / 16)
      const entry = st.chunks.get(`${cx},${cz}`)
      if (!entry || !entry.cols.length) continue // not scanned yet: its scan will see the change
      const column = await st.serv.overworld.getColumn(cx, cz)
      if (!column) continue
      const i = (x - cx * 16) * 16 + (z - cz * 16)
      const c = scanColumn(column, cx, cz, x - cx * 16, z - cz * 16, table)
      if (c.text === entry.cols[i]) continue
      st.siteCount += c.n - entry.counts[i]
      entry.n += c.n - entry.counts[i]
      entry.cols[i] = c.text
      entry.counts[i] = c.n
      entry.text = null
      st.sitesDirty = true
    }
  }
  function queueChunk (cx, cz) {
    const key = `${cx},${cz}`
    if (st.chunks.has(key)) return
    st.chunks.set(key, null)
    st.scanQueue.push([cx, cz])
  }
  // Scans a few chunks per turn of the event loop, so a burst of generation never stalls a tick.
  let scanning = false
  async function scanSome () {
    if (scanning) return
    scanning = true
    try {
      await rescanEdits()
      while (st.scanQueue.length) {
        const t0 = Date.now()
        while (st.scanQueue.length && Date.now() - t0 < 5) {
          const [cx, cz] = st.scanQueue.shift()
          const column = await st.serv.overworld.getColumn(cx, cz)
          const scanned = column ? scanChunk(column, cx, cz, table) : { cols: [], counts: new Uint16Array(256), n: 0, text: '' }
          st.chunks.set(`${cx},${cz}`, scanned)
          st.siteCount += scanned.n
          st.sitesDirty = true
          st.newChunks = true
        }
        await rescanEdits()
        await new Promise(resolve => setImmediate(resolve))
      }
    } finally {
      scanning = false
    }
    scheduleUpload()
  }
  function scheduleUpload () {
    if (!st.sitesDirty || st.uploading || st.uploadTimer) return
    const wait = Math.max(0, st.lastUpload + (st.newChunks ? UPLOAD_DEBOUNCE_MS : EDIT_DEBOUNCE_MS) - Date.now())
    st.uploadTimer = setTimeout(() => { st.uploadTimer = null; uploadSites().catch(() => {}) }, wait)
  }
  // PUT /v1/worlds/{world}/sites replaces the whole set: send every site known so far.
  async function uploadSites () {
    if (st.uploading) return st.uploading
    st.uploading = (async () => {
      let delay = 250
      for (;;) {
        st.sitesDirty = false
        st.newChunks = false
        const parts = []
        for (const entry of st.chunks.values()) {
          if (!entry || !entry.n) continue
          if (entry.text === null) entry.text = entry.cols.join('')
          parts.push(entry.text)
        }
        const body = parts.join('')
        if (!body) return null // nothing generated yet: Cairn refuses an empty upload
        try {
          const reply = await cairn.request('PUT', `/v1/worlds/${encodeURIComponent(cfg.world)}/sites`, body,
            { admin: true, contentType: 'application/x-ndjson', timeoutMs: 120000 })
          st.lastUpload = Date.now()
          log(`uploaded ${reply.sites} sites of ${st.chunks.size} chunks to world ${cfg.world}`)
          return reply
        } catch (e) {
          if (!retryable(e)) { st.sitesDirty = true; throw e }
          st.sitesDirty = true
          await new Promise(resolve => setTimeout(resolve, delay))
          delay = Math.min(delay * 2, MAX_BACKOFF_MS)
        }
      }
    })()
    try { return await st.uploading } finally {
      st.uploading = null
      scheduleUpload()
    }
  }

  // ---- one request per 5 ticks (4 Hz): the positions of the players, then the queued digs ---------
  // One POST /v1/batch carries both, in that order, so a teleport reaches Cairn before a dig made
  // right after it, and two digs of the same tick are decided in the same request.
  function flush () {
    if (st.inFlight || Date.now() < st.backoffUntil) return
    const updates = []
    const players = []
    for (const p of st.serv.players) {
      const c = p.cairn
      if (!c || p.disconnected || !inWorld(p)) continue
      // Every player, moved or not: Cairn measures speed from the last update, so a player who stood
      // still must be seen standing still, or a jump right after would pass for a walk of seconds.
      const u = { player: p.username, pos: blockPos(p.position) }
      if (c.teleport) u.teleport = true
      updates.push(u)
      players.push(p)
    }
    const digs = st.digs.splice(0, MAX_DIGS_PER_BATCH)
    if (!updates.length && !digs.length) return
    for (const p of players) p.cairn.teleport = false
    const ops = []
    if (updates.length) ops.push({ op: 'positions', world: cfg.world, updates })
    for (const d of digs) {
      d.tries++
      ops.push({ op: 'dig', hunt: d.hunt, ...d.body })
    }
    st.stats.positions += updates.length
    st.inFlight = sendBatch(ops, updates.length ? players : null, digs).finally(() => { st.inFlight = null })
  }
  async function sendBatch (ops, players, digs) {
    let reply
    try {
      reply = await cairn.request('POST', '/v1/batch', { ops })
    } catch (e) {
      // Cairn is away: the digs wait with their request_id, positions are resent as teleports.
      if (players) for (const p of players) if (p.cairn) p.cairn.teleport = true
      if (retryable(e)) {
        requeue(digs)
        cairnUnreachable(e)
      } else {
        log(`batch refused: ${e.message}`)
      }
      return
    }
    if (st.cairnDown) cairnBack()
    timed(() => {
      let k = 0
      if (players) {
        const r = reply.results[k++]
        if (r.error) {
          for (const p of players) if (p.cairn) p.cairn.teleport = true
          log(`positions refused: ${r.error.code} (${r.error.message})`)
        } else {
          for (const err of r.errors || []) flagged(players[err.index], err.error)
          onProximity(r.events || [])
        }
      }
      const later = []
      for (const d of digs) {
        const r = reply.results[k++]
        if (r && r.error) { if (onDigError(d, r.error, r)) later.push(d) } else if (r) onDigReply(d, r)
      }
      if (later.length) requeue(later)
    })()
  }
  // Put digs back at the head of the queue (same request_id: one that did land counts once).
  function requeue (digs) {
    st.digs.unshift(...digs)
    st.stats.retries += digs.length
    for (const d of digs) {
      const p = online(d.player)
      if (p && !d.notified) {
        d.notified = true
        tell(p, '&eThe treasure hunt service is not answering. Your dig is saved and will be checked when it is back.')
      }
    }
  }
  // Resolves once the positions of every player have been sent (an immediate batch if needed).
  async function positionsSent () {
    for (let i = 0; i < 3; i++) {
      if (st.inFlight) await st.inFlight
      flush()
      if (!st.inFlight) return
    }
  }
  function flagged (player, error) {
    if (!player || !player.cairn) return
    log(`${player.username}: ${error.code} (${error.message})`)
    // Cairn keeps the last accepted position; the next update resynchronises from where the player is.
    player.cairn.teleport = true
  }
  function onProximity (events) {
    for (const ev of events) {
      const p = online(ev.data && ev.data.player)
      if (!p) continue
      if (ev.type === 'proximity.enter') {
        tell(p, '&dYou sense something hidden nearby...')
        actionBar(p, '&dSomething is near')
      }
    }
  }

  // ---- digs ------------------------------------------------------------------------------------
  function enqueueDig (player, at) {
    const hunts = activeHunts()
    if (!hunts.length) return
    const mine = st.digs.filter(d => d.player === player.username)
    if (mine.length >= DIG_QUEUE_MAX) st.digs.splice(st.digs.indexOf(mine[0]), 1)
    for (const h of hunts) {
      const body = {
        player: player.username,
        pos: blockPos(player.position),
        at: [at.x, at.y, at.z],
        request_id: `mc-${crypto.randomUUID()}`
      }
      st.digs.push({ player: player.username, hunt: h.id, body, tries: 0, notified: false })
      st.stats.digs++
    }
  }
  // A dig op's error: true when the dig should be sent again.
  function onDigError (d, err, slot) {
    if (err.code === 'store_unavailable' || err.code === 'journal_failed') {
      cairnUnreachable(new Error(err.code))
      return true
    }
    if (err.code === 'rate_limited') {
      const wait = Number(err.retry_after ?? slot.retry_after ?? 0.2)
      setTimeout(() => { st.digs.push(d) }, Math.max(100, wait * 1000))
      return false
    }
    if (err.code === 'implausible_movement') {
      const p = online(d.player)
      if (p && p.cairn) p.cairn.teleport = true
      // Cairn's last position of the player was stale (a move it refused, a teleport it did not see),
      // and the game has broken the block already: send the dig once more, behind the next batch's
      // position, which goes as a teleport. Dropped, it would leave the treasure under air.
      if (d.tries < 2) {
        st.digs.unshift(d)
        return false
      }
    }
    if (err.code === 'hunt_not_active') refreshHunts()
    // A block broken after the hunt ended, or in a hunt gone, is no dig of that hunt: nothing to tell.
    if (!['hunt_not_active', 'hunt_not_found'].includes(err.code)) {
      log(`dig by ${d.player} refused: ${err.code} (${err.message})`)
    }
    return false
  }
  function onDigReply (d, reply) {
    const p = online(d.player)
    const at = new Vec3(...d.body.at)
    if (reply.result === 'found') {
      st.stats.found++
      const claim = reply.claim
      st.recentFinds.push({ hunt: d.hunt, at, player: d.player, treasure: claim.treasure, t: Date.now() })
      if (st.recentFinds.length > 256) st.recentFinds.shift()
      if (p) {
        tell(p, `&6&lYou found a treasure! &r&e${claim.treasure}: ${itemsText(claim.items)}`)
        actionBar(p, '&6&lTREASURE FOUND')
        celebrate(p, at)
      }
      deliverGrants(d.player)
    } else if (reply.result === 'taken') {
      st.stats.taken++
      // The winner's own `found` reply may land a moment after this one: look for it a few times.
      // Cairn names the finders; the winner's own `found` reply (this server's record) is the fallback.
      const named = Array.isArray(reply.finders) && reply.finders.length ? { player: reply.finders[0] } : null
      const name = (tries) => {
        const first = named || st.recentFinds.filter(f => f.hunt === d.hunt && f.at.distanceTo(at) <= 3).pop()
        if (!first && tries > 0) return setTimeout(name, 250, tries - 1)
        const q = online(d.player)
        if (q) tell(q, first ? `&cToo late: ${first.player} found this treasure first.` : '&cToo late: someone found this treasure first.')
      }
      name(4)
    } else if (p) {
      actionBar(p, `Dig: ${temperatureText(reply.temperature)}`)
    }
  }
  function celebrate (player, at) {
    const serv = st.serv
    try { serv.playSound('entity.player.levelup', player.world, at, { radius: 32 }) } catch (e) {}
    try {
      serv.emitParticle(serv.registry.particlesByName?.happy_villager?.id ?? 0, player.world, at.offset(0.5, 1.2, 0.5),
        { count: 30, size: new Vec3(0.6, 0.6, 0.6) })
    } catch (e) {}
  }

  // ---- Cairn down / back -----------------------------------------------------------------------
  function cairnUnreachable (e) {
    st.backoffMs = Math.min(Math.max(st.backoffMs * 2, 250), MAX_BACKOFF_MS)
    const wait = st.backoffMs * (0.75 + Math.random() * 0.5)
    st.backoffUntil = Date.now() + wait
    if (!st.cairnDown) {
      st.cairnDown = true
      log(`Cairn unreachable (${e.message}); digs wait in the queue`)
    }
  }
  function cairnBack () {
    st.cairnDown = false
    st.backoffMs = 0
    st.backoffUntil = 0
    log('Cairn is back')
  }

  // ---- grants: deliver, then ack ---------------------------------------------------------------
  async function deliverGrants (name) {
    if (st.delivering.has(name)) { st.redeliver = (st.redeliver || new Set()).add(name); return }
    st.delivering.add(name)
    try {
      const player = online(name)
      let body
      try {
        body = await cairn.request('GET', `/v1/players/${encodeURIComponent(name)}/grants`)
      } catch (e) {
        if (retryable(e)) cairnUnreachable(e)
        return
      }
      for (const g of body.grants) {
        if (st.acked.has(g.grant_id)) continue
        if (!st.delivered.has(g.grant_id)) {
          const p = online(name)
          if (!p || p !== player) return // not online: the grant waits in Cairn until the player joins
          timed(giveItems)(p, g.items)
          st.delivered.set(g.grant_id, name)
          st.stats.granted++
          await saveDelivered()
        }
        await ackGrant(g.grant_id)
      }
    } finally {
      st.delivering.delete(name)
      if (st.redeliver && st.redeliver.delete(name)) deliverGrants(name)
    }
  }
  async function ackGrant (gid) {
    try {
      await cairn.request('POST', `/v1/grants/${encodeURIComponent(gid)}/ack`, {})
      st.acked.add(gid)
      st.delivered.delete(gid)
      saveDelivered()
    } catch (e) {
      if (retryable(e)) cairnUnreachable(e) // delivered stays recorded: the sweep acks it later
      else if (e.code === 'grant_not_found') { st.delivered.delete(gid); saveDelivered() }
    }
  }
  // Real items into the inventory; what does not fit is dropped at the player's feet, never lost.
  function giveItems (player, items) {
    const serv = st.serv
    const Item = st.Item || (st.Item = require('prismarine-item')(serv.registry))
    for (const it of items) {
      const name = it.item.startsWith('minecraft:') ? it.item.slice(10) : null
      const def = (name && serv.registry.itemsByName[name]) || serv.registry.itemsByName.gold_nugget
      let left = it.count
      const inv = player.inventory
      // Top up stacks of the same item first, then empty slots (9..44: main inventory and hotbar).
      for (let slot = 9; slot <= 44 && left > 0; slot++) {
        const s = inv.slots[slot]
        if (s && s.type === def.id && s.count < def.stackSize) {
          const n = Math.min(left, def.stackSize - s.count)
          inv.updateSlot(slot, new Item(def.id, s.count + n))
          left -= n
        }
      }
      for (let slot = 36; left > 0 && slot <= 44; slot++) left = fillSlot(inv, slot, def, left, Item)
      for (let slot = 9; left > 0 && slot <= 35; slot++) left = fillSlot(inv, slot, def, left, Item)
      while (left > 0) {
        const n = Math.min(left, def.stackSize)
        serv.spawnObject(serv.registry.entitiesByName.item.id, player.world, player.position.clone(), {
          velocity: new Vec3(0, 0, 0), itemId: def.id, itemDamage: 0, itemCount: n, pickupTime: 500, deathTime: 60 * 60 * 1000
        })
        left -= n
        tell(player, `&eYour inventory is full: ${n} ${def.name.replace(/_/g, ' ')} dropped at your feet.`)
      }
    }
    tell(player, `&aReward delivered: ${itemsText(items)}`)
  }
  function fillSlot (inv, slot, def, left, Item) {
    if (inv.slots[slot]) return left
    const n = Math.min(left, def.stackSize)
    inv.updateSlot(slot, new Item(def.id, n))
    return left - n
  }
  // Acks that failed while Cairn was down, and grants a missed reply left pending.
  function sweepGrants () {
    for (const [gid] of st.delivered) ackGrant(gid)
    for (const p of st.serv.players) if (!p.disconnected) deliverGrants(p.username)
  }

  // ---- events ----------------------------------------------------------------------------------
  function onEvent (ev) {
    const h = st.hunts.get(ev.hunt)
    const name = (h && h.name) || ev.hunt
    switch (ev.type) {
      case 'hunt.started':
        refreshHunts().then(() => {
          const hh = st.hunts.get(ev.hunt)
          if (hh && hh.world !== cfg.world) return
          broadcast(`&6&lA treasure hunt has begun: &r&e${(hh && hh.name) || name}&6, ${ev.data.treasures} treasures, ` +
            `ends in ${duration((Date.parse(ev.data.ends_at) - Date.now()) / 1000)}. Type &f/hint&6 for a clue.`)
        })
        break
      case 'hunt.ended':
        if (h && h.world !== cfg.world) break
        broadcast(`&6The treasure hunt &e${name}&6 is over (${ev.data.treasures_left} treasures were never found).`)
        refreshHunts()
        break
      case 'treasure.found':
        if (h && h.world !== cfg.world) break
        if (ev.data.player) {
          const an = /^[aeiou]/.test(ev.data.tier) ? 'an' : 'a'
          broadcast(`&6${ev.data.player}&e found ${an} ${TIER_COLOR[ev.data.tier] || ''}${ev.data.tier}&e treasure in ${name}!`)
          const p = online(ev.data.player)
          if (p) try { st.serv.playSound('ui.toast.challenge_complete', p.world, p.position, { radius: 64 }) } catch (e) {}
        }
        if (h && typeof h.treasures_left === 'number' && h.treasures_left > 0) h.treasures_left--
        break
    }
  }

  // ---- commands --------------------------------------------------------------------------------
  function addCommands (serv) {
    serv.commands.add({
      base: 'hunt',
      info: 'list the active treasure hunts',
      usage: '/hunt',
      onlyPlayer: true,
      action (args, ctx) {
        const player = ctx.player
        cairn.request('GET', '/v1/hunts').then(body => {
          st.hunts = new Map(body.hunts.map(h => [h.id, h]))
          const live = body.hunts.filter(h => h.state !== 'ended' && h.world === cfg.world)
          if (!live.length) return tell(player, '&7No treasure hunt is running.')
          for (const h of live) {
            const when = h.state === 'active'
              ? `${duration((Date.parse(h.ends_at) - Date.now()) / 1000)} left`
              : `starts in ${duration((Date.parse(h.starts_at) - Date.now()) / 1000)}`
            tell(player, `&e${h.name} &7(${h.id})&e: ${h.treasures_left} of ${h.treasures_total} treasures left, ${when}`)
          }
        }).catch(e => tell(player, retryable(e)
          ? '&eThe treasure hunt service is not answering; try again in a moment.'
          : `&cCould not list hunts: ${e.body?.error?.message || e.message}`))
      }
    })
    serv.commands.add({
      base: 'hint',
      info: 'a clue to the nearest treasure',
      usage: '/hint [hunt]',
      onlyPlayer: true,
      parse (str) { return str.trim() ? str.trim().split(/\s+/) : [] },
      action (args, ctx) {
        const player = ctx.player
        const hunts = activeHunts()
        const hunt = args[0] ? st.hunts.get(args[0]) : hunts[0]
        if (!hunt || !inWorld(player)) return tell(player, '&7No treasure hunt is running in this world.')
        const body = { player: player.username, pos: blockPos(player.position), request_id: `mc-${crypto.randomUUID()}` }
        positionsSent().then(() => cairn.request('POST', `/v1/hunts/${encodeURIComponent(hunt.id)}/hint`, body)).then(reply => {
          timed(showHint)(player, hunt, reply)
        }).catch(e => {
          if (e.code === 'hint_cooldown') return tell(player, `&eYour next hint is ready in ${duration(e.retryAfter || 1)}.`)
          if (e.code === 'implausible_movement' && player.cairn) player.cairn.teleport = true
          tell(player, retryable(e)
            ? '&eThe treasure hunt service is not answering; try /hint again in a moment.'
            : `&cNo hint: ${e.body?.error?.message || e.message}`)
        })
      }
    })
    serv.commands.add({
      base: 'cairn',
      info: 'Cairn operator tools: /cairn verify <hunt> checks every treasure against the world\'s blocks',
      usage: '/cairn verify <hunt> | /cairn status',
      op: true,
      parse (str) { return str.trim().split(/\s+/) },
      action (args, ctx) {
        const out = (text) => ctx.player ? tell(ctx.player, text) : log(text)
        if (args[0] === 'status') {
          out(`cairn: ${st.siteCount} sites in ${st.chunks.size} chunks; digs ${st.stats.digs}, found ${st.stats.found}, ` +
            `taken ${st.stats.taken}, retries ${st.stats.retries}, queued ${st.digs.length}, granted ${st.stats.granted}, ` +
            `unacked ${st.delivered.size}, ${st.cairnDown ? 'Cairn unreachable' : 'Cairn reachable'}`)
          return
        }
        if (args[0] !== 'verify' || !args[1]) return out('usage: /cairn verify <hunt> | /cairn status')
        verifyHunt(args[1]).then(lines => lines.forEach(out)).catch(e => out(`&cverify failed: ${e.message}`))
      }
    })
  }
  function showHint (player, hunt, reply) {
    const h = reply.hint || {}
    if (!Object.keys(h).length) return tell(player, '&7No treasure is left for you in this hunt.')
    const parts = []
    if (h.temperature) parts.push(`you are ${temperatureText(h.temperature)}&e`)
    if (h.vertical) parts.push(`the treasure is ${VERTICAL[h.vertical] || h.vertical}`)
    if (h.bearing) parts.push(`head ${h.bearing}`)
    tell(player, `&6Hint (${hunt.name}): &e${parts.join(', ')}.`)
    if (h.region) {
      tell(player, `&6Search area: &ex ${h.region.min[0]} to ${h.region.max[0]}, z ${h.region.min[1]} to ${h.region.max[1]}.`)
    }
    if (h.riddle) tell(player, `&d${h.riddle}`)
    tell(player, `&7Next hint in ${duration(reply.next_hint_in)}.`)
    actionBar(player, temperatureText(h.temperature, h.vertical))
  }
  // For every treasure of a hunt, the cell and the block under it, read from the game's own world.
  async function verifyHunt (huntId) {
    const hunt = await cairn.request('GET', `/v1/hunts/${encodeURIComponent(huntId)}?reveal=true`, undefined, { admin: true })
    const lines = []
    let ok = 0
    for (const t of hunt.treasures) {
      const [x, y, z] = t.pos
      const cell = await st.serv.overworld.getBlock(new Vec3(x, y, z))
      const floor = await st.serv.overworld.getBlock(new Vec3(x, y - 1, z))
      const good = (table[cell.stateId] === AIR || table[cell.stateId] === WATER) && table[floor.stateId] === SOLID
      if (good) ok++
      lines.push(`verify ${t.id} ${good ? 'ok' : 'BAD'} cell=${cell.name} floor=${floor.name}`)
    }
    lines.push(`verify ${huntId}: ${ok} of ${hunt.treasures.length} treasures on a valid cell`)
    return lines
  }

  // ---- the flying-squid hooks ------------------------------------------------------------------
  function server (serv) {
    st.serv = serv
    table = classTable(serv.registry)
    addCommands(serv)
    const hookWorld = () => {
      serv.overworld.on('blockUpdate', timed((oldBlock, newBlock) => {
        if (!newBlock || !newBlock.position || oldBlock.stateId === newBlock.stateId) return
        const p = newBlock.position
        st.editedColumns.add(`${p.x},${p.z}`)
        scanSome()
      }))
      serv.overworld.on('chunkColumnLoad', timed((corner) => {
        queueChunk(Math.floor(corner.x / 16), Math.floor(corner.z / 16))
        scanSome()
      }))
    }
    if (serv.overworld) hookWorld()
    else serv.once('pluginsReady', hookWorld)
    serv.on('tick', timed((delta, count) => {
      if (count % POSITION_EVERY_TICKS === 0) flush()
    }))
    serv.cairn = {
      st,
      cairn,
      config: cfg,
      // Register the world (an upload-only world), generate every chunk within `radius` blocks of
      // spawn, and upload the sites found. Resolves once Cairn holds them.
      async prepare (radius) {
        await registerWorld()
        const r = Math.ceil(radius / 16)
        const jobs = []
        for (let cx = -r; cx <= r; cx++) {
          for (let cz = -r; cz <= r; cz++) {
            if ((cx * 16 + 8) ** 2 + (cz * 16 + 8) ** 2 <= (radius + 12) ** 2) jobs.push(serv.overworld.getColumn(cx, cz))
          }
        }
        await Promise.all(jobs)
        while (st.scanQueue.length || scanning) {
          await scanSome()
          await new Promise(resolve => setTimeout(resolve, 10))
        }
        clearTimeout(st.uploadTimer)
        st.uploadTimer = null
        try {
          await uploadSites()
        } catch (e) {
          if (e.code === 'unknown_world' && st.registerFallback) {
            throw new Error(`Cairn at ${cfg.cairnUrl} does not know world ${cfg.world} and has no ` +
              'PUT /v1/worlds/{world} route to register it at run time: declare ' +
              `[worlds.${cfg.world}] in its config file, or run a Cairn with that route`)
          }
          throw new Error(`uploading the sites of world ${cfg.world} failed: ${e.message}`)
        }
        await refreshHunts()
      },
      start () {
        st.stopFollow = cairn.follow(Date.now() * 1000, timed(onEvent), log) // event ids are microsecond times: live from now
        st.timers.push(setInterval(refreshHunts, HUNT_REFRESH_MS))
        st.timers.push(setInterval(sweepGrants, GRANT_SWEEP_MS))
      },
      async stop () {
        if (st.stopFollow) st.stopFollow()
        for (const t of st.timers) clearInterval(t)
        clearTimeout(st.uploadTimer)
        await saveDelivered()
        // Digs still waiting for Cairn are kept with their request_id and sent at the next start.
        if (queueFile) {
          if (st.digs.length) await fs.promises.writeFile(queueFile, JSON.stringify(st.digs))
          else await fs.promises.rm(queueFile, { force: true })
        }
        cairn.close()
      },
      verifyHunt,
      sweepGrants
    }
  }

  async function registerWorld () {
    try {
      await cairn.request('PUT', `/v1/worlds/${encodeURIComponent(cfg.world)}`, {}, { admin: true })
      return
    } catch (e) {
      if (!(e instanceof CairnError)) throw new Error(`Cairn at ${cfg.cairnUrl} is not reachable: ${e.message}`)
      if (e.status !== 404 && e.status !== 405) throw new Error(`registering world ${cfg.world} failed: ${e.message}`)
    }
    // An older Cairn without runtime registration: the world must be in its config.
    try {
      await cairn.request('GET', '/v1/worlds', undefined, { admin: true })
    } catch (e) { /* no listing either */ }
    st.registerFallback = true
    log(`Cairn has no PUT /v1/worlds/{world} route (runtime world registration); world ${cfg.world} must be declared in its config`)
  }

  function player (pl, serv) {
    pl.cairn = { teleport: true }
    pl.on('move', (data) => { if (data && data.teleport) pl.cairn.teleport = true }) // every move: kept bare
    pl.on('requestRespawn_done', () => { pl.cairn.teleport = true })
    pl.on('change_world', () => { pl.cairn.teleport = true })
    pl.on('dug', timed((data, cancelled) => {
      if (cancelled || !inWorld(pl)) return
      // One break, one dig: a server that reports the same break twice must not send two digs.
      const key = `${data.position.x},${data.position.y},${data.position.z}`
      const now = Date.now()
      if (pl.cairn.lastDug === key && now - pl.cairn.lastDugAt < 1000) return
      pl.cairn.lastDug = key
      pl.cairn.lastDugAt = now
      enqueueDig(pl, data.position)
    }))
    pl.on('spawned', () => {
      pl.cairn.teleport = true
      const hunts = activeHunts()
      if (hunts.length) tell(pl, `&6${hunts.length === 1 ? 'A treasure hunt is' : `${hunts.length} treasure hunts are`} running. Type &f/hunt&6 and &f/hint&6.`)
      deliverGrants(pl.username)
    })
    pl.on('disconnected', () => {
      // Cairn drops the position and proximity state; claims and grants stay.
      cairn.request('POST', `/v1/players/${encodeURIComponent(pl.username)}/leave`, {}).catch(() => {})
    })
  }

  return { server, player }
}

module.exports = cairnPlugin
