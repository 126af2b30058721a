import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /player.js`: the `<callrec-player>` custom element the CRM drops into its own pages.
///
/// A classic script (no module, so a page of another origin loads it without CORS, though the
/// answer allows it too), no dependency, CSP-friendly: no eval, no inline script or style (its
/// styles are a constructed style sheet, which `style-src` does not govern). Attributes: `src`, a
/// signed `.opus` (or `.wav`) URL; `peaks`, the signed `waveform.json` URL of the same recording
/// (the element asks it for as many columns as it is wide); `labels`, lane names of a 2-channel
/// recording (`agent,customer`; default `left,right`); `start`, seconds to open at. Silence is
/// shaded where a column's peaks stay within ±1 of 128 (about −42 dBFS). Keys while it has focus:
/// space plays or pauses, ← → move 5 s, − + change the speed (1×, 1.25×, 1.5×, 2×, pitch kept).
enum PlayerAsset {
    static func register(on router: Router<CallrecContext>) {
        router.get("/player.js") { request, _ -> Response in
            var headers: HTTPFields = [
                .contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=300", .eTag: etag,
                HTTPField.Name("Access-Control-Allow-Origin")!: "*", HTTPField.Name("Cross-Origin-Resource-Policy")!: "cross-origin",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ]
            if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: headers) }
            headers[.contentLength] = String(js.utf8.count)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: js)))
        }
    }

    static let etag: String = {
        var h: UInt64 = 0xcbf29ce484222325
        for b in js.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return "\"p" + String(h, radix: 16) + "\""
    }()

    static let js = #"""
/* callrec <callrec-player>: served by callrec at /player.js. No dependencies. */
(function () {
  'use strict';
  if (window.customElements.get('callrec-player')) return;
  \#(ConsoleAssets.drawPeaksJS)
  const css = `
    :host { display: block; font: 14px system-ui, sans-serif; color: #1d2430; border: 1px solid #d9dee6; border-radius: 6px; padding: 8px; background: #fff; }
    :host(:focus-visible) { outline: 2px solid #1f5fbf; outline-offset: 2px; }
    canvas { display: block; width: 100%; height: 80px; cursor: pointer; background: #fbfcfe; touch-action: none; }
    .bar { display: flex; gap: 10px; align-items: center; margin-top: 6px; }
    button, select { font: inherit; padding: 2px 8px; border: 1px solid #d9dee6; border-radius: 4px; background: #fff; color: #1d2430; }
    button { min-width: 4.5em; }
    .time { font-variant-numeric: tabular-nums; margin-left: auto; }
    audio { display: none; }`;
  let sheet = null;
  function styles() {
    if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(css); }
    return sheet;
  }
  function clock(seconds) {
    if (!isFinite(seconds) || seconds < 0) seconds = 0;
    const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    return (h ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
  }
  function make(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const speeds = [1, 1.25, 1.5, 2];

  class CallrecPlayer extends HTMLElement {
    static get observedAttributes() { return ['src', 'peaks']; }

    constructor() {
      super();
      const root = this.attachShadow({ mode: 'open' });
      root.adoptedStyleSheets = [styles()];
      this.audio = make('audio', { preload: 'metadata', part: 'audio', 'data-testid': 'player-audio' });
      this.audio.preservesPitch = true;
      this.canvas = make('canvas', { part: 'waveform', 'data-testid': 'waveform', role: 'slider', 'aria-label': 'position' });
      const bar = make('div', { class: 'bar' });
      this.button = make('button', { type: 'button', part: 'play', 'data-testid': 'player-play' }, 'Play');
      this.speed = make('select', { part: 'speed', 'data-testid': 'player-speed', 'aria-label': 'speed' });
      for (const s of speeds) this.speed.appendChild(make('option', { value: String(s) }, s + '×'));
      this.time = make('span', { class: 'time', part: 'time' }, '0:00 / 0:00');
      bar.append(this.button, this.speed, this.time);
      root.append(this.audio, this.canvas, bar);
      this.peaks = null;
      this.silence = [];
      this.frame = 0;

      this.button.addEventListener('click', () => this.toggle());
      this.speed.addEventListener('change', () => { this.audio.playbackRate = Number(this.speed.value); });
      this.audio.addEventListener('ratechange', () => { this.speed.value = String(this.audio.playbackRate); });
      for (const ev of ['pause', 'seeked', 'timeupdate', 'loadedmetadata', 'durationchange']) this.audio.addEventListener(ev, () => this.draw());
      this.audio.addEventListener('play', () => { this.button.textContent = 'Pause'; this.tick(); });
      this.audio.addEventListener('pause', () => { this.button.textContent = 'Play'; });
      let dragging = false;
      const seek = (ev) => {
        const rect = this.canvas.getBoundingClientRect();
        const frac = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
        this.audio.currentTime = frac * this.duration();
        this.draw();
      };
      this.canvas.addEventListener('pointerdown', (ev) => { dragging = true; this.canvas.setPointerCapture(ev.pointerId); seek(ev); });
      this.canvas.addEventListener('pointermove', (ev) => { if (dragging) seek(ev); });
      this.canvas.addEventListener('pointerup', () => { dragging = false; });
      this.addEventListener('keydown', (ev) => this.key(ev));
      new ResizeObserver(() => this.resize()).observe(this.canvas);
    }

    connectedCallback() {
      if (!this.hasAttribute('tabindex')) this.tabIndex = 0;
      this.load();
    }

    attributeChangedCallback() { if (this.isConnected) this.load(); }

    load() {
      const src = this.getAttribute('src') || '';
      if (src && this.audio.getAttribute('src') !== src) {
        this.audio.src = src;
        const start = Number(this.getAttribute('start')) || 0;
        if (start > 0) this.audio.addEventListener('loadedmetadata', () => { this.audio.currentTime = start; }, { once: true });
      }
      this.resize();
    }

    resize() {
      const w = Math.max(100, Math.min(8192, Math.round(this.canvas.clientWidth * (window.devicePixelRatio || 1)) || 600));
      const h = Math.round(80 * (window.devicePixelRatio || 1));
      if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
      const peaks = this.getAttribute('peaks');
      if (!peaks) { this.draw(); return; }
      const url = peaks + (peaks.indexOf('?') >= 0 ? '&' : '?') + 'pixels=' + w;
      if (url === this.peaksURL) { this.draw(); return; }
      this.peaksURL = url;
      fetch(url, { credentials: 'omit' }).then(r => r.ok ? r.json() : null).then(p => {
        if (!p || url !== this.peaksURL) return;
        this.peaks = p;
        this.silence = this.silentSpans(p);
        this.draw();
        this.dispatchEvent(new Event('peaksload'));
      }).catch(() => {});
    }

    /** Columns whose peaks all stay within ±1 (8-bit: about −42 dBFS), as [start_ms, end_ms] spans. */
    silentSpans(p) {
      const n = p.length, ch = p.channels || 1, spans = [], msPer = p.samples_per_pixel / p.sample_rate * 1000;
      const quiet = p.bits === 16 ? 256 : 1;
      let from = -1;
      for (let i = 0; i <= n; i++) {
        let silent = i < n;
        for (let c = 0; silent && c < ch; c++) {
          const k = (i * ch + c) * 2;
          if (p.data[k] < -quiet || p.data[k + 1] > quiet) silent = false;
        }
        if (silent && from < 0) from = i;
        if (!silent && from >= 0) { if (i - from >= 2) spans.push([from * msPer, i * msPer]); from = -1; }
      }
      return spans;
    }

    duration() {
      const a = this.audio.duration;
      if (isFinite(a) && a > 0) return a;
      const p = this.peaks;
      return p && p.sample_rate ? p.length * p.samples_per_pixel / p.sample_rate : 0;
    }

    draw() {
      const labels = (this.getAttribute('labels') || 'left,right').split(',');
      drawPeaks(this.canvas.getContext('2d'), this.canvas.width, this.canvas.height, this.peaks, this.silence, this.duration(), this.audio.currentTime, labels);
      this.time.textContent = clock(this.audio.currentTime) + ' / ' + clock(this.duration());
      this.canvas.setAttribute('aria-valuenow', String(Math.floor(this.audio.currentTime)));
    }

    tick() {
      cancelAnimationFrame(this.frame);
      const step = () => { this.draw(); if (!this.audio.paused) this.frame = requestAnimationFrame(step); };
      this.frame = requestAnimationFrame(step);
    }

    toggle() { return this.audio.paused ? this.audio.play() : this.audio.pause(); }
    play() { return this.audio.play(); }
    pause() { this.audio.pause(); }
    get currentTime() { return this.audio.currentTime; }
    set currentTime(t) { this.audio.currentTime = t; }

    key(ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const path = ev.composedPath();
      if (path[0] && (path[0].tagName === 'SELECT' || path[0].tagName === 'BUTTON') && (ev.key === ' ' || ev.key === 'Enter')) return;
      const a = this.audio;
      if (ev.key === ' ') { ev.preventDefault(); this.toggle(); }
      else if (ev.key === 'ArrowLeft') { ev.preventDefault(); a.currentTime = Math.max(0, a.currentTime - 5); }
      else if (ev.key === 'ArrowRight') { ev.preventDefault(); a.currentTime = Math.min(this.duration(), a.currentTime + 5); }
      else if (ev.key === '+' || ev.key === '-') {
        const i = speeds.indexOf(a.playbackRate);
        a.playbackRate = speeds[Math.max(0, Math.min(speeds.length - 1, (i < 0 ? 0 : i) + (ev.key === '+' ? 1 : -1)))];
      }
    }
  }
  window.customElements.define('callrec-player', CallrecPlayer);
})();
"""#
}
