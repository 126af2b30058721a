"""scripts/bench-console's measurements (see that script). Prints one line per figure."""

import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import wave

from selenium import webdriver

BIN, ROWS = os.path.abspath(sys.argv[1]), int(sys.argv[2])
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEECH = os.path.join(ROOT, "Fixtures", "audio", "speech.wav")
work = tempfile.mkdtemp(prefix="callrec-bench-console-")
data, spool = os.path.join(work, "data"), os.path.join(work, "spool")
os.makedirs(spool)
env = dict(os.environ, CALLREC_DATA=data, CALLREC_SPOOL=spool, CALLREC_TZ="America/Sao_Paulo", CALLREC_BCRYPT_COST="6",
           CALLREC_JWT_SECRET="bench-console-jwt-secret-0123456789abcdef", CALLREC_RETENTION_DAYS="36500")
procs = []


def callrec(*args, stdin=None):
    return subprocess.run([BIN, *args], env=env, input=stdin, capture_output=True, text=True, check=True).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(x):
    return f"{x * 1000:.1f} ms"


try:
    # ---- the recordings: a real 1-hour call, then ROWS rows by SQL, and a 2-hour call's peaks ----
    one_hour = os.path.join(work, "1767225600.1.wav")
    with wave.open(SPEECH, "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    with wave.open(one_hour, "wb") as out:
        out.setparams(params)
        need = 3600 * params.framerate * params.sampwidth
        while need > 0:
            out.writeframes(frames[:need])
            need -= len(frames)
    t0 = time.time()
    callrec("ingest", one_hour)
    print(f"== a 1-hour call ingested in {time.time() - t0:.1f} s", flush=True)
    # The rows' template: a real 6-second call (the 1-hour one's silence list would bloat every row).
    template = os.path.join(work, "1767225600.3.wav")
    shutil.copy(SPEECH, template)
    callrec("ingest", template)
    db_path = os.path.join(data, "catalog.sqlite")
    t0 = time.time()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    cols = [r[1] for r in con.execute("PRAGMA table_info(recording)")]
    varied = {
        "uniqueid": "printf('%d.%d', 1735689600 + n.i * 30, n.i)",  # every 30 s through 2025
        "started_at": "1735689600 + n.i * 30",
        "company": "CAST(n.i % 50 AS TEXT)",
        "agent": "CAST(1000 + n.i % 500 AS TEXT)",
        "lead_number": "printf('55119%08d', n.i % 200000)",
        "duration_ms": "1000 * (n.i % 900)",  # 0–15 min
        "legal_hold": "(n.i % 1000 = 0)",  # one in a thousand held
        "ingested_at": "1735689600 + n.i * 30 + 120",
        "updated_at": "1735689600 + n.i * 30 + 120",
    }
    select = ", ".join(varied.get(c, f"r.{c}") for c in cols)
    with con:
        con.execute(f"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO recording ({", ".join(cols)})
            SELECT {select} FROM n, (SELECT * FROM recording WHERE uniqueid = '1767225600.3') AS r""", (ROWS - 3,))
        # A 2-hour call: the 1-hour call's row and peaks, twice over.
        two = {c: f"r.{c}" for c in cols}
        two.update(uniqueid="'1767232800.2'", started_at="1767232800", duration_ms="7200000")
        con.execute(f"INSERT INTO recording ({', '.join(cols)}) SELECT {', '.join(two[c] for c in cols)} FROM recording r WHERE uniqueid = '1767225600.1'")
        peaks = json.loads(con.execute("SELECT json FROM waveform WHERE uniqueid = '1767225600.1'").fetchone()[0])
        peaks["data"] = peaks["data"] * 2
        peaks["length"] *= 2
        full = json.dumps(peaks, separators=(",", ":")).encode()
        con.execute("INSERT INTO waveform (uniqueid, json) VALUES ('1767232800.2', ?)", (full,))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("ANALYZE")
    count = con.execute("SELECT COUNT(*) FROM recording").fetchone()[0]
    con.close()
    print(f"== catalog: {count:,} rows built in {time.time() - t0:.1f} s, {os.path.getsize(db_path) / 2**20:.0f} MiB; "
          f"2-hour call's stored peaks {peaks['length']:,} pixels, {len(full) / 1024:.0f} KiB; machine: {os.cpu_count()} cores, "
          f"load {open('/proc/loadavg').read().split()[0]}", flush=True)

    callrec("user", "add", "bench", "--role", "admin", "--password-stdin", stdin="bench passphrase 123\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "serve.log"), "w")
    server = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(server)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.1)

    # ---- sign in over HTTP, then the search page and its JSON on one kept-alive connection ----
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    r = conn.getresponse()
    page = r.read().decode()
    login_cookie = re.search(r"callrec_login=([^;]+)", r.getheader("Set-Cookie")).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "next": "/", "username": "bench", "password": "bench passphrase 123"})
    conn.request("POST", "/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": base,
                                                        "Cookie": "callrec_login=" + login_cookie})
    r = conn.getresponse()
    r.read()
    session = re.search(r"callrec_session=([^;]+)", r.getheader("Set-Cookie")).group(1)
    cookie = {"Cookie": "callrec_session=" + session}

    def timed(path, headers, n=30):
        times, size = [], 0
        for _ in range(n):
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            times.append(time.perf_counter() - t)
            assert resp.status == 200, (path, resp.status, body[:200])
            size = len(body)
        return pct(times, 50), pct(times, 95), size

    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)

    def sqlite_time(sql, args, n=30):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            db.execute(sql, args).fetchall()
            times.append(time.perf_counter() - t)
        return pct(times, 50)

    day_from, day_to = 1750042800, 1750042800 + 86400  # 2025-06-16 in São Paulo
    searches = [
        ("the search page (HTML)", "/?from=2025-06-16&to=2025-06-16", None),
        ("a day, 50 rows", "/console/api/recordings?from=2025-06-16&to=2025-06-17&limit=50",
         ("SELECT * FROM recording WHERE started_at >= ? AND started_at < ? ORDER BY started_at, uniqueid LIMIT 51", (day_from, day_to))),
        ("a day, ≥ 5 min, held only", "/console/api/recordings?from=2025-06-16&to=2025-06-17&limit=50&min_duration_ms=300000&held=true",
         ("SELECT * FROM recording WHERE started_at >= ? AND started_at < ? AND duration_ms >= 300000 AND legal_hold = 1 ORDER BY started_at, uniqueid LIMIT 51", (day_from, day_to))),
        ("held only, no dates, 50 rows", "/console/api/recordings?held=true&limit=50",
         ("SELECT * FROM recording WHERE legal_hold = 1 ORDER BY started_at, uniqueid LIMIT 51", ())),
        ("an agent, 50 rows", "/console/api/recordings?agent=1007&limit=50",
         ("SELECT * FROM recording WHERE agent = '1007' ORDER BY started_at, uniqueid LIMIT 51", ())),
    ]
    for name, path, ref in searches:
        p50, p95, size = timed(path, cookie)
        line = f"search {name}: p50 {ms(p50)}, p95 {ms(p95)}, {size / 1024:.1f} KiB (target ≤ 50 ms)"
        if ref:
            line += f"; reference, the SELECT in SQLite alone: p50 {ms(sqlite_time(*ref))}"
        print(line, flush=True)

    # ---- peaks of the 2-hour call ----
    signed = callrec("sign", "/recordings/1767232800.2/waveform.json").strip()
    p50, p95, size = timed(signed + "&pixels=1200", {})
    print(f"peaks, 2-hour call, pixels=1200: p50 {ms(p50)}, p95 {ms(p95)}, {size / 1024:.1f} KiB (targets ≤ 20 ms, ≤ 20 KB)", flush=True)
    fp50, _, fsize = timed(signed, {}, n=10)
    t = time.perf_counter()
    j = json.loads(full)
    d, n, cols_ = j["data"], j["length"], 1200
    out = []
    for c in range(cols_):
        a, b = c * n // cols_, max(c * n // cols_ + 1, (c + 1) * n // cols_)
        out += [min(d[2 * i] for i in range(a, b)), max(d[2 * i + 1] for i in range(a, b))]
    naive = time.perf_counter() - t
    print(f"peaks reference, the full-resolution JSON: p50 {ms(fp50)} to fetch, {fsize / 1024:.0f} KiB, then {ms(naive)} to parse and reduce (Python)", flush=True)

    # ---- play to first audio, in Chromium ----
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,720", "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    driver.set_script_timeout(30)
    measure = """
        const done = arguments[arguments.length - 1], a = document.querySelector(arguments[0]), seek = arguments[1];
        const go = () => {
          if (seek) a.currentTime = a.duration * seek;
          const t0 = performance.now();
          a.addEventListener('playing', () => done(performance.now() - t0), { once: true });
          a.play().catch(e => done(String(e)));
        };
        if (a.readyState >= 1) go(); else a.addEventListener('loadedmetadata', go, { once: true });
    """

    def play_times(url, selector, seek=0, n=7):
        out = []
        for _ in range(n):
            driver.get(url)
            v = driver.execute_async_script(measure, selector, seek)
            assert isinstance(v, (int, float)), v
            out.append(v / 1000)
        return out

    driver.get(base + "/login")
    driver.add_cookie({"name": "callrec_session", "value": session, "path": "/"})
    ours = play_times(base + "/r/1767225600.1", "[data-testid=player-audio]")
    ours_seek = play_times(base + "/r/1767225600.1", "[data-testid=player-audio]", seek=0.8)
    # Reference: nginx serving the same .opus file and a bare page.
    opus_src = None
    for dirpath, _, files in os.walk(data):
        for f in files:
            if f == "1767225600.1.opus":
                opus_src = os.path.join(dirpath, f)
    ng = os.path.join(work, "nginx")
    os.makedirs(os.path.join(ng, "www"))
    shutil.copy(opus_src, os.path.join(ng, "www", "call.opus"))
    os.chmod(os.path.join(ng, "www", "call.opus"), 0o644)
    with open(os.path.join(ng, "www", "index.html"), "w") as f:
        f.write('<!doctype html><audio id="a" preload="metadata" src="/call.opus"></audio>')
    ngport = free_port()
    with open(os.path.join(ng, "nginx.conf"), "w") as f:
        f.write(f"""user root; daemon off; worker_processes 1; pid {ng}/nginx.pid; error_log {ng}/error.log;
events {{}}
http {{ access_log off; types {{ audio/ogg opus; text/html html; }}
  server {{ listen 127.0.0.1:{ngport}; root {ng}/www; }} }}
""")
    nginx = subprocess.Popen(["nginx", "-c", os.path.join(ng, "nginx.conf"), "-p", ng], stderr=subprocess.DEVNULL)
    procs.append(nginx)
    time.sleep(0.5)
    ref = play_times(f"http://127.0.0.1:{ngport}/index.html", "#a")
    ref_seek = play_times(f"http://127.0.0.1:{ngport}/index.html", "#a", seek=0.8)
    driver.quit()
    print(f"play → first audio, 1-hour call, console player: median {ms(statistics.median(ours))} (min {ms(min(ours))}, max {ms(max(ours))}; target < 300 ms); "
          f"reference, nginx + bare <audio>: median {ms(statistics.median(ref))}", flush=True)
    print(f"seek to 80 % + play → first audio: median {ms(statistics.median(ours_seek))}; reference nginx: median {ms(statistics.median(ref_seek))}", flush=True)
finally:
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)
