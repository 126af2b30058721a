/// The console's script and style sheet, served by callrec itself (no CDN, no build step):
/// one ES module and one CSS file, compiled into the binary so an installed `callrec` needs no
/// resource folder beside it.
enum ConsoleAssets {
    static let files: [String: (String, String)] = [
        "console.js": (js, "text/javascript; charset=utf-8"),
        "console.css": (css, "text/css; charset=utf-8"),
    ]
    /// Changes with the assets' text: a new binary's pages never run an old script.
    static let etag: String = {
        var h: UInt64 = 0xcbf29ce484222325
        for b in (js + css).utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return "\"" + String(h, radix: 16) + "\""
    }()

    static let css = #"""
:root { --fg:#1d2430; --muted:#5b6576; --line:#d9dee6; --accent:#1f5fbf; --held:#b3261e; --bg:#f7f8fa; font-family: system-ui, sans-serif; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:var(--bg); font-size:15px; }
header { display:flex; align-items:center; gap:1.5rem; padding:.5rem 1.25rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; color:var(--accent); text-decoration:none; }
header nav { display:flex; gap:1rem; }
header nav a { color:var(--fg); text-decoration:none; padding:.25rem 0; }
header nav a[aria-current=page] { border-bottom:2px solid var(--accent); }
.who { margin-left:auto; display:flex; gap:1rem; align-items:center; color:var(--muted); font-size:.9rem; }
form.inline { display:inline; }
main { padding:1rem 1.25rem; max-width:1280px; }
h1 { font-size:1.3rem; margin:.25rem 0 1rem; } h2 { font-size:1.05rem; }
.filters { display:flex; flex-wrap:wrap; gap:.75rem; align-items:end; margin-bottom:1rem; }
label { display:flex; flex-direction:column; font-size:.8rem; color:var(--muted); gap:.15rem; }
input, select, button { font:inherit; padding:.3rem .5rem; border:1px solid var(--line); border-radius:4px; background:#fff; color:var(--fg); }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
button:focus-visible, a:focus-visible, canvas:focus-visible, input:focus-visible, select:focus-visible { outline:2px solid var(--accent); outline-offset:2px; }
.quick { display:flex; gap:.75rem; font-size:.9rem; }
table { border-collapse:collapse; width:100%; background:#fff; }
th, td { text-align:left; padding:.35rem .6rem; border-bottom:1px solid var(--line); white-space:nowrap; }
th { font-size:.8rem; color:var(--muted); font-weight:600; }
table.audit td:nth-child(7) { max-width:22rem; overflow:hidden; text-overflow:ellipsis; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
tr[data-uniqueid] { cursor:pointer; } tr[data-uniqueid]:hover { background:#eef3fb; }
.badge { display:inline-block; padding:.1rem .45rem; border-radius:3px; font-size:.8rem; }
.badge.held { background:var(--held); color:#fff; }
.status { color:var(--muted); }
.error { color:var(--held); font-weight:600; }
.login { max-width:22rem; margin:3rem auto; background:#fff; padding:1.5rem; border:1px solid var(--line); border-radius:6px; }
.login form { display:flex; flex-direction:column; gap:.8rem; }
.player { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.75rem; margin-bottom:1rem; }
.player audio { width:100%; }
.player canvas { width:100%; height:120px; display:block; cursor:pointer; margin:.5rem 0; background:#fbfcfe; }
.controls { display:flex; gap:1.25rem; align-items:end; }
.clock { font-variant-numeric:tabular-nums; } .hint { color:var(--muted); font-size:.85rem; }
.columns { display:grid; grid-template-columns: 1fr 1fr 1fr; gap:1.5rem; }
dl { display:grid; grid-template-columns:auto 1fr; gap:.2rem .8rem; margin:0; } dt { color:var(--muted); }
form.hold { display:flex; gap:.6rem; align-items:end; margin-bottom:1rem; }
.job { display:flex; gap:1rem; align-items:center; } progress { width:20rem; height:1rem; }
[hidden] { display:none !important; }
label.check { flex-direction:row; align-items:center; gap:.35rem; font-size:.9rem; color:var(--fg); padding-bottom:.35rem; }
tr.new { background:#fff7d6; }
button.secondary { background:#fff; color:var(--accent); }
button.danger { background:var(--held); border-color:var(--held); }
.warning { background:#fdecea; border:1px solid #f3c2bd; padding:.6rem .8rem; border-radius:4px; max-width:60rem; }
.result { font-weight:600; }
form.inline-form { display:flex; gap:.4rem; align-items:center; }
td.reason { white-space:normal; max-width:36rem; }
.live { margin-top:1.25rem; } .live h2 { margin:.25rem 0 .5rem; }
"""#

    /// Draws reduced peaks (audiowaveform v2, any number of channels: one lane each, labelled when
    /// more than one) with silence shaded and the played part darker. Shared by the console's
    /// player and `/player.js`.
    static let drawPeaksJS = #"""
function drawPeaks(ctx, w, h, peaks, silence, dur, played, labels, pauses) {
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = '#eceff4';
  if (dur > 0) for (const [a, b] of silence) ctx.fillRect(a / 1000 / dur * w, 0, Math.max(1, (b - a) / 1000 / dur * w), h);
  ctx.fillStyle = '#f6d8a8';  // PCI pauses: what Asterisk was told not to record
  if (dur > 0 && pauses) for (const [a, b] of pauses) ctx.fillRect(a / 1000 / dur * w, 0, Math.max(1, (b - a) / 1000 / dur * w), h);
  if (peaks && peaks.length > 0) {
    const data = peaks.data, n = peaks.length, ch = peaks.channels || 1, scale = peaks.bits === 16 ? 32768 : 128;
    const lane = h / ch, px = dur > 0 ? played / dur * w : 0;
    for (let c = 0; c < ch; c++) {
      const mid = lane * c + lane / 2;
      for (let x = 0; x < w; x++) {
        const i0 = Math.floor(x / w * n), i1 = Math.max(i0 + 1, Math.floor((x + 1) / w * n));
        let lo = 0, hi = 0;
        for (let i = i0; i < i1 && i < n; i++) {
          const k = (i * ch + c) * 2;
          if (data[k] < lo) lo = data[k];
          if (data[k + 1] > hi) hi = data[k + 1];
        }
        ctx.fillStyle = x < px ? '#1f5fbf' : '#8fa6c8';
        const y0 = mid - hi / scale * lane / 2, y1 = mid - lo / scale * lane / 2;
        ctx.fillRect(x, y0, 1, Math.max(1, y1 - y0));
      }
      if (ch > 1) {
        if (c > 0) { ctx.fillStyle = '#d9dee6'; ctx.fillRect(0, lane * c, w, 1); }
        ctx.fillStyle = '#1d2430';
        ctx.font = '600 12px system-ui, sans-serif';
        ctx.fillText((labels && labels[c]) || String(c), 6, lane * c + 14);
      }
    }
  }
  if (dur > 0) { ctx.fillStyle = '#b3261e'; ctx.fillRect(played / dur * w, 0, 2, h); }
}
"""#

    static let js = #"""
// callrec console: plain ES module, no dependencies. Pages are rendered by the server; this adds
// the result list (live), the calls being recorded, the player and the export progress.
\#(drawPeaksJS)
const body = document.body;
const lang = body.dataset.lang || 'en';
const zone = body.dataset.tz || 'UTC';
const csrf = body.dataset.csrf || '';

const timeFmt = new Intl.DateTimeFormat(lang, { timeZone: zone, dateStyle: 'short', timeStyle: 'medium' });
const pctFmt = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });

function clock(seconds) {
  if (!isFinite(seconds) || seconds < 0) seconds = 0;
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
  return (h ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
}

/** `YYYY-MM-DD` plus n days (the API's `to` is exclusive; the page's is the last day shown). */
function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return t.toISOString().slice(0, 10);
}

async function api(path, options = {}) {
  const headers = Object.assign({ 'Accept': 'application/json' }, options.headers || {});
  if (options.method && options.method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, Object.assign({}, options, { headers, credentials: 'same-origin' }));
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
  return data;
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- search results ------------------------------------------------------------------------

function initSearch(table) {
  const d = table.dataset, tbody = table.tBodies[0];
  const more = document.getElementById('load-more'), status = document.getElementById('results-status');
  let cursor = null;
  const params = new URLSearchParams();
  if (/^\d{4}-\d{2}-\d{2}$/.test(d.from)) params.set('from', d.from);
  if (/^\d{4}-\d{2}-\d{2}$/.test(d.to)) params.set('to', addDays(d.to, 1));
  if (d.agent) params.set('agent', d.agent);
  if (d.lead) params.set('lead_number', d.lead);
  if (d.company) params.set('company', d.company);
  if (d.minDuration) params.set('min_duration_ms', String(Number(d.minDuration) * 1000));
  if (d.held) params.set('held', 'true');
  params.set('limit', d.limit || '50');
  const dayFmt = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });

  /** Whether a recording the server announced belongs in this list (the same filters as the API's). */
  function matches(r) {
    const day = dayFmt.format(new Date(r.started_at));
    if (d.from && day < d.from) return false;
    if (d.to && day > d.to) return false;
    if (d.agent && r.agent !== d.agent) return false;
    if (d.lead && r.lead_number !== d.lead) return false;
    if (d.company && r.company !== d.company) return false;
    if (d.minDuration && r.duration_ms < Number(d.minDuration) * 1000) return false;
    if (d.held && !r.legal_hold) return false;
    return true;
  }
  const key = (r) => [Date.parse(r.started_at), r.uniqueid];
  const before = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const shown = new Map();

  /** A recording added or changed elsewhere: its row replaced, or inserted in start order. */
  function announce(r) {
    const old = shown.get(r.uniqueid);
    if (old) {
      const fresh = row(r);
      if (matches(r)) { old.tr.replaceWith(fresh); shown.set(r.uniqueid, { tr: fresh, key: key(r) }); }
      else { old.tr.remove(); shown.delete(r.uniqueid); }
      return;
    }
    if (!matches(r) || table.dataset.state !== 'done') return;
    const k = key(r);
    const rows = [...shown.values()];
    // Past the last row shown while more pages wait: "Load more" will bring it.
    if (cursor && rows.length && !before(k, rows[rows.length - 1].key)) return;
    const tr = row(r);
    tr.classList.add('new');
    const next = rows.find(x => before(k, x.key));
    if (next) tbody.insertBefore(tr, next.tr); else tbody.appendChild(tr);
    const entries = [...shown.entries(), [r.uniqueid, { tr, key: k }]].sort((a, b) => before(a[1].key, b[1].key) ? -1 : 1);
    shown.clear();
    for (const [id, v] of entries) shown.set(id, v);
    status.textContent = '';
  }
  table.announce = announce;

  async function load() {
    status.textContent = d.tLoading;
    table.dataset.state = 'loading';
    more.disabled = true;
    const q = new URLSearchParams(params);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api('/console/api/recordings?' + q);
      for (const r of page.items) {
        if (shown.has(r.uniqueid)) continue;  // announced live already
        const tr = row(r);
        tbody.appendChild(tr);
        shown.set(r.uniqueid, { tr, key: key(r) });
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = tbody.rows.length ? '' : d.tNone;
    } catch (e) {
      status.textContent = e.message;
    }
    more.disabled = false;
    table.dataset.state = 'done';
  }

  function row(r) {
    const tr = el('tr', { 'data-testid': 'result-row', 'data-uniqueid': r.uniqueid });
    const a = el('a', { href: '/r/' + encodeURIComponent(r.uniqueid) }, timeFmt.format(new Date(r.started_at)));
    const start = el('td'); start.appendChild(a); tr.appendChild(start);
    tr.appendChild(el('td', { class: 'num' }, clock(r.duration_ms / 1000)));
    tr.appendChild(el('td', {}, r.agent || '—'));
    tr.appendChild(el('td', {}, r.lead_number || '—'));
    tr.appendChild(el('td', {}, r.company || '—'));
    tr.appendChild(el('td', { class: 'num' }, pctFmt.format(Math.max(0, 1 - r.silence.ratio) * 100) + ' %'));
    const hold = el('td');
    if (r.legal_hold) hold.appendChild(el('span', { class: 'badge held', 'data-testid': 'hold-badge' }, d.tHeld));
    tr.appendChild(hold);
    tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'A') a.click(); });
    return tr;
  }

  more.addEventListener('click', load);
  load();
}

// ---- live: new recordings and the calls being recorded now (Server-Sent Events) -------------

function initLive(section, results) {
  const tbody = section.querySelector('tbody'), status = document.getElementById('live-status');
  let calls = [], at = Date.now();
  function render() {
    tbody.replaceChildren();
    const grown = Date.now() - at;
    for (const c of calls) {
      const tr = el('tr', { 'data-testid': 'live-row', 'data-uniqueid': c.uniqueid });
      tr.appendChild(el('td', {}, timeFmt.format(new Date(c.started_at))));
      // Between events the duration goes on growing here (the server says at most once a second).
      tr.appendChild(el('td', { class: 'num', 'data-testid': 'live-duration' }, clock((c.duration_ms + grown) / 1000)));
      tr.appendChild(el('td', {}, c.agent || '—'));
      tr.appendChild(el('td', {}, c.lead_number || '—'));
      tr.appendChild(el('td', {}, c.company || '—'));
      tbody.appendChild(tr);
    }
    section.querySelector('table').hidden = calls.length === 0;
    status.hidden = calls.length > 0;
  }
  const source = new EventSource('/console/api/events');
  source.addEventListener('calls', (ev) => { calls = JSON.parse(ev.data).calls; at = Date.now(); render(); });
  source.addEventListener('recording', (ev) => { if (results && results.announce) results.announce(JSON.parse(ev.data)); });
  source.addEventListener('open', () => { section.dataset.connected = '1'; });
  source.addEventListener('error', () => { section.dataset.connected = ''; });
  setInterval(() => { if (calls.length) render(); }, 1000);
  window.addEventListener('pagehide', () => source.close());
  render();
}

// ---- player --------------------------------------------------------------------------------

function initPlayer(section) {
  const d = section.dataset;
  const audio = section.querySelector('audio');
  const canvas = section.querySelector('canvas');
  const speed = section.querySelector('#speed');
  const clockEl = section.querySelector('#clock');
  const total = Number(d.durationMs) / 1000;
  const silence = JSON.parse(d.silence || '[]');
  const pauses = JSON.parse(d.pauses || '[]');
  let peaks = null;

  // Ogg Opus where the browser plays it, else the WAV the server decodes.
  const opus = audio.canPlayType('audio/ogg; codecs=opus');
  audio.src = opus ? d.opus : d.wav;
  audio.preservesPitch = true;
  const start = Number(d.start) || 0;
  if (start > 0) {
    audio.addEventListener('loadedmetadata', () => { audio.currentTime = Math.min(start, duration()); }, { once: true });
  }

  function duration() { return isFinite(audio.duration) && audio.duration > 0 ? audio.duration : total; }

  let labels = JSON.parse(d.laneLabels || '[]');
  function draw() {
    drawPeaks(canvas.getContext('2d'), canvas.width, canvas.height, peaks, silence, duration(), audio.currentTime, labels, pauses);
    if (peaks) { canvas.dataset.lanes = String(peaks.channels || 1); canvas.dataset.labels = (peaks.channels > 1 ? labels : []).join(','); }
    clockEl.textContent = clock(audio.currentTime) + ' / ' + clock(duration());
  }

  // Peaks already reduced to the canvas's width by the server: one small answer for any length.
  fetch(d.peaks + '&pixels=' + canvas.width, { credentials: 'same-origin' }).then(r => r.ok ? r.json() : null).then(p => {
    peaks = p;
    draw();
    // Two channels: one lane each, named by the speakers' roles when the recording knows them.
    if (p && p.channels > 1 && d.json) {
      api(d.json).then(rec => {
        if (Array.isArray(rec.speakers)) {
          const byChannel = {};
          for (const s of rec.speakers) byChannel[s.channel] = d['t' + s.role.charAt(0).toUpperCase() + s.role.slice(1)] || s.role;
          labels = labels.map((l, i) => byChannel[i] || l);
          draw();
        }
      }).catch(() => {});
    }
  }).catch(() => {});

  function seekTo(ev) {
    const rect = canvas.getBoundingClientRect();
    const frac = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
    audio.currentTime = frac * duration();
    draw();
  }
  let dragging = false;
  canvas.addEventListener('pointerdown', (ev) => { dragging = true; canvas.setPointerCapture(ev.pointerId); seekTo(ev); });
  canvas.addEventListener('pointermove', (ev) => { if (dragging) seekTo(ev); });
  canvas.addEventListener('pointerup', () => { dragging = false; });

  speed.addEventListener('change', () => { audio.playbackRate = Number(speed.value); });
  audio.addEventListener('ratechange', () => { speed.value = String(audio.playbackRate); });

  let frame = 0;
  function tick() { draw(); frame = audio.paused ? 0 : requestAnimationFrame(tick); }
  audio.addEventListener('play', () => { if (!frame) frame = requestAnimationFrame(tick); });
  for (const ev of ['pause', 'seeked', 'timeupdate', 'loadedmetadata']) audio.addEventListener(ev, draw);

  document.addEventListener('keydown', (ev) => {
    const t = ev.target.tagName;
    if (t === 'INPUT' || t === 'SELECT' || t === 'TEXTAREA' || t === 'BUTTON' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === ' ') { ev.preventDefault(); audio.paused ? audio.play() : audio.pause(); }
    else if (ev.key === 'ArrowLeft') { ev.preventDefault(); audio.currentTime = Math.max(0, audio.currentTime - 5); }
    else if (ev.key === 'ArrowRight') { ev.preventDefault(); audio.currentTime = Math.min(duration(), audio.currentTime + 5); }
  });
  draw();
}

// ---- exports -------------------------------------------------------------------------------

function initExport(form) {
  const job = document.getElementById('job'), bar = document.getElementById('export-progress');
  const status = document.getElementById('export-status'), link = document.getElementById('export-download');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const req = { from: f.get('from'), to: addDays(String(f.get('to')), 1) };
    if (f.get('company')) req.company = f.get('company');
    job.hidden = false; link.hidden = true; bar.value = 0; status.textContent = '';
    try {
      let j = await api('/console/api/exports', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req) });
      while (j.status === 'queued' || j.status === 'running') {
        show(j);
        await new Promise(r => setTimeout(r, 500));
        j = await api('/console/api/exports/' + j.id);
      }
      show(j);
      if (j.status === 'completed') {
        bar.value = 100;
        link.href = '/console/api/exports/' + j.id + '/download';
        link.hidden = false;
      } else {
        status.textContent = form.dataset.tFailed + ': ' + (j.error || j.status);
      }
    } catch (e) {
      status.textContent = e.message;
    }
  });
  function show(j) {
    const p = j.progress || {};
    bar.value = p.total ? Math.round(p.done / p.total * 100) : (j.status === 'completed' ? 100 : 0);
    status.textContent = j.status + (p.total ? ' — ' + p.done + ' / ' + p.total : '');
  }
}

const results = document.getElementById('results');
if (results) initSearch(results);
const live = document.getElementById('live');
if (live) initLive(live, results);
const player = document.getElementById('player');
if (player) initPlayer(player);
const quarantine = document.getElementById('quarantine');
if (quarantine) {
  const status = document.getElementById('quarantine-status');
  for (const b of quarantine.querySelectorAll('[data-testid=quarantine-retry]')) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const r = await api('/console/api/quarantine/' + b.dataset.id + '/retry', { method: 'POST' });
        status.textContent = r.spool_path;
        b.closest('tr').remove();
      } catch (e) {
        status.textContent = e.message;
        b.disabled = false;
      }
    });
  }
}
const exportForm = document.getElementById('export');
if (exportForm) initExport(exportForm);
"""#
}
