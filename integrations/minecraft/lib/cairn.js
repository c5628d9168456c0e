'use strict'
// A small asynchronous Cairn client: keep-alive HTTP, JSON bodies, an SSE follower.
// Nothing here ever blocks the caller: every call returns a promise.
const http = require('http')
const https = require('https')
const { URL } = require('url')
const { performance } = require('perf_hooks')

class CairnError extends Error {
  constructor (status, body, headers) {
    const err = (body && body.error) || {}
    super(`${status} ${err.code || 'error'}: ${err.message || JSON.stringify(body)}`)
    this.status = status
    this.code = err.code || `http_${status}`
    this.field = err.field
    this.body = body
    this.retryAfter = Number((body && body.retry_after) ?? (headers && headers['retry-after']) ?? NaN)
  }
}

// A connection error, a timeout or a 503: the request may be retried as it is.
function retryable (err) {
  return !(err instanceof CairnError) || err.status === 503 || err.status === 502 || err.status === 504
}

class Cairn {
  constructor ({ url, gameKey, adminKey, timeoutMs = 10000 }) {
    this.base = new URL(url)
    this.gameKey = gameKey
    this.adminKey = adminKey
    this.timeoutMs = timeoutMs
    const mod = this.base.protocol === 'https:' ? https : http
    this.mod = mod
    this.agent = new mod.Agent({ keepAlive: true, maxSockets: 16 })
    this.latencies = [] // ms of the answered requests since the last takeLatencies()
  }

  // p50 / p99 / max round-trip time (ms) of the requests answered since the last call.
  takeLatencies () {
    const a = this.latencies.sort((x, y) => x - y)
    this.latencies = []
    if (!a.length) return null
    const q = (f) => a[Math.min(a.length - 1, Math.floor(f * a.length))]
    return { n: a.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: a[a.length - 1] }
  }

  // → parsed JSON body on 2xx; throws CairnError on 4xx/5xx, a plain Error on connection trouble.
  request (method, path, body, { admin = false, contentType = 'application/json', timeoutMs } = {}) {
    const data = body === undefined ? null : (typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body))
    const headers = { Authorization: `Bearer ${admin ? this.adminKey : this.gameKey}` }
    if (data !== null) {
      headers['Content-Type'] = contentType
      headers['Content-Length'] = Buffer.byteLength(data)
    }
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const busy = (t) => {
      if (!this.onBusy) return
      const c = process.cpuUsage(t)
      this.onBusy((c.user + c.system) / 1000)
    }
    return new Promise((resolve, reject) => {
      const req = this.mod.request(new URL(path, this.base), { method, headers, agent: this.agent }, res => {
        const chunks = []
        res.on('data', c => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const t1 = process.cpuUsage()
          if (this.latencies.length < 100000) this.latencies.push(performance.now() - t0)
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed = null
          try { parsed = text ? JSON.parse(text) : null } catch (e) { parsed = { error: { code: 'bad_reply', message: text.slice(0, 200) } } }
          if (res.statusCode >= 200 && res.statusCode < 300) resolve(parsed)
          else reject(new CairnError(res.statusCode, parsed, res.headers))
          busy(t1)
        })
      })
      req.setTimeout(timeoutMs ?? this.timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs ?? this.timeoutMs} ms`)))
      req.on('error', reject)
      if (data !== null) req.write(data)
      req.end()
      busy(cpu0)
    })
  }

  // Follow GET /v1/events (server-sent events) for ever, resuming from the last id seen.
  // onEvent(event) gets each parsed event; returns a stop() function.
  follow (after, onEvent, log = () => {}) {
    let last = after
    let stopped = false
    let req = null
    let delay = 250
    let generation = 0
    const connect = () => {
      if (stopped) return
      const gen = ++generation
      // Only the current connection may schedule the next one: a late 'end' of an old one is ignored.
      const retry = () => { if (gen === generation) reconnect() }
      const headers = { Authorization: `Bearer ${this.gameKey}`, Accept: 'text/event-stream' }
      req = this.mod.get(new URL(`/v1/events?after=${last}`, this.base), { headers }, res => {
        if (res.statusCode !== 200) {
          res.resume()
          log(`event stream: HTTP ${res.statusCode}, retrying`)
          return retry()
        }
        delay = 250
        res.setEncoding('utf8')
        let buf = ''
        res.on('data', chunk => {
          buf += chunk
          let i
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i)
            buf = buf.slice(i + 2)
            let type = 'message'
            let data = ''
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim()
              else if (line.startsWith('data:')) data += line.slice(5).trim()
            }
            if (!data) continue
            let body
            try { body = JSON.parse(data) } catch (e) { continue }
            if (type === 'dropped' && body.resume_after !== undefined) {
              last = body.resume_after
              continue
            }
            if (type === 'gap') continue
            if (typeof body.id === 'number') {
              if (body.id <= last) continue // already seen (ids rise strictly)
              last = body.id
            }
            try { onEvent(body) } catch (e) { log(`event handler failed: ${e.stack}`) }
          }
        })
        res.on('end', retry)
        res.on('error', retry)
      })
      req.on('error', retry)
    }
    let pending = false
    const reconnect = () => {
      if (stopped || pending) return
      pending = true
      generation++
      setTimeout(() => { pending = false; connect() }, delay)
      delay = Math.min(delay * 2, 5000)
    }
    connect()
    return () => { stopped = true; if (req) req.destroy() }
  }

  close () { this.agent.destroy() }
}

module.exports = { Cairn, CairnError, retryable }
