#!/usr/bin/env python3
"""End to end, beside a pretend Asterisk: callrec serve, concurrent calls written the way
MixMonitor writes them (real-time 20 ms frames, sizes 0 until hang-up, a hold pause, a transfer
that appends, one crash that leaves sizes 0), a webhook receiver that checks every signature.
Asserts: every recording whole, every event delivered and verified, signed URLs play."""
import hashlib, hmac, http.server, json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, threading, time, urllib.request

BIN = sys.argv[1]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = open(os.path.join(ROOT, "Fixtures/audio/speech.wav"), "rb").read()[44:]
tmp = tempfile.mkdtemp(prefix="callrec-e2e-")
spool, data = os.path.join(tmp, "spool"), os.path.join(tmp, "data")
os.makedirs(spool)
SECRET = "e2e-webhook-secret"
events, bad = [], []
lock = threading.Lock()

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        sig = dict(p.split("=", 1) for p in self.headers.get("Callrec-Signature", "").split(","))
        want = hmac.new(SECRET.encode(), f"{sig.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
        with lock:
            (events if hmac.compare_digest(want, sig.get("v1", "")) else bad).append((time.time(), json.loads(body)))
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
port = free_port()
env = dict(os.environ, CALLREC_DATA=data, CALLREC_SPOOL=spool, CALLREC_PORT=str(port), CALLREC_SETTLE_MS="500",
           CALLREC_WEBHOOK_URL=f"http://127.0.0.1:{receiver.server_address[1]}/hook", CALLREC_WEBHOOK_SECRET=SECRET,
           CALLREC_SPOOL_PATTERN="{company}/{agent}-{lead_number}-{uniqueid}.{ext}")
serve = subprocess.Popen([BIN, "serve"], env=env, stderr=open(os.path.join(tmp, "serve.log"), "w"))

def get(path, token=None, headers={}):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=dict(headers, **({"Authorization": f"Bearer {token}"} if token else {})))
    with urllib.request.urlopen(req, timeout=10) as r: return r.status, r.read()

for _ in range(100):
    try: get("/healthz"); break
    except Exception: time.sleep(0.1)

def header(n):
    return b"RIFF" + struct.pack("<I", 36 + n if n else 0) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", n)

def call(path, frames, pause_at=None, pause=0.0, crash=False):
    """MixMonitor: header with sizes 0, a 320-byte frame every 20 ms, sizes at hang-up."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    f = open(path, "ab" if os.path.exists(path) else "wb")
    if f.tell() == 0: f.write(header(0))
    start, pos, written = time.time(), 0, 0
    for i in range(frames):
        if i == pause_at: f.flush(); time.sleep(pause)
        chunk = (FIX * 2)[pos:pos + 320]; pos = (pos + 320) % len(FIX)
        f.write(chunk); f.flush(); written += 320
        time.sleep(max(0, start + (i + 1) * 0.02 + (pause if pause_at is not None and i >= pause_at else 0) - time.time()))
    if not crash:
        size = f.tell() - 44
        f.seek(0); f.write(header(size))
    f.close()
    return written // 2

ids = {f"17640630{i:02d}.{i}": (f"42/100{i}-55119999900{i:02d}-17640630{i:02d}.{i}.wav") for i in range(1, 5)}
expected, threads = {}, []
plan = {"1764063001.1": dict(frames=250), "1764063002.2": dict(frames=300, pause_at=100, pause=1.5),
        "1764063003.3": dict(frames=200, crash=True), "1764063004.4": dict(frames=150)}
closed_at = {}
def run(uid):
    expected[uid] = call(os.path.join(spool, ids[uid]), **plan[uid])
    closed_at[uid] = time.time()
for uid in plan:
    t = threading.Thread(target=run, args=(uid,)); t.start(); threads.append(t)
for t in threads: t.join()
closed = time.time()
token = subprocess.run([BIN, "token", "--role", "admin"], env=env, capture_output=True, text=True, check=True).stdout.strip()

def wait(pred, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if pred(): return True
        time.sleep(0.2)
    return pred()

def catalogued(uid):
    try: return get(f"/recordings/{uid}", token)[0] == 200
    except Exception: return False

ok = wait(lambda: all(catalogued(u) for u in plan))
# A transfer: the call goes on, MixMonitor (option a) writes the rest under the same name.
time.sleep(1)
expected["1764063004.4"] += call(os.path.join(spool, ids["1764063004.4"]), frames=100)
ok = ok and wait(lambda: json.loads(get("/recordings/1764063004.4", token)[1]).get("parts") == 2)

failures = []
for uid, samples in expected.items():
    rec = json.loads(get(f"/recordings/{uid}", token)[1])
    if rec["samples"] != samples: failures.append(f"{uid}: {rec['samples']} samples, wrote {samples}")
    if rec["company"] != "42" or not rec["lead_number"].startswith("55119"): failures.append(f"{uid}: metadata {rec['company']} {rec['lead_number']}")
    signed = subprocess.run([BIN, "sign", f"/recordings/{uid}.wav"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    status, wav = get(signed)
    if status != 200 or len(wav) != 44 + samples * 2: failures.append(f"{uid}: .wav {status} {len(wav)} bytes")
    status, part = get(signed, headers={"Range": "bytes=1000-1999"})
    if status != 206 or part != wav[1000:2000]: failures.append(f"{uid}: range {status}")
    # The .opus a player seeks in: whole, then a range (the second is answered by the fast path),
    # and it decodes to exactly the samples written.
    opus_url = subprocess.run([BIN, "sign", f"/recordings/{uid}.opus"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    status, opus = get(opus_url)
    if status != 200 or not opus.startswith(b"OggS") or len(opus) != rec["opus"]["bytes"]: failures.append(f"{uid}: .opus {status} {len(opus)} bytes")
    status, tail = get(opus_url, headers={"Range": "bytes=-200"})
    if status != 206 or tail != opus[-200:]: failures.append(f"{uid}: .opus range {status}")
    with open(os.path.join(tmp, f"{uid}.opus"), "wb") as f: f.write(opus)
    decoded = subprocess.run(["opusdec", "--quiet", "--rate", "8000", os.path.join(tmp, f"{uid}.opus"), os.path.join(tmp, f"{uid}.dec.wav")], capture_output=True)
    if decoded.returncode != 0 or (os.path.getsize(os.path.join(tmp, f"{uid}.dec.wav")) - 44) // 2 != samples:
        failures.append(f"{uid}: .opus does not decode to {samples} samples")
wait(lambda: len(events) >= 5, 15)
with lock:
    ready = [e for _, e in events if e["type"] == "recording.ready"]
if bad: failures.append(f"{len(bad)} events with a bad signature")
if {e["recording"]["uniqueid"] for e in ready} != set(plan): failures.append(f"ready events for {sorted({e['recording']['uniqueid'] for e in ready})}")
if len({e["id"] for _, e in events}) != len(events): failures.append("duplicate event ids")
if os.listdir(os.path.join(spool, "42")): failures.append(f"spool not empty: {os.listdir(os.path.join(spool, '42'))}")
serve.send_signal(signal.SIGTERM)
rc = serve.wait(timeout=30)
if rc != 0: failures.append(f"serve exited {rc} on SIGTERM")
with lock:
    first_ready = {}
    for t, e in events:
        if e["type"] == "recording.ready": first_ready.setdefault(e["recording"]["uniqueid"], t)
lat = sorted(first_ready[u] - closed_at[u] for u in plan if u in first_ready)
if lat: print(f"e2e: hang-up → recording.ready at the receiver: median {lat[len(lat) // 2]:.2f} s, max {lat[-1]:.2f} s (settle 0.5 s included)")
print(f"e2e: {len(plan)} concurrent calls (one paused 1.5 s, one crashed with sizes 0, one transferred and appended), "
      f"{len(events)} webhook events delivered and verified")
if not ok: failures.append("not every recording arrived")
for f in failures: print("e2e FAIL:", f)
shutil.rmtree(tmp, ignore_errors=True)
print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
