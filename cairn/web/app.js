// Cairn live dashboard: plain JS, one canvas map, no dependencies, no network beyond the engine.
// The admin key lives in sessionStorage and travels only in the Authorization header; the event
// stream is read with fetch() (EventSource cannot send headers).
"use strict";

const KEY_SLOT = "cairn.adminKey";
const $ = (sel) => document.querySelector(sel);
const TIER_COLORS = { common: "#b8c0cc", uncommon: "#5cc78a", rare: "#4a9be0", epic: "#b070e8", legendary: "#f0a030" };
const HEAT_DECAY_PER_S = 0.97; // dig heat fades to half in ~23 s
const LIVE_POLL_MS = 1000, HUNTS_POLL_MS = 3000, HEALTH_POLL_MS = 2000, BOARD_POLL_MS = 5000;

let key = sessionStorage.getItem(KEY_SLOT);
const timers = [];
let hunt = null;          // the open hunt's map model
let streamAbort = null;   // aborts the open event stream
let boardTimer = 0;
let huntsShown = "", boardShown = "";
let huntRows = new Map(); // hunt id -> its row in the latest hunts list

// ---- HTTP ---------------------------------------------------------------------------------------
class HttpError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// `keep`: a refusal is the caller's to show (an action's dialog), not a reason to sign out;
// `text`: the body as text (NDJSON), not JSON.
async function api(path, { keep = false, text = false, ...opts } = {}) {
  const headers = { Authorization: "Bearer " + key, ...(opts.headers || {}) };
  const res = await fetch(path, { ...opts, headers, cache: "no-store" });
  if (!res.ok) {
    let code = "http_" + res.status, message = res.statusText;
    try { const e = (await res.json()).error; code = e.code; message = e.message; } catch (_) { /* not JSON */ }
    if (!keep && (res.status === 401 || res.status === 403)) signOut(`Refused: ${message}`);
    throw new HttpError(res.status, code, message);
  }
  return text ? res.text() : res.json();
}

// A route this engine does not serve (yet) answers 404 "no such path": say so plainly.
function describe(e, route) {
  if (!(e instanceof HttpError)) return `Could not reach the engine: ${e.message || e}`;
  if (e.status === 404 && e.code === "not_found" && e.message === "no such path")
    return `This engine does not offer ${route} (404 no such path).`;
  return `${e.message} (${e.status} ${e.code})`;
}

// ---- login --------------------------------------------------------------------------------------
async function tryKey(candidate) {
  const res = await fetch("/v1/admin/health", { headers: { Authorization: "Bearer " + candidate }, cache: "no-store" });
  if (res.ok) return null;
  try { return (await res.json()).error.message; } catch (_) { return `HTTP ${res.status}`; }
}

async function onLogin(ev) {
  ev.preventDefault();
  const candidate = $("#key").value.trim();
  $("#login-error").textContent = "";
  const refused = await tryKey(candidate);
  if (refused) { $("#login-error").textContent = `Refused: ${refused}`; return; }
  key = candidate;
  sessionStorage.setItem(KEY_SLOT, key);
  $("#key").value = "";
  start();
}

async function loginLink() {
  // `cairn demo` prints /dashboard#login=<one-time token>: trade it for the key, then drop it from the URL.
  const m = location.hash.match(/^#login=([A-Za-z0-9_-]+)$/);
  if (!m) return;
  history.replaceState(null, "", location.pathname);
  const res = await fetch("/v1/dashboard/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: m[1] }) });
  if (res.ok) { key = (await res.json()).key; sessionStorage.setItem(KEY_SLOT, key); }
  else { $("#login-error").textContent = "Refused: this login link was already used or has expired"; }
}

function signOut(message = "") {
  key = null;
  sessionStorage.removeItem(KEY_SLOT);
  timers.splice(0).forEach(clearInterval);
  huntsShown = boardShown = auditShown = claimsShown = keysShown = "";
  closeDialog();
  if (streamAbort) streamAbort.abort();
  hunt = null;
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  document.body.dataset.view = "login";
}

// ---- hunts list ---------------------------------------------------------------------------------
function timeLeft(row, now) {
  if (row.state === "ended") return "ended";
  const target = row.state === "scheduled" ? Date.parse(row.starts_at) : Date.parse(row.ends_at);
  let s = Math.max(0, Math.round(target / 1000 - now));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); s %= 60;
  const t = h ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(s).padStart(2, "0")}s`;
  return row.state === "scheduled" ? `in ${t}` : t;
}

async function refreshHunts() {
  const { hunts, now } = await api("/v1/dashboard/hunts");
  huntRows = new Map(hunts.map((h) => [h.id, h]));
  syncHuntActions();
  const body = $("#hunts tbody");
  const rows = hunts.slice().sort((a, b) => (a.state === "ended") - (b.state === "ended") || b.starts_at.localeCompare(a.starts_at));
  const shown = JSON.stringify([hunt && hunt.id, rows.map((h) => [h.id, h.state, timeLeft(h, now), h.treasures_left, h.players])]);
  if (shown === huntsShown) return; // nothing visible changed: leave the DOM alone
  huntsShown = shown;
  body.replaceChildren(...rows.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.hunt = h.id;
    tr.dataset.state = h.state;
    if (hunt && hunt.id === h.id) tr.classList.add("selected");
    const found = h.treasures_total - h.treasures_left;
    const cells = [h.name, h.state, timeLeft(h, now), `${h.state === "ended" ? "" : found + " / "}${h.treasures_total}`, h.players];
    cells.forEach((v, i) => { const td = document.createElement("td"); td.textContent = v; if (i === 1) td.className = "state-" + h.state; tr.append(td); });
    tr.title = h.id;
    tr.addEventListener("click", () => openHunt(h.id));
    return tr;
  }));
  if (!hunt && rows.length && rows[0].state !== "ended") openHunt(rows[0].id);
}

// ---- the map model ------------------------------------------------------------------------------
async function openHunt(id) {
  if (streamAbort) streamAbort.abort();
  const m = await api(`/v1/hunts/${encodeURIComponent(id)}/map`);
  const [x0, , z0] = m.area.min, [x1, , z1] = m.area.max;
  const d = m.density;
  hunt = {
    id, map: m, x0, z0, w: x1 - x0 + 1, d: z1 - z0 + 1, nx: d.nx, nz: d.nz,
    treasures: m.treasures, byId: new Map(m.treasures.map((t) => [t.id, t])),
    players: new Int32Array(0), inside: {}, lastDigT: 0, liveSeq: -1, digsSeen: 0,
    heat: new Float32Array(d.nx * d.nz), heatMax: 1, heatAt: performance.now(),
    densityCanvas: densityImage(d), heatCanvas: makeCanvas(d.nx, d.nz), flashes: [],
  };
  document.querySelectorAll("#hunts tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.hunt === id));
  $("#map-title").textContent = `${m.hunt.name} · ${m.hunt.world}`;
  $("#map").dataset.hunt = id;
  $("#feed").replaceChildren();
  syncHuntActions();
  claimsShown = "";
  refreshClaims();
  fitView();
  renderTreasureList();
  setupBoards(m.leaderboards);
  streamEvents(id, m.last_event);
  pollLive();
  dirty();
}

function makeCanvas(w, h) { const c = document.createElement("canvas"); c.width = w; c.height = h; return c; }

function densityImage(d) {
  const c = makeCanvas(d.nx, d.nz), ctx = c.getContext("2d");
  const img = ctx.createImageData(d.nx, d.nz), cells = atob(d.cells);
  for (let i = 0; i < cells.length; i++) {
    const v = cells.charCodeAt(i), o = i * 4;
    img.data[o] = 40 + v * 0.1; img.data[o + 1] = 70 + v * 0.25; img.data[o + 2] = 100 + v * 0.35;
    img.data[o + 3] = v ? 40 + v * 0.55 : 0;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function renderTreasureList() {
  if (!hunt) return;
  const list = $("#treasure-list");
  list.replaceChildren(...hunt.treasures.map((t) => {
    const li = document.createElement("li");
    li.dataset.treasure = t.id; li.dataset.state = t.state; li.dataset.tier = t.tier;
    const who = t.finders.length ? ` · ${t.finders.join(", ")}` : "";
    li.textContent = `#${t.n} ${t.tier} ${t.state}${who}`;
    return li;
  }));
  const claimed = hunt.treasures.filter((t) => t.state === "claimed").length;
  $("#treasure-count").textContent = `${claimed} claimed of ${hunt.treasures.length}`;
  $("#map").dataset.claimed = String(claimed);
}

const STATES = { h: "hidden", o: "open", c: "claimed", e: "expired" };

async function pollLive() {
  if (!hunt) return;
  const h = hunt;
  const v = await api(`/v1/hunts/${encodeURIComponent(h.id)}/live?seen=${h.liveSeq}`);
  if (hunt !== h || v.same || v.seq === h.liveSeq) return;
  h.liveSeq = v.seq;
  h.players = Int32Array.from(v.players);
  h.playerCount = v.player_count;
  h.inside = v.inside;
  decayHeat();
  const nowMs = v.at * 1000;
  let newest = h.lastDigT;
  for (let i = 0; i < v.digs.length; i += 3) {
    const t = nowMs - v.digs[i + 2];
    if (t > h.lastDigT + 0.5) { addHeat(v.digs[i], v.digs[i + 1], v.dig_weight || 1); h.digsSeen++; }
    if (t > newest) newest = t;
  }
  h.lastDigT = newest;
  paintHeat();
  let changed = false;
  for (let i = 0; i < v.states.length && i < h.treasures.length; i++) {
    const s = STATES[v.states[i]];
    if (s && h.treasures[i].state !== s) { h.treasures[i].state = s; changed = true; }
  }
  if (changed) renderTreasureList();
  const canvas = $("#map");
  canvas.dataset.players = String(v.player_count);
  canvas.dataset.digs = String(h.digsSeen);
  $("#map-stats").textContent = `${v.player_count.toLocaleString()} players · ${v.left} left · ${v.state}`;
  const row = huntRows.get(h.id);
  if (row && row.state !== v.state) { row.state = v.state; syncHuntActions(); }
  dirty();
}

function addHeat(x, z, amount) {
  const h = hunt;
  const cx = Math.floor(((x - h.x0) / h.w) * h.nx), cz = Math.floor(((z - h.z0) / h.d) * h.nz);
  if (cx < 0 || cz < 0 || cx >= h.nx || cz >= h.nz) return;
  const i = cz * h.nx + cx;
  h.heat[i] += amount;
  if (h.heat[i] > h.heatMax) h.heatMax = h.heat[i];
}

function decayHeat() {
  const h = hunt, now = performance.now();
  const f = Math.pow(HEAT_DECAY_PER_S, (now - h.heatAt) / 1000);
  h.heatAt = now;
  for (let i = 0; i < h.heat.length; i++) h.heat[i] *= f;
  h.heatMax = Math.max(1, h.heatMax * f);
}

function paintHeat() {
  const h = hunt, ctx = h.heatCanvas.getContext("2d");
  const img = ctx.createImageData(h.nx, h.nz), data = img.data, k = 1 / Math.log1p(h.heatMax);
  for (let i = 0; i < h.heat.length; i++) {
    const v = h.heat[i];
    if (v < 0.02) continue;
    const a = Math.min(1, Math.log1p(v) * k), o = i * 4;
    data[o] = 255; data[o + 1] = Math.round(200 * (1 - a)); data[o + 2] = 40; data[o + 3] = Math.round(60 + 170 * a);
  }
  ctx.putImageData(img, 0, 0);
}

// ---- the event stream (fetch + ReadableStream, so the key stays in a header) ---------------------
async function streamEvents(id, after) {
  const ctl = new AbortController();
  streamAbort = ctl;
  let last = after, backoff = 500;
  while (!ctl.signal.aborted && key) {
    try {
      const res = await fetch(`/v1/events?hunt=${encodeURIComponent(id)}&after=${last}`, {
        headers: { Authorization: "Bearer " + key }, signal: ctl.signal, cache: "no-store" });
      if (res.status === 401 || res.status === 403) { signOut("Refused: the key is no longer accepted"); return; }
      if (!res.ok) throw new Error("HTTP " + res.status);
      setConn(true);
      backoff = 500;
      const reader = res.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const f = parseFrame(frame);
          if (f.event === "dropped") { last = JSON.parse(f.data).resume_after; }
          else if (f.event === "gap") { /* older events are gone; the live view corrects states */ }
          else if (f.data) { const ev = JSON.parse(f.data); last = ev.id; onEvent(ev); }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    setConn(false);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 8000);
  }
}

function parseFrame(frame) {
  const out = { event: "message", data: "" };
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const name = i < 0 ? line : line.slice(0, i), val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (name === "event") out.event = val; else if (name === "data") out.data += val; else if (name === "id") out.id = val;
  }
  return out;
}

function setConn(live) { const c = $("#conn"); c.textContent = live ? "live" : "reconnecting"; c.classList.toggle("live", live); }

function onEvent(ev) {
  const h = hunt;
  if (!h || ev.hunt !== h.id) { if (ev.type === "leaderboard.reset") scheduleBoard(); return; }
  const d = ev.data || {};
  const t = d.treasure && h.byId.get(d.treasure);
  switch (ev.type) {
    case "treasure.found":
      if (t) {
        if (t.state === "hidden") t.state = "open";
        if (d.player && !t.finders.includes(d.player)) t.finders.push(d.player);
        h.flashes.push({ x: t.pos[0], z: t.pos[2], at: performance.now() });
        feed(`<b>${esc(d.player)}</b> found #${t.n} (${esc(t.tier)})`);
      }
      break;
    case "treasure.claimed":
      if (t) { t.state = "claimed"; if (d.finders) t.finders = d.finders.slice(0, 5); }
      scheduleBoard();
      scheduleClaims();
      break;
    case "treasure.expired":
      if (t) t.state = "expired";
      break;
    case "hunt.started": case "hunt.ended":
      feed(`hunt ${ev.type.split(".")[1]}`);
      refreshHunts().catch(() => {});
      break;
    case "anticheat.flagged":
      feed(`<b>${esc(d.player)}</b> flagged: ${esc(d.reason)}`);
      break;
    default:
      return; // proximity events: the live view carries fence occupancy
  }
  if (ev.type.startsWith("treasure.")) renderTreasureList();
  dirty();
}

function feed(html) {
  const li = document.createElement("li");
  li.innerHTML = `${new Date().toLocaleTimeString()} ${html}`;
  const list = $("#feed");
  list.prepend(li);
  while (list.children.length > 6) list.lastChild.remove();
}

function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }

// ---- drawing: one requestAnimationFrame per burst of changes --------------------------------------
const view = { cx: 0, cz: 0, scale: 1 };
let frameQueued = false, frames = 0, flashTimer = 0;
const FLASH_FPS = 15; // the find rings animate at a modest rate: a busy hunt finds often

function dirty() { if (!frameQueued) { frameQueued = true; requestAnimationFrame(draw); } }

function fitView() {
  if (!hunt) return;
  const c = $("#map"), r = c.getBoundingClientRect();
  view.cx = hunt.x0 + hunt.w / 2; view.cz = hunt.z0 + hunt.d / 2;
  view.scale = Math.min(r.width / hunt.w, r.height / hunt.d) * 0.95 || 1;
  dirty();
}

function draw() {
  frameQueued = false;
  const t0 = performance.now();
  const c = $("#map"), dpr = window.devicePixelRatio || 1, r = c.getBoundingClientRect();
  const W = Math.round(r.width * dpr), H = Math.round(r.height * dpr);
  if (c.width !== W || c.height !== H) { c.width = W; c.height = H; }
  const ctx = c.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, W, H);
  const h = hunt;
  if (!h) return;
  const s = view.scale * dpr;
  // world (x, z) -> screen: (x - cx) * s + W/2
  ctx.setTransform(s, 0, 0, s, W / 2 - view.cx * s, H / 2 - view.cz * s);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(h.densityCanvas, h.x0, h.z0, h.w, h.d);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(h.heatCanvas, h.x0, h.z0, h.w, h.d);
  ctx.lineWidth = 1 / s;
  ctx.strokeStyle = "#4b5868";
  ctx.strokeRect(h.x0, h.z0, h.w, h.d);

  // proximity fences around live treasures; occupied ones brighter
  const radius = h.map.fence_radius;
  ctx.setLineDash([4 / s, 3 / s]);
  const quiet = new Path2D(), busy = new Path2D();
  for (const t of h.treasures) {
    if (t.state !== "hidden" && t.state !== "open") continue;
    const path = h.inside[t.n] ? busy : quiet;
    path.moveTo(t.pos[0] + radius, t.pos[2]); path.arc(t.pos[0], t.pos[2], radius, 0, 2 * Math.PI);
  }
  ctx.strokeStyle = "#8fd0ff66"; ctx.stroke(quiet);
  ctx.strokeStyle = "#bfe6ff"; ctx.stroke(busy);
  ctx.setLineDash([]);

  // players: one path, one fill, however many there are
  const p = h.players, ps = Math.max(1.6 / s, 0.8);
  ctx.fillStyle = "#f4f4a0";
  ctx.beginPath();
  for (let i = 0; i < p.length; i += 2) ctx.rect(p[i] - ps / 2, p[i + 1] - ps / 2, ps, ps);
  ctx.fill();

  // treasures: diamonds by tier; hidden outlined, claimed filled, expired faint
  // (one path per tier and state, so a frame strokes a handful of paths, not one per treasure)
  const ts = Math.max(5 / s, 1.5), groups = new Map();
  for (const t of h.treasures) {
    const k = t.tier + "|" + t.state;
    let path = groups.get(k);
    if (!path) groups.set(k, (path = new Path2D()));
    path.moveTo(t.pos[0], t.pos[2] - ts); path.lineTo(t.pos[0] + ts, t.pos[2]);
    path.lineTo(t.pos[0], t.pos[2] + ts); path.lineTo(t.pos[0] - ts, t.pos[2]); path.closePath();
  }
  ctx.lineWidth = 1.5 / s;
  for (const [k, path] of groups) {
    const [tier, state] = k.split("|"), col = TIER_COLORS[tier] || "#ccc";
    if (state === "claimed" || state === "open") { ctx.fillStyle = col; ctx.fill(path); }
    ctx.globalAlpha = state === "expired" ? 0.35 : 1;
    ctx.strokeStyle = state === "claimed" ? "#fff" : col; ctx.stroke(path);
    ctx.globalAlpha = 1;
  }

  // flashes where a treasure was just found
  const now = performance.now();
  h.flashes = h.flashes.filter((f) => now - f.at < 1500);
  for (const f of h.flashes) {
    const k = (now - f.at) / 1500;
    ctx.strokeStyle = `rgba(255,220,120,${1 - k})`; ctx.lineWidth = 2 / s;
    ctx.beginPath(); ctx.arc(f.x, f.z, (6 + 30 * k) / s * dpr, 0, 2 * Math.PI); ctx.stroke();
  }
  if (h.flashes.length && !flashTimer) flashTimer = setTimeout(() => { flashTimer = 0; dirty(); }, 1000 / FLASH_FPS);
  frames++;
  c.dataset.frames = String(frames);
  c.dataset.drawMs = (performance.now() - t0).toFixed(2);
}

function screenToWorld(px, py) {
  const r = $("#map").getBoundingClientRect();
  return [view.cx + (px - r.left - r.width / 2) / view.scale, view.cz + (py - r.top - r.height / 2) / view.scale];
}

function zoomAt(factor, px, py) {
  const [wx, wz] = screenToWorld(px, py);
  view.scale = Math.min(64, Math.max(0.01, view.scale * factor));
  const [nx, nz] = screenToWorld(px, py);
  view.cx += wx - nx; view.cz += wz - nz;
  dirty();
}

function setupMapInput() {
  const c = $("#map");
  let drag = null;
  c.addEventListener("wheel", (e) => { e.preventDefault(); zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX, e.clientY); }, { passive: false });
  c.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; c.setPointerCapture(e.pointerId); c.classList.add("dragging"); });
  c.addEventListener("pointermove", (e) => {
    if (drag) {
      view.cx -= (e.clientX - drag.x) / view.scale; view.cz -= (e.clientY - drag.y) / view.scale;
      drag = { x: e.clientX, y: e.clientY }; dirty();
    } else tip(e);
  });
  const end = () => { drag = null; c.classList.remove("dragging"); };
  c.addEventListener("pointerup", end); c.addEventListener("pointercancel", end);
  c.addEventListener("pointerleave", () => { $("#map-tip").hidden = true; });
  const centre = () => { const r = c.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; };
  $("#zoom-in").addEventListener("click", () => zoomAt(1.5, ...centre()));
  $("#zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, ...centre()));
  $("#zoom-fit").addEventListener("click", fitView);
  window.addEventListener("resize", dirty);
}

function tip(e) {
  const box = $("#map-tip");
  if (!hunt) { box.hidden = true; return; }
  const [wx, wz] = screenToWorld(e.clientX, e.clientY), near = 8 / view.scale;
  const t = hunt.treasures.find((t) => Math.abs(t.pos[0] - wx) < near && Math.abs(t.pos[2] - wz) < near);
  const r = $("#map-wrap").getBoundingClientRect();
  box.style.left = `${e.clientX - r.left + 12}px`; box.style.top = `${e.clientY - r.top + 12}px`;
  box.textContent = t ? `${t.id}  ${t.tier}  ${t.state}\n${t.pos.join(", ")}${t.finders.length ? "\n" + t.finders.join(", ") : ""}`
    : `${Math.round(wx)}, ${Math.round(wz)}`;
  box.hidden = false;
}

// ---- leaderboards ---------------------------------------------------------------------------------
function setupBoards(names) {
  const sel = $("#board-name"), keep = sel.value;
  sel.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(keep)) sel.value = keep;
  $("#board-period").replaceChildren(new Option("current", ""));
  refreshBoard();
}

function scheduleBoard() { clearTimeout(boardTimer); boardTimer = setTimeout(() => refreshBoard().catch(() => {}), 150); }

async function refreshBoard() {
  const name = $("#board-name").value;
  if (!name) return;
  const period = $("#board-period").value;
  const q = new URLSearchParams({ limit: "15" });
  if (period) q.set("period", period);
  const b = await api(`/v1/leaderboards/${encodeURIComponent(name)}?${q}`);
  const shown = JSON.stringify([name, period, b]);
  if (shown === boardShown) return;
  boardShown = shown;
  const tbody = $("#board tbody");
  const before = new Map([...tbody.children].map((tr) => [tr.dataset.player, tr.dataset.score]));
  tbody.replaceChildren(...b.records.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.player = r.player; tr.dataset.score = String(r.score);
    for (const v of [r.rank, r.player, Number.isInteger(r.score) ? r.score : r.score.toFixed(2)]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    if (before.size && before.get(r.player) !== String(r.score)) tr.classList.add("fresh");
    return tr;
  }));
  $("#resets-at").textContent = b.resets_at ? new Date(b.resets_at).toLocaleString() : (period ? "archived period" : "never");
  const psel = $("#board-period"), have = new Set([...psel.options].map((o) => o.value));
  for (const p of (b.periods || []).slice().reverse()) if (!have.has(p)) psel.append(new Option(p.slice(0, 10), p));
  $("#board").dataset.board = name;
}

// ---- health ---------------------------------------------------------------------------------------
async function refreshHealth() {
  const hl = await api("/v1/admin/health");
  const last = hl.series[hl.series.length - 1];
  const fmt = (v, d = 0) => (v == null ? "—" : v.toLocaleString(undefined, { maximumFractionDigits: d }));
  $("#h-rps").textContent = fmt(last && last.rps);
  $("#h-p99").textContent = fmt(last && last.p99_ms, 2);
  $("#h-rss").textContent = fmt(hl.rss_mb, 1);
  $("#h-subs").textContent = fmt(hl.subscribers);
  $("#h-grants").textContent = fmt(hl.pending_grants);
  $("#h-players").textContent = fmt(hl.players);
  $("#health-panel").dataset.samples = String(hl.series.length);
  chart("#chart-rps", [hl.series.map((s) => s.rps)], ["#5cc78a"]);
  chart("#chart-lat", [hl.series.map((s) => s.p50_ms), hl.series.map((s) => s.p99_ms)], ["#4a9be0", "#e0645c"]);
  chart("#chart-rss", [hl.series.map((s) => s.rss_mb)], ["#e0a84a"]);
}

function chart(sel, lines, colors) {
  const c = $(sel), dpr = window.devicePixelRatio || 1, r = c.getBoundingClientRect();
  c.width = Math.round(r.width * dpr) || 300; c.height = Math.round(r.height * dpr) || 60;
  const ctx = c.getContext("2d"), W = c.width, H = c.height, pad = 4 * dpr;
  ctx.clearRect(0, 0, W, H);
  const all = lines.flat().filter((v) => v != null);
  if (!all.length) return;
  const max = Math.max(...all) * 1.1 || 1, n = Math.max(2, lines[0].length);
  ctx.font = `${10 * dpr}px system-ui`; ctx.fillStyle = "#8592a3";
  ctx.fillText(max.toPrecision(3), pad, 11 * dpr);
  lines.forEach((vals, k) => {
    ctx.strokeStyle = colors[k]; ctx.lineWidth = 1.5 * dpr; ctx.beginPath();
    let started = false;
    vals.forEach((v, i) => {
      if (v == null) return;
      const x = pad + (i / (n - 1)) * (W - 2 * pad), y = H - pad - (v / max) * (H - 2 * pad);
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    });
    ctx.stroke();
    if (vals.length < 3) vals.forEach((v, i) => {  // too few samples for a line yet: dots
      if (v == null) return;
      const x = pad + (i / (n - 1)) * (W - 2 * pad), y = H - pad - (v / max) * (H - 2 * pad);
      ctx.fillStyle = colors[k]; ctx.fillRect(x - 1.5 * dpr, y - 1.5 * dpr, 3 * dpr, 3 * dpr);
    });
  });
}

// ---- operator actions: each asks for a reason in a confirmation dialog, then calls its admin route ---
// The routes answer with the action's audit entry once it is durable; on success every view that the
// action may change is refreshed at once, and on failure the engine's message stays in the dialog.
const AUDIT_POLL_MS = 5000, KEYS_POLL_MS = 15000, CLAIMS_SHOWN = 15;
let auditShown = "", claimsShown = "", keysShown = "", claimsTimer = 0, noticeTimer = 0;
let pending = null, busy = false; // the action the dialog asks to confirm; a request in flight
const claimsById = new Map(), keysById = new Map();
const enc = encodeURIComponent;
const JSON_BODY = { "Content-Type": "application/json" };

// kind -> the dialog's title and text, its extra fields, the request (method, path, body) and the notice.
const ACTIONS = {
  end: {
    route: "POST /v1/hunts/{hunt}/end",
    title: (t) => `End the hunt ${t.name}`,
    text: () => "The hunt ends now: open treasures are settled, and digs and hints stop counting.",
    send: (t, f) => ["POST", `/v1/hunts/${enc(t.id)}/end`, { reason: f.reason }],
    done: (t) => `${t.name} ended`,
  },
  extend: {
    route: "POST /v1/hunts/{hunt}/extend",
    title: (t) => `Extend the hunt ${t.name}`,
    text: (t) => `Its end moves later by the time given${t.ends_at ? ` (it ends at ${new Date(t.ends_at).toLocaleString()})` : ""}.`,
    fields: ["by"],
    send: (t, f) => ["POST", `/v1/hunts/${enc(t.id)}/extend`, { reason: f.reason, by: f.by }],
    done: (t, f) => `${t.name} extended by ${f.by}`,
  },
  void: {
    route: "POST /v1/claims/{claim_id}/void",
    title: (t) => `Void the claim ${t.claim_id}`,
    text: (t) => `${t.player}'s claim${t.treasure ? ` of ${t.treasure}` : ""} is voided and its grant withdrawn.`,
    fields: ["rehide"],
    send: (t, f) => ["POST", `/v1/claims/${enc(t.claim_id)}/void`, { reason: f.reason, rehide: f.rehide }],
    done: (t) => `claim ${t.claim_id} voided`,
  },
  bar: {
    route: "POST /v1/players/{player}/bar",
    title: (t) => `Bar ${t.player}`,
    text: (t) => `${t.player}'s digs and hints are refused in every hunt until the bar is lifted.`,
    send: (t, f) => ["POST", `/v1/players/${enc(t.player)}/bar`, { reason: f.reason }],
    done: (t) => `${t.player} barred`,
  },
  unbar: {
    route: "DELETE /v1/players/{player}/bar",
    title: (t) => `Lift the bar on ${t.player}`,
    text: (t) => `${t.player} may dig and ask for hints again.`,
    send: (t, f) => ["DELETE", `/v1/players/${enc(t.player)}/bar?reason=${enc(f.reason)}`, null],
    done: (t) => `the bar on ${t.player} lifted`,
  },
  revoke: {
    route: "DELETE /v1/keys/{id}",
    title: (t) => `Revoke the key ${t.label || t.id}`,
    text: (t) => `Requests with this ${t.scope || ""} key are refused from now on, on every node.`,
    send: (t, f) => ["DELETE", `/v1/keys/${enc(t.id)}?reason=${enc(f.reason)}`, null],
    done: (t) => `key ${t.label || t.id} revoked`,
  },
};

function openDialog(kind, target) {
  const a = ACTIONS[kind], dlg = $("#confirm"), fields = a.fields || [];
  pending = { kind, target };
  dlg.dataset.action = kind;
  $("#confirm-title").textContent = a.title(target);
  $("#confirm-text").textContent = a.text(target);
  $("#confirm-by-row").hidden = !fields.includes("by");
  $("#confirm-rehide-row").hidden = !fields.includes("rehide");
  $("#confirm-by").value = "30m";
  $("#confirm-rehide").checked = false;
  $("#confirm-reason").value = "";
  $("#confirm-error").textContent = "";
  syncConfirm();
  if (!dlg.open) dlg.showModal();
  $("#confirm-reason").focus();
}

function closeDialog() { const dlg = $("#confirm"); if (dlg.open) dlg.close(); pending = null; }

// Confirm stays disabled until a reason is typed (and while a request is in flight).
function syncConfirm() {
  const byOk = $("#confirm-by-row").hidden || $("#confirm-by").value.trim() !== "";
  $("#confirm-ok").disabled = busy || !pending || !$("#confirm-reason").value.trim() || !byOk;
}

async function confirmAction(ev) {
  ev.preventDefault();
  if (!pending || $("#confirm-ok").disabled) return;
  const asked = pending, a = ACTIONS[asked.kind];
  const f = { reason: $("#confirm-reason").value.trim(), by: $("#confirm-by").value.trim(), rehide: $("#confirm-rehide").checked };
  const [method, path, body] = a.send(asked.target, f);
  busy = true;
  syncConfirm();
  $("#confirm-error").textContent = "";
  try {
    const opts = body ? { body: JSON.stringify(body), headers: JSON_BODY } : {};
    await api(path, { method, keep: true, ...opts });
  } catch (e) {
    if (pending === asked) $("#confirm-error").textContent = describe(e, a.route);
    return;
  } finally {
    busy = false;
    syncConfirm();
  }
  if (pending === asked) closeDialog();
  notice(a.done(asked.target, f));
  afterAction();
}

function afterAction() {
  const quiet = (e) => { if (!(e instanceof HttpError)) console.warn(e); };
  huntsShown = claimsShown = "";
  refreshHunts().catch(quiet);
  refreshAudit().catch(quiet);
  refreshKeys().catch(quiet);
  refreshClaims().catch(quiet);
  pollLive().catch(quiet);
  scheduleBoard();
}

function notice(text) {
  const el = $("#notice");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

function showNote(el, text, error = false) { el.textContent = text; el.classList.toggle("error", error); }

function cell(tr, text, title) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (title) td.title = title;
  tr.append(td);
  return td;
}

function actButton(label, data, disabled = false) {
  const b = document.createElement("button");
  b.type = "button"; b.className = "act"; b.textContent = label; b.disabled = disabled;
  Object.assign(b.dataset, data);
  return b;
}

const ms = (at) => (typeof at === "number" ? at * 1000 : Date.parse(at));
const clock = (at) => { const t = ms(at); return Number.isFinite(t) ? new Date(t).toLocaleTimeString([], { hour12: false }) : "—"; };

// ---- the hunt's actions -----------------------------------------------------------------------------
function huntTarget() {
  const row = huntRows.get(hunt.id);
  return { id: hunt.id, name: row ? row.name : hunt.map.hunt.name, ends_at: row && row.ends_at };
}

function syncHuntActions() {
  const row = hunt && huntRows.get(hunt.id);
  const live = !!row && row.state !== "ended";
  $("#hunt-end").disabled = $("#hunt-extend").disabled = !live;
}

// ---- the audit log ------------------------------------------------------------------------------------
async function refreshAudit() {
  const note = $("#audit-note"), body = $("#audit tbody");
  let entries;
  try { ({ entries } = await api("/v1/audit?limit=20")); } catch (e) {
    showNote(note, describe(e, "GET /v1/audit"), true);
    return;
  }
  showNote(note, entries.length ? "" : "No operator actions yet.");
  const shown = JSON.stringify(entries.map((e) => e.id));
  if (shown === auditShown) return;
  const seen = new Set([...body.children].map((tr) => tr.dataset.id));
  auditShown = shown;
  body.replaceChildren(...entries.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.id = String(e.id);
    tr.dataset.action = e.action;
    const on = [e.hunt, e.player, e.target].filter(Boolean).join(" · ");
    cell(tr, clock(e.at), e.at);
    const what = cell(tr, e.action, on ? `${e.action} ${on}` : e.action);
    if (on) { const s = document.createElement("span"); s.className = "on"; s.textContent = ` ${on}`; what.append(s); }
    cell(tr, e.by);
    cell(tr, e.reason, e.reason);
    if (seen.size && !seen.has(String(e.id))) tr.classList.add("fresh");
    return tr;
  }));
}

// ---- the open hunt's claims (from its export), each with Void --------------------------------------------
function scheduleClaims() { clearTimeout(claimsTimer); claimsTimer = setTimeout(() => refreshClaims().catch(() => {}), 1000); }

function claimState(c) {
  if (c.voided) return "voided";
  return c.grant_state ?? c.state ?? (c.grant && c.grant.state) ?? "";
}

async function refreshClaims() {
  const h = hunt, note = $("#claims-note"), body = $("#claims tbody");
  if (!h) { showNote(note, "Select a hunt to see its claims."); return; }
  $("#claims-hunt").textContent = `· ${h.map.hunt.name}`;
  let text;
  try { text = await api(`/v1/hunts/${enc(h.id)}/export?format=ndjson`, { text: true }); } catch (e) {
    if (hunt !== h) return;
    showNote(note, describe(e, "GET /v1/hunts/{hunt}/export"), true);
    body.replaceChildren();
    claimsShown = "";
    return;
  }
  if (hunt !== h) return;
  const byId = new Map();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let o;
    try { o = JSON.parse(line); } catch (_) { continue; }
    if (o && o.claim_id != null && !(o.type && !String(o.type).startsWith("claim"))) byId.set(String(o.claim_id), o);
  }
  const claims = [...byId.values()].sort((a, b) => (ms(b.at) || 0) - (ms(a.at) || 0)).slice(0, CLAIMS_SHOWN);
  showNote(note, byId.size ? (byId.size > CLAIMS_SHOWN ? `The newest ${CLAIMS_SHOWN} of ${byId.size}.` : "") : "No claims yet.");
  const shown = JSON.stringify(claims);
  if (shown === claimsShown) return;
  claimsShown = shown;
  claimsById.clear();
  body.replaceChildren(...claims.map((c) => {
    const id = String(c.claim_id), t = c.treasure != null && h.byId.get(c.treasure), state = claimState(c);
    const target = { claim_id: id, player: c.player, treasure: t ? `#${t.n} (${t.tier})` : String(c.treasure ?? "") };
    claimsById.set(id, target);
    const tr = document.createElement("tr");
    tr.dataset.claim = id;
    tr.dataset.state = state;
    if (state === "voided") tr.classList.add("voided");
    cell(tr, clock(c.at), String(c.at));
    cell(tr, c.player);
    cell(tr, t ? `#${t.n}` : target.treasure, target.treasure);
    cell(tr, state, c.grant_id ? `grant ${c.grant_id}` : "");
    cell(tr, "").append(actButton("Void…", { claim: id }, state === "voided"));
    return tr;
  }));
}

// ---- API keys, each with Revoke ----------------------------------------------------------------------------
function ago(at) {
  const t = ms(at);
  if (at == null || !Number.isFinite(t)) return "never";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 90 ? `${s}s ago` : s < 5400 ? `${Math.round(s / 60)}m ago` : s < 129600 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
}

async function refreshKeys() {
  const note = $("#keys-note"), body = $("#keys tbody");
  let r;
  try { r = await api("/v1/keys"); } catch (e) {
    showNote(note, describe(e, "GET /v1/keys"), true);
    body.replaceChildren();
    keysShown = "";
    return;
  }
  const keys = Array.isArray(r) ? r : r.keys || [];
  showNote(note, keys.length ? "" : "No keys.");
  const shown = JSON.stringify(keys.map((k) => [k.id, k.label, k.scope, ago(k.last_used), !!k.revoked, k.active]));
  if (shown === keysShown) return;
  keysShown = shown;
  keysById.clear();
  body.replaceChildren(...keys.map((k) => {
    const id = String(k.id);
    keysById.set(id, { id, label: k.label, scope: k.scope });
    const tr = document.createElement("tr");
    tr.dataset.key = id;
    if (k.revoked || k.active === false) tr.classList.add("revoked");
    cell(tr, k.label || id, `${id}${k.created ? ", created " + new Date(ms(k.created)).toLocaleString() : ""}`);
    cell(tr, k.scope);
    cell(tr, ago(k.last_used));
    const gone = k.revoked ? "revoked" : k.active === false ? "expired" : "";  // `active`: false once expired
    cell(tr, "").append(gone ? document.createTextNode(gone) : actButton("Revoke…", { key: id }));
    return tr;
  }));
}

function setupActions() {
  $("#hunt-end").addEventListener("click", () => { if (hunt) openDialog("end", huntTarget()); });
  $("#hunt-extend").addEventListener("click", () => { if (hunt) openDialog("extend", huntTarget()); });
  const name = $("#player-name"), player = () => name.value.trim();
  const syncPlayer = () => { $("#player-bar").disabled = $("#player-unbar").disabled = !player(); };
  name.addEventListener("input", syncPlayer);
  $("#player-form").addEventListener("submit", (e) => { e.preventDefault(); if (player()) openDialog("bar", { player: player() }); });
  $("#player-bar").addEventListener("click", () => openDialog("bar", { player: player() }));
  $("#player-unbar").addEventListener("click", () => openDialog("unbar", { player: player() }));
  $("#board tbody").addEventListener("click", (e) => {  // a leaderboard row picks its player
    const tr = e.target.closest("tr[data-player]");
    if (tr) { name.value = tr.dataset.player; syncPlayer(); }
  });
  // Rows are rebuilt on refresh: one listener per table, on its body.
  $("#claims tbody").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-claim]");
    if (b && claimsById.has(b.dataset.claim)) openDialog("void", claimsById.get(b.dataset.claim));
  });
  $("#keys tbody").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-key]");
    if (b && keysById.has(b.dataset.key)) openDialog("revoke", keysById.get(b.dataset.key));
  });
  $("#confirm-reason").addEventListener("input", syncConfirm);
  $("#confirm-by").addEventListener("input", syncConfirm);
  $("#confirm-form").addEventListener("submit", (e) => confirmAction(e).catch((err) => { $("#confirm-error").textContent = String(err); }));
  $("#confirm-cancel").addEventListener("click", closeDialog);
  $("#confirm").addEventListener("close", () => { pending = null; });
  refreshClaims().catch(() => {});
}

// ---- start ----------------------------------------------------------------------------------------
function every(ms, fn) { const run = () => fn().catch((e) => { if (!(e instanceof HttpError)) console.warn(e); }); run(); timers.push(setInterval(run, ms)); }

function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  document.body.dataset.view = "app";
  every(HUNTS_POLL_MS, refreshHunts);
  every(HEALTH_POLL_MS, refreshHealth);
  every(AUDIT_POLL_MS, refreshAudit);
  every(KEYS_POLL_MS, refreshKeys);
  timers.push(setInterval(() => pollLive().catch(() => {}), LIVE_POLL_MS));
  timers.push(setInterval(() => refreshBoard().catch(() => {}), BOARD_POLL_MS));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", (e) => onLogin(e).catch((err) => { $("#login-error").textContent = String(err); }));
  $("#logout").addEventListener("click", () => signOut());
  $("#board-name").addEventListener("change", () => { $("#board-period").replaceChildren(new Option("current", "")); refreshBoard(); });
  $("#board-period").addEventListener("change", () => refreshBoard());
  setupMapInput();
  setupActions();
  await loginLink();
  if (key && !(await tryKey(key))) start();
  else signOut(key ? "Refused: the stored key is no longer accepted" : $("#login-error").textContent);
});
