"""The console in a real headless Chromium against a real `callrec serve` on loopback.

Recordings: copies of Fixtures/audio/speech.wav (one made 60 s long by repeating it) dropped into
the spool under uniqueids of 2026-11-24 in America/Sao_Paulo, with company, agent and lead number
in the spool path; the last check adds a 10-minute one (encoded in ~30 s pieces on 2 threads). Users are made with `callrec user add`. Prints `N passed, M failed`.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import wave
import zipfile
from datetime import datetime, timedelta, timezone

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

BIN = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEECH = os.path.join(ROOT, "Fixtures", "audio", "speech.wav")
JWT_SECRET = "console-test-jwt-secret-0123456789abcdef"
SP = timezone(timedelta(hours=-3))  # America/Sao_Paulo (no DST since 2019)
DAY = "2026-11-24"


def epoch(y, mo, d, h, mi):
    return int(datetime(y, mo, d, h, mi, tzinfo=SP).timestamp())


# uniqueid -> (company, agent, lead, long?)
A_EARLY = f"{epoch(2026, 11, 24, 0, 30)}.1"  # 03:30Z on the 24th
A_LONG = f"{epoch(2026, 11, 24, 9, 0)}.2"  # the 60 s call
B_MID = f"{epoch(2026, 11, 24, 10, 0)}.3"  # beta's
A_LATE = f"{epoch(2026, 11, 24, 23, 30)}.4"  # 02:30Z on the 25th: still the 24th in São Paulo
A_PREV = f"{epoch(2026, 11, 23, 22, 0)}.5"  # 01:00Z on the 24th: the 23rd in São Paulo
A_NEXT = f"{epoch(2026, 11, 25, 1, 0)}.6"  # 04:00Z on the 25th: the 25th
CALLS = {
    A_EARLY: ("acme", "1001", "5511999990001", False),
    A_LONG: ("acme", "1002", "5511999990002", True),
    B_MID: ("beta", "2001", "5521999990003", False),
    A_LATE: ("acme", "1001", "5511999990004", False),
    A_PREV: ("acme", "1003", "5511999990005", False),
    A_NEXT: ("acme", "1003", "5511999990006", False),
}
DAY_ALL = [A_EARLY, A_LONG, B_MID, A_LATE]
DAY_ACME = [A_EARLY, A_LONG, A_LATE]

results = []
TESTS = []
work = tempfile.mkdtemp(prefix="callrec-console-")
shots = os.path.join(work, "screenshots")
downloads = os.path.join(work, "downloads")
os.makedirs(shots)
os.makedirs(downloads)
data = os.path.join(work, "data")
spool = os.path.join(work, "spool")
os.makedirs(spool)
env = dict(os.environ)
env.update(
    CALLREC_DATA=data, CALLREC_SPOOL=spool, CALLREC_TZ="America/Sao_Paulo", CALLREC_JWT_SECRET=JWT_SECRET,
    CALLREC_BCRYPT_COST="6", CALLREC_SETTLE_MS="200", CALLREC_SCAN_AGE="1", CALLREC_RETENTION_DAYS="36500",
    CALLREC_SPOOL_PATTERN="{company}/{agent}-{lead_number}-{uniqueid}.{ext}",
    CALLREC_OPUS_THREADS="2",  # long calls are encoded in pieces side by side, whatever the machine
)


def callrec(*args, stdin=None):
    return subprocess.run([BIN, *args], env=env, input=stdin, capture_output=True, text=True, check=True).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def long_wav(path, repeat=10):
    with wave.open(SPEECH, "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    with wave.open(path, "wb") as out:
        out.setparams(params)
        for _ in range(repeat):
            out.writeframes(frames)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(JWT_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def http(method, path, headers=None, body=None):
    req = urllib.request.Request(BASE + path, method=method, headers=headers or {}, data=body)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def check(name):
    def wrap(f):
        def run():
            t0 = time.time()
            try:
                f()
                results.append((name, True, ""))
                print(f"ok   {name} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:
                results.append((name, False, str(e)))
                print(f"FAIL {name}: {e}", flush=True)
                traceback.print_exc()
                try:
                    driver.save_screenshot(os.path.join(shots, "FAIL-" + name.replace(" ", "_") + ".png"))
                except Exception:
                    pass
        TESTS.append(run)
        return run
    return wrap


def shot(name):
    driver.save_screenshot(os.path.join(shots, name + ".png"))


def tid(testid, many=False):
    sel = f'[data-testid="{testid}"]'
    return driver.find_elements(By.CSS_SELECTOR, sel) if many else driver.find_element(By.CSS_SELECTOR, sel)


def wait(cond, timeout=10, what="condition"):
    try:
        # A page being replaced (a form posted, a redirect, rows re-rendered) leaves stale elements,
        # which Chromium reports as StaleElementReference or as an inspector error: ask again.
        return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException, WebDriverException)).until(
            lambda d: cond())
    except Exception:
        raise AssertionError(f"timed out waiting for {what}")


def sign_in(user, password):
    driver.delete_all_cookies()
    driver.get(BASE + "/login")
    tid("login-username").send_keys(user)
    tid("login-password").send_keys(password)
    old = driver.find_element(By.TAG_NAME, "html")
    tid("login-submit").click()

    def replaced(_):
        # Chromium reports a node of a replaced document as stale, or as an inspector error.
        try:
            old.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as e:
            if "does not belong to the document" in str(e):
                return True
            raise

    WebDriverWait(driver, 10).until(replaced)
    # The next document may still be loading: elements read before it settles can belong to the
    # old one (Chromium: "Node with given id does not belong to the document").
    wait(lambda: driver.execute_script("return document.readyState") == "complete", what="the page after sign-in")


def text_of(testid):
    """The text of a displayed element, read again if the page is swapped under the read."""
    return wait(lambda: tid(testid).text if tid(testid).is_displayed() else None, what=testid)


def rows():
    # In one script: the rows may be re-rendered between finding them and reading each one.
    return driver.execute_script("return [...document.querySelectorAll('[data-testid=result-row]')].map(r => r.getAttribute('data-uniqueid'))")


def search_day(day=DAY, extra=""):
    driver.get(BASE + "/" + extra)
    for field, value in (("search-from", day), ("search-to", day)):
        e = tid(field)
        e.clear()
        e.send_keys(value)
    tid("search-submit").click()
    wait(lambda: f"from={day}" in driver.current_url and driver.find_element(By.ID, "results").get_attribute("data-state") == "done", what="results")


def audio(prop):
    return driver.execute_script(f"return document.querySelector('[data-testid=player-audio]').{prop}")


# ---- set-up ------------------------------------------------------------------------------------

for name, role, company in (("admin1", "admin", None), ("comp1", "compliance", None), ("acmeview", "viewer", "acme"), ("victim", "viewer", "acme")):
    args = ["user", "add", name, "--role", role, "--password-stdin"] + (["--company", company] if company else [])
    callrec(*args, stdin="correct horse battery\n")
users = json.loads(callrec("user", "list", "--json"))
assert [u["name"] for u in users] == ["acmeview", "admin1", "comp1", "victim"], users
callrec("user", "add", "acme2", "--role", "viewer", "--company", "acme", "--password-stdin", stdin="correct horse battery\n")

def drop_recordings():
    """Into the spool as MixMonitor would leave them: whole files renamed in, once the server watches."""
    for uid, (company, agent, lead, is_long) in CALLS.items():
        d = os.path.join(spool, company)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(work, uid + ".wav")
        long_wav(tmp) if is_long else shutil.copy(SPEECH, tmp)
        os.rename(tmp, os.path.join(d, f"{agent}-{lead}-{uid}.wav"))


PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"
server_log = open(os.path.join(work, "serve.log"), "w")
server = subprocess.Popen([BIN, "serve", "--port", str(PORT)], env=env, stdout=server_log, stderr=subprocess.STDOUT)
deadline = time.time() + 30
while True:
    try:
        if http("GET", "/healthz")[0] == 200:
            break
    except Exception:
        pass
    if time.time() > deadline or server.poll() is not None:
        sys.exit("console-test: the server did not start in 30 s")
    time.sleep(0.2)
drop_recordings()
deadline = time.time() + 60
while True:
    try:
        st, _, b = http("GET", "/healthz")
        if st == 200 and json.loads(b)["recordings"] == len(CALLS):
            break
    except Exception:
        pass
    if time.time() > deadline or server.poll() is not None:
        print(open(os.path.join(work, "serve.log")).read())
        sys.exit("console-test: the server did not ingest the recordings in 60 s")
    time.sleep(0.3)
ADMIN_TOKEN = callrec("token", "--role", "admin", "--ttl", "3600").strip()

opts = webdriver.ChromeOptions()
opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,720", "--autoplay-policy=no-user-gesture-required",
          "--lang=en-US", "--mute-audio"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
opts.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False,
                                       "intl.accept_languages": "en-US,en"})
service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
driver = webdriver.Chrome(options=opts, service=service)
driver.set_window_size(1280, 720)
driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})

# ---- the checks ----------------------------------------------------------------------------------


@check("wrong password refused, then throttled")
def _():
    driver.get(BASE + "/login")
    shot("01-login")
    for i in range(5):
        sign_in("victim", "wrong password %d" % i)
        err = text_of("login-error")
        assert "Wrong" in err, err
    shot("02-login-refused")
    sign_in("victim", "correct horse battery")  # the right password, but too late
    err = text_of("login-error")
    assert "Too many" in err, err
    assert driver.current_url.startswith(BASE + "/login")
    shot("03-login-throttled")


@check("sign in, search a day in São Paulo time")
def _():
    sign_in("comp1", "correct horse battery")
    wait(lambda: tid("nav-search", many=True), what="the search page")
    search_day()
    got = rows()
    assert got == DAY_ALL, f"rows {got}, expected {DAY_ALL}"
    texts = [r.text for r in tid("result-row", many=True)]
    assert "9:00:00" in texts[1] and "1:00" in texts[1] and "acme" in texts[1], texts[1]
    assert "11:30:00" in texts[3], texts[3]  # 23:30 local, shown in the zone, not UTC
    assert "America/Sao_Paulo" in driver.find_element(By.CSS_SELECTOR, ".tz").text
    shot("04-search")


@check("filters live in the URL; load more uses the cursor")
def _():
    driver.get(BASE + f"/?from={DAY}&to={DAY}&limit=2")
    wait(lambda: len(rows()) == 2, what="two rows")
    more = tid("load-more")
    assert more.is_displayed()
    more.click()
    wait(lambda: len(rows()) == 4, what="four rows")
    assert rows() == DAY_ALL and not tid("load-more").is_displayed()
    driver.get(BASE + f"/?from={DAY}&to={DAY}&agent=1001")
    wait(lambda: len(rows()) == 2, what="agent 1001's rows")
    assert rows() == [A_EARLY, A_LATE], rows()
    driver.get(BASE + f"/?from={DAY}&to={DAY}&lead=5511999990002")
    wait(lambda: rows() == [A_LONG], what="the lead's row")


@check("play: currentTime advances, through range requests")
def _():
    driver.get(BASE + "/r/" + A_LONG)
    wait(lambda: audio("readyState") >= 1, what="audio metadata")
    assert audio("currentSrc").split("?")[0].endswith(".opus"), audio("currentSrc")
    driver.find_element(By.TAG_NAME, "body").send_keys(" ")  # the space key plays
    wait(lambda: audio("currentTime") > 1.0, what="playback")
    assert not audio("paused")
    time.sleep(0.5)
    db = sqlite3.connect(catalog_path())
    n = db.execute("SELECT COUNT(*) FROM audit WHERE action = 'audio.opus' AND uniqueid = ? AND detail LIKE 'bytes=%'", (A_LONG,)).fetchone()[0]
    assert n >= 1, "no range request of the audio in the audit log"
    shot("05-player")


def catalog_path():
    for dirpath, _, files in os.walk(data):
        for f in files:
            if f.endswith((".sqlite", ".db", ".sqlite3")):
                return os.path.join(dirpath, f)
    raise AssertionError("no catalog file")


@check("click the waveform at 80 %: playback goes on from there")
def _():
    canvas = tid("waveform")
    w = canvas.size["width"]
    ActionChains(driver).move_to_element_with_offset(canvas, int(w * 0.30), 0).click().perform()
    t = audio("currentTime")
    dur = 60.0  # the long call
    assert abs(t - 0.8 * dur) < 1.0, f"currentTime {t:.2f}, expected about {0.8 * dur:.2f}"
    time.sleep(0.5)
    t2 = audio("currentTime")
    assert t2 > t and t2 - 0.8 * dur < 1.5, f"then {t2:.2f}"


@check("2x speed")
def _():
    driver.execute_script("const a = document.querySelector('[data-testid=player-audio]'); a.currentTime = 5; a.play()")
    Select(tid("player-speed")).select_by_value("2")
    assert audio("playbackRate") == 2
    assert audio("preservesPitch") is True
    t0, w0 = audio("currentTime"), time.time()
    time.sleep(1.5)
    rate = (audio("currentTime") - t0) / (time.time() - w0)
    assert 1.5 < rate < 2.5, f"played {rate:.2f} s per second"


@check("?t=45 opens at 0:45")
def _():
    driver.get(BASE + "/r/" + A_LONG + "?t=45")
    wait(lambda: audio("readyState") >= 1 and abs(audio("currentTime") - 45) < 0.5, what="currentTime 45")


@check("hold with a reason: badge shows, the API DELETE answers 409")
def _():
    driver.get(BASE + "/r/" + A_EARLY)
    assert not tid("hold-badge").is_displayed()
    tid("hold-reason").send_keys("lawsuit 42")
    tid("hold-submit").click()
    wait(lambda: tid("hold-badge").is_displayed(), what="the hold badge")
    assert "lawsuit 42" in tid("hold-badge").text
    shot("06-held")
    st, _, body = http("DELETE", "/recordings/" + A_EARLY, {"Authorization": "Bearer " + ADMIN_TOKEN})
    assert st == 409, (st, body)
    search_day()
    row = [r for r in tid("result-row", many=True) if r.get_attribute("data-uniqueid") == A_EARLY][0]
    assert row.find_elements(By.CSS_SELECTOR, '[data-testid="hold-badge"]')


@check("release with a reason")
def _():
    driver.get(BASE + "/r/" + A_EARLY)
    tid("release-reason").send_keys("case closed")
    tid("release-submit").click()
    wait(lambda: tid("hold-submit", many=True) and not tid("hold-badge").is_displayed(), what="the released page")
    driver.get(BASE + "/audit?uniqueid=" + A_EARLY + "&action=release")
    details = [r.find_elements(By.TAG_NAME, "td")[6].text for r in tid("audit-row", many=True)]
    assert details == ["case closed"], details


@check("a POST without the CSRF token is refused")
def _():
    driver.get(BASE + "/exports")
    status = driver.execute_async_script(
        "const done = arguments[0];"
        "fetch('/console/api/exports', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({from: '2026-11-24', to: '2026-11-25'})})"
        ".then(r => done(r.status)).catch(e => done(String(e)))")
    assert status == 403, status
    status = driver.execute_async_script(
        "const done = arguments[0];"
        f"fetch('/r/{A_LONG}/hold', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'reason=x'}})"
        ".then(r => done(r.status)).catch(e => done(String(e)))")
    assert status == 403, status
    # A form posted from another origin, even with a token, is refused.
    csrf = driver.find_element(By.TAG_NAME, "body").get_attribute("data-csrf")
    cookie = driver.get_cookie("callrec_session")["value"]
    st, _, _ = http("POST", f"/r/{A_LONG}/hold", {"Cookie": "callrec_session=" + cookie, "Origin": "http://evil.example",
                                                  "Content-Type": "application/x-www-form-urlencoded"}, f"csrf={csrf}&reason=x".encode())
    assert st == 403, st


@check("export a day: progress reaches 100 %, the ZIP holds the right files")
def _():
    driver.get(BASE + "/exports")
    for field in ("export-from", "export-to"):
        e = tid(field)
        e.clear()
        e.send_keys(DAY)
    tid("export-company").send_keys("acme")
    tid("export-submit").click()
    wait(lambda: tid("export-download").is_displayed(), timeout=60, what="the download link")
    assert tid("export-progress").get_attribute("value") == "100"
    shot("07-export")
    tid("export-download").click()
    deadline = time.time() + 20
    while time.time() < deadline:
        zips = [f for f in os.listdir(downloads) if f.endswith(".zip")]
        if zips:
            break
        time.sleep(0.2)
    assert zips, "nothing downloaded"
    names = zipfile.ZipFile(os.path.join(downloads, zips[0])).namelist()
    audio_names = sorted(os.path.basename(n) for n in names if n.endswith(".opus"))
    assert audio_names == sorted(u + ".opus" for u in DAY_ACME), names
    assert "manifest.csv" in [os.path.basename(n) for n in names] and "manifest.json" in [os.path.basename(n) for n in names], names


@check("the audit log page")
def _():
    driver.get(BASE + "/audit?uniqueid=" + A_EARLY)
    actions = [r.find_elements(By.TAG_NAME, "td")[3].text for r in tid("audit-row", many=True)]
    assert "hold" in actions, actions
    driver.get(BASE + "/audit")
    assert len(tid("audit-row", many=True)) > 3
    shot("08-audit")


@check("search filters: minimum duration and held only, kept in the URL")
def _():
    driver.get(BASE + f"/?from={DAY}&to={DAY}&min_duration=30")
    wait(lambda: rows() == [A_LONG], what="only the 60 s call")
    assert tid("search-min-duration").get_attribute("value") == "30"
    # Through the form: the filters land in the URL, so back and shared links work.
    search_day()
    e = tid("search-min-duration")
    e.clear()
    e.send_keys("30")
    tid("search-submit").click()
    wait(lambda: "min_duration=30" in driver.current_url and rows() == [A_LONG], what="the filtered URL")
    st, _, body = http("PUT", f"/recordings/{A_LATE}/hold", {"Authorization": "Bearer " + ADMIN_TOKEN, "Content-Type": "application/json"},
                       json.dumps({"reason": "filter test"}).encode())
    assert st == 200, (st, body)
    driver.get(BASE + f"/?from={DAY}&to={DAY}")
    wait(lambda: len(rows()) == 4, what="four rows")
    tid("search-held").click()
    tid("search-submit").click()
    wait(lambda: "held=1" in driver.current_url and rows() == [A_LATE], what="only the held call")
    assert tid("search-held").is_selected()
    shot("14-search-filters")
    driver.back()
    wait(lambda: "held=1" not in driver.current_url and len(rows()) == 4, what="back to four rows")
    st, _, _ = http("DELETE", f"/recordings/{A_LATE}/hold", {"Authorization": "Bearer " + ADMIN_TOKEN})
    assert st == 200, st


@check("the player loads peaks reduced to its width")
def _():
    driver.get(BASE + "/r/" + A_LONG)
    wait(lambda: audio("readyState") >= 1, what="audio metadata")
    names = wait(lambda: driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('waveform.json')).map(e => [e.name, e.encodedBodySize])") or None,
        what="the peaks request")
    assert len(names) == 1 and "pixels=1200" in names[0][0], names
    assert 0 < names[0][1] < 20000, names
    drawn = driver.execute_script(
        "const c = document.querySelector('[data-testid=waveform]'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] === 0x8f && d[i+1] === 0xa6) n++; return n")
    assert drawn > 1000, f"{drawn} waveform pixels drawn"


@check("a 2-channel waveform draws one lane per channel, labelled")
def _():
    # The peaks of a stereo recording as audiowaveform v2 writes them: min0, max0, min1, max1 per
    # pixel. Channel 0 speaks in the first half, channel 1 in the second.
    n = 3000
    data = []
    for i in range(n):
        a = 100 if i < n // 2 else 0
        data += [-a, a, -(100 - a), 100 - a]
    peaks = {"version": 2, "channels": 2, "sample_rate": 8000, "samples_per_pixel": 160, "bits": 8, "length": n, "data": data}
    db = sqlite3.connect(catalog_path())
    with db:
        db.execute("UPDATE waveform SET json = ? WHERE uniqueid = ?", (json.dumps(peaks).encode(), A_PREV))
    db.close()
    driver.get(BASE + "/r/" + A_PREV)
    canvas = tid("waveform")
    wait(lambda: canvas.get_attribute("data-lanes") == "2", what="two lanes")
    assert canvas.get_attribute("data-labels") == "left,right", canvas.get_attribute("data-labels")
    # Top lane loud on the left half only, bottom lane on the right half only.
    ink = driver.execute_script("""
        const c = document.querySelector('[data-testid=waveform]'), g = c.getContext('2d'), w = c.width, h = c.height;
        const count = (x0, x1, y0, y1) => { const d = g.getImageData(x0, y0, x1 - x0, y1 - y0).data; let k = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] === 0x8f && d[i + 1] === 0xa6) k++; return k; };
        return [count(50, w / 2 - 50, 5, h / 2 - 5), count(w / 2 + 50, w - 50, 5, h / 2 - 5), count(50, w / 2 - 50, h / 2 + 5, h - 5), count(w / 2 + 50, w - 50, h / 2 + 5, h - 5)];""")
    assert ink[0] > 10 * max(1, ink[1]) and ink[3] > 10 * max(1, ink[2]), ink
    shot("14b-player-stereo")


def write_live_call(uid, seconds, done):
    """A call as MixMonitor records it: a WAV in the spool growing in real time, closed at the end."""
    with wave.open(SPEECH, "rb") as w:
        frames = w.readframes(w.getnframes())
    path = os.path.join(spool, "acme", f"1009-5511999990099-{uid}.wav")
    out = wave.open(path, "wb")
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(8000)
    step = 1600 * 2  # 0.2 s
    t0 = time.time()
    i = 0
    while not done.is_set() and time.time() - t0 < seconds:
        chunk = frames[(i * step) % len(frames):(i * step) % len(frames) + step]
        out.writeframes(chunk)
        i += 1
        time.sleep(0.2)
    out.close()


@check("live: a call being recorded is listed growing; when it ends its recording appears without a reload")
def _():
    import threading
    uid = f"{epoch(2026, 11, 24, 15, 0)}.7"
    driver.get(BASE + f"/?from={DAY}&to={DAY}")
    wait(lambda: len(rows()) == 4, what="four rows")
    wait(lambda: driver.find_element(By.ID, "live").get_attribute("data-connected") == "1", what="the event stream")
    driver.execute_script("window.__sameDocument = true")
    done = threading.Event()
    writer = threading.Thread(target=write_live_call, args=(uid, 30, done), daemon=True)
    writer.start()
    try:
        live_rows = lambda: driver.execute_script(
            "return [...document.querySelectorAll('[data-testid=live-row]')].map(r => [r.dataset.uniqueid, r.querySelector('[data-testid=live-duration]').textContent])")
        first = wait(lambda: [r for r in live_rows() if r[0] == uid] or None, timeout=15, what="the live call")[0]
        text = tid("live-calls").text
        assert "1009" in text and "5511999990099" in text, text
        shot("15-live-call")
        def secs(t):
            m, s2 = t.split(":")[-2:]
            return int(m) * 60 + int(s2)
        wait(lambda: secs([r for r in live_rows() if r[0] == uid][0][1]) >= secs(first[1]) + 2, timeout=15, what="a growing duration")
        # The API lists it too, company-scoped.
        viewer = callrec("token", "--role", "viewer", "--company", "acme").strip()
        st, _, body = http("GET", "/calls/live", {"Authorization": "Bearer " + viewer})
        calls = json.loads(body)["calls"]
        assert st == 200 and [c["uniqueid"] for c in calls] == [uid] and calls[0]["lead_number"] == "5511999990099", body
        beta = callrec("token", "--role", "viewer", "--company", "beta").strip()
        assert json.loads(http("GET", "/calls/live", {"Authorization": "Bearer " + beta})[2])["calls"] == []
    finally:
        done.set()
        writer.join(40)
    wait(lambda: uid in rows(), timeout=30, what="the new recording's row")
    assert rows() == [A_EARLY, A_LONG, B_MID, uid, A_LATE], rows()
    assert driver.execute_script("return window.__sameDocument === true"), "the page was reloaded"
    wait(lambda: not [r for r in live_rows() if r[0] == uid], what="the call gone from the live list")
    shot("16-live-new-row")
    DAY_ALL.insert(3, uid)
    DAY_ACME.insert(2, uid)


@check("erasure by lead number asks for the number again")
def _():
    sign_in("admin1", "correct horse battery")
    driver.get(BASE + "/console/erasure")
    lead = CALLS[A_NEXT][2]
    tid("erasure-lead").send_keys(lead)
    tid("erasure-confirm").send_keys(lead[:-1] + "9")
    tid("erasure-submit").click()
    assert "differ" in text_of("erasure-error")
    st, _, _ = http("GET", "/recordings/" + A_NEXT, {"Authorization": "Bearer " + ADMIN_TOKEN})
    assert st == 200, st
    shot("17-erasure-mismatch")
    # By keyboard: the confirmation field follows the number, then the button.
    tid("erasure-lead").clear()
    tid("erasure-lead").send_keys(lead)
    ActionChains(driver).send_keys(Keys.TAB).send_keys(lead).send_keys(Keys.TAB).send_keys(Keys.ENTER).perform()
    assert "Erased 1" in text_of("erasure-result"), text_of("erasure-result")
    st, _, _ = http("GET", "/recordings/" + A_NEXT, {"Authorization": "Bearer " + ADMIN_TOKEN})
    assert st == 404, st
    shot("18-erasure-done")
    cookie = {"Cookie": "callrec_session=" + driver.get_cookie("callrec_session")["value"]}
    st, _, _ = http("POST", "/console/erasure", dict(cookie, **{"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE}),
                    f"lead={lead}&lead_again={lead}".encode())
    assert st == 403, st  # no CSRF token


@check("retention policies: admins edit, everyone reads")
def _():
    driver.get(BASE + "/console/retention")
    assert "36500" in tid("retention-default").text
    tid("retention-company").send_keys("acme")
    tid("retention-new-days").send_keys("30")
    tid("retention-submit").click()
    wait(lambda: [r.get_attribute("data-company") for r in tid("retention-row", many=True)] == ["acme"], what="acme's row")
    days = tid("retention-days")
    days.clear()
    days.send_keys("45")
    tid("retention-save").click()
    wait(lambda: "45" in tid("retention-row").text, what="45 days")
    st, _, body = http("GET", "/retention", {"Authorization": "Bearer " + ADMIN_TOKEN})
    assert json.loads(body) == {"acme": 45}, body
    shot("19-retention-admin")
    sign_in("acme2", "correct horse battery")
    assert not tid("nav-erasure", many=True) and not tid("nav-quarantine", many=True)
    tid("nav-retention").click()
    wait(lambda: tid("retention-row", many=True), what="the retention page")
    assert "45" in tid("retention-row").text and not tid("retention-save", many=True) and not tid("retention-submit", many=True)
    shot("20-retention-viewer")
    driver.get(BASE + "/console/erasure")
    assert not tid("erasure-submit", many=True)


@check("the quarantine with reasons")
def _():
    d = os.path.join(spool, "acme")
    shutil.copy(os.path.join(ROOT, "Fixtures", "audio", "bad-random.wav"), os.path.join(work, "bad.tmp"))
    os.rename(os.path.join(work, "bad.tmp"), os.path.join(d, f"1001-5511999990077-{epoch(2026, 11, 24, 16, 0)}.8.wav"))
    sign_in("comp1", "correct horse battery")
    def quarantined():
        driver.get(BASE + "/console/quarantine")
        return tid("quarantine-row", many=True) or None
    wait(quarantined, timeout=30, what="the quarantined file")
    reason = tid("quarantine-reason").text
    assert reason and "5511999990077" in tid("quarantine-row").text, tid("quarantine-row").text
    assert not tid("quarantine-retry", many=True)  # compliance reads; admins retry
    shot("21-quarantine")
    sign_in("acme2", "correct horse battery")
    driver.get(BASE + "/console/quarantine")
    assert not tid("quarantine-row", many=True)
    sign_in("comp1", "correct horse battery")


@check("<callrec-player> from /player.js plays in a plain page of another origin")
def _():
    import http.server
    import threading
    opus = callrec("sign", "/recordings/" + A_LONG + ".opus").strip()
    peaks = callrec("sign", "/recordings/" + A_LONG + "/waveform.json").strip()
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' {BASE}; connect-src {BASE}; media-src {BASE}; style-src 'self'">
<title>CRM</title><script src="{BASE}/player.js"></script></head>
<body><h1>Lead 5511999990002</h1><callrec-player id="p" src="{BASE}{opus}" peaks="{BASE}{peaks}" labels="agent,customer"></callrec-player></body></html>"""
    crm = os.path.join(work, "crm")
    os.makedirs(crm, exist_ok=True)
    with open(os.path.join(crm, "index.html"), "w") as f:
        f.write(page)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = lambda *a, **k: Quiet(*a, directory=crm, **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        driver.get(f"http://localhost:{httpd.server_address[1]}/index.html")
        el = wait(lambda: driver.execute_script("const p = document.getElementById('p'); return p && p.shadowRoot && p.peaks ? p : null"),
                  what="the element with its peaks")
        n = driver.execute_script("return document.getElementById('p').peaks.length")
        w = driver.execute_script("return document.getElementById('p').canvas.width")
        assert n == w, (n, w)
        driver.execute_script("document.getElementById('p').focus()")
        ActionChains(driver).send_keys(" ").perform()  # space plays
        wait(lambda: driver.execute_script("return document.getElementById('p').currentTime") > 1.0, what="playback")
        canvas = driver.execute_script("return document.getElementById('p').shadowRoot.querySelector('canvas')")
        cw = canvas.size["width"]
        ActionChains(driver).move_to_element_with_offset(canvas, int(cw * 0.25), 0).click().perform()  # 75 %
        t = driver.execute_script("return document.getElementById('p').currentTime")
        assert abs(t - 45) < 1.5, t
        ActionChains(driver).send_keys("+").perform()
        assert driver.execute_script("return document.getElementById('p').audio.playbackRate") == 1.25
        shot("22-crm-player")
        logs = [l for l in driver.get_log("browser") if "Content Security Policy" in l.get("message", "")]
        assert not logs, logs
    finally:
        httpd.shutdown()


@check("pt-BR and English both render")
def _():
    driver.get(BASE + f"/?from={DAY}&to={DAY}")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    tid("locale-switch").click()
    wait(lambda: driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR", what="pt-BR")
    assert tid("nav-search").text == "Buscar" and tid("search-submit").text == "Buscar"
    wait(lambda: len(rows()) == len(DAY_ALL), what="rows")
    assert "24/11/2026" in tid("result-row", many=True)[0].text, tid("result-row", many=True)[0].text
    shot("09-search-pt-BR")
    driver.get(BASE + "/r/" + A_LONG)
    assert "Velocidade" in driver.page_source
    shot("10-player-pt-BR")
    driver.get(BASE + "/console/retention")
    assert tid("nav-retention").text == "Retenção" and "Padrão" in tid("retention-default").text
    driver.get(BASE + "/console/quarantine")
    assert "Arquivos em quarentena" in driver.page_source
    tid("locale-switch").click()
    wait(lambda: driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en", what="en")
    st, _, body = http("GET", "/login", {"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.8"})
    assert st == 200 and b"Entrar" in body and b'lang="pt-BR"' in body
    st, _, body = http("GET", "/login", {"Accept-Language": "en-GB"})
    assert b"Sign in" in body and b'lang="en"' in body


@check("logout ends the session")
def _():
    cookie = driver.get_cookie("callrec_session")["value"]
    tid("logout").click()
    wait(lambda: "/login" in driver.current_url, what="the sign-in page")
    driver.get(BASE + "/")
    assert "/login" in driver.current_url
    st, _, _ = http("GET", "/console/api/recordings", {"Cookie": "callrec_session=" + cookie})
    assert st == 401, st


@check("acme's viewer gets nothing of beta's by URL")
def _():
    sign_in("acmeview", "correct horse battery")
    wait(lambda: tid("nav-search", many=True), what="the search page")
    assert not tid("nav-exports", many=True) and not tid("nav-audit", many=True)
    assert not tid("search-company", many=True)
    search_day()
    assert rows() == DAY_ACME, rows()
    shot("11-search-viewer")
    driver.get(BASE + "/r/" + B_MID)
    assert "Not found" in driver.page_source and not tid("player-audio", many=True)
    shot("12-viewer-404")
    cookie = {"Cookie": "callrec_session=" + driver.get_cookie("callrec_session")["value"]}
    st, _, body = http("GET", f"/console/api/recordings?from={DAY}&to=2026-11-25&company=beta", cookie)
    assert st == 200 and json.loads(body)["items"] == [], body
    for path in (f"/audit", f"/exports"):
        st, _, _ = http("GET", path, cookie)
        assert st == 403, (path, st)
    st, _, _ = http("GET", f"/recordings/{B_MID}.opus", cookie)  # the API does not take the cookie
    assert st == 401, st


@check("user disable ends the session at once")
def _():
    driver.get(BASE + "/")
    assert tid("nav-search", many=True)
    callrec("user", "disable", "acmeview")
    driver.get(BASE + "/")
    assert "/login" in driver.current_url
    sign_in("acmeview", "correct horse battery")
    assert "Wrong" in text_of("login-error")


@check("an SSO token works once")
def _():
    token = jwt({"sub": "crm-user-7", "exp": int(time.time()) + 60, "role": "viewer", "company": "acme", "jti": "sso-" + str(time.time())})
    driver.delete_all_cookies()
    driver.get(BASE + f"/console/sso?token={token}&next=/r/{A_LONG}")
    wait(lambda: tid("player-audio", many=True), what="the recording page")
    driver.delete_all_cookies()
    driver.get(BASE + f"/console/sso?token={token}")
    assert text_of("login-error") and not tid("logout", many=True)
    shot("13-sso-refused")
    far = jwt({"sub": "crm-user-7", "exp": int(time.time()) + 3600, "role": "viewer", "company": "acme", "jti": "sso-far"})
    st, _, _ = http("GET", f"/console/sso?token={far}")
    assert st == 401, st


def tab_to(testid, limit=60):
    """Presses Tab until the element with `testid` has the focus."""
    for _ in range(limit):
        if driver.execute_script("const e = document.activeElement; return e && e.getAttribute('data-testid')") == testid:
            return
        ActionChains(driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {testid}")


@check("keyboard only: sign in, search, open a call, play, hold, go to exports")
def _():
    driver.delete_all_cookies()
    driver.get(BASE + "/login")
    ActionChains(driver).send_keys("comp1").send_keys(Keys.TAB).send_keys("correct horse battery").send_keys(Keys.ENTER).perform()
    wait(lambda: tid("nav-search", many=True), what="the search page")
    tab_to("search-from")
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(DAY).send_keys(Keys.TAB)\
        .key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(DAY).send_keys(Keys.ENTER).perform()
    wait(lambda: f"from={DAY}" in driver.current_url and rows() == DAY_ALL, what="the day's rows")
    for _ in range(60):
        if driver.execute_script("const e = document.activeElement; return e.tagName === 'A' && !!e.closest('[data-testid=result-row]')"):
            break
        ActionChains(driver).send_keys(Keys.TAB).perform()
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait(lambda: tid("player-audio", many=True) and audio("readyState") >= 1, what="the player")
    assert A_EARLY in driver.current_url, driver.current_url
    ActionChains(driver).send_keys(" ").perform()
    wait(lambda: audio("currentTime") > 0.5, what="playback by the space key")
    ActionChains(driver).send_keys(" ").perform()
    wait(lambda: audio("paused"), what="paused by the space key")
    t = audio("currentTime")
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    wait(lambda: audio("currentTime") > t + 3 or audio("currentTime") >= audio("duration") - 0.1, what="5 s on")
    tab_to("hold-reason")
    ActionChains(driver).send_keys("keyboard review").send_keys(Keys.ENTER).perform()
    wait(lambda: tid("hold-badge").is_displayed(), what="the hold badge")
    st, _, _ = http("DELETE", f"/recordings/{A_EARLY}/hold", {"Authorization": "Bearer " + ADMIN_TOKEN})
    assert st == 200, st
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    tab_to("nav-exports")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait(lambda: tid("export-submit", many=True), what="the exports page")
    # The focused element is visibly outlined.
    tab_to("export-from")
    outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", outline
    shot("23-keyboard-focus")


@check("strict CSP on every page, no inline script")
def _():
    for path in ("/login",):
        st, headers, body = http("GET", path)
        csp = {k.lower(): v for k, v in headers.items()}["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp, csp
        assert b"<script>" not in body and b"<script " not in body.replace(b'<script type="module" src=', b"")
    logs = driver.get_log("browser")
    violations = [l for l in logs if "Content Security Policy" in l.get("message", "")]
    assert not violations, violations


A_TEN = f"{epoch(2026, 11, 19, 9, 0)}.7"  # another day: no other check lists it


@check("a 10-minute call, encoded in pieces in parallel: exact length, plays, seeks and ends")
def _():
    # Last, so no other check sees one more recording.
    d = os.path.join(spool, "acme")
    tmp = os.path.join(work, A_TEN + ".wav")
    long_wav(tmp, repeat=100)  # 600 s: about 20 pieces of ~30 s
    os.rename(tmp, os.path.join(d, f"1004-5511999990007-{A_TEN}.wav"))
    auth = {"Authorization": "Bearer " + ADMIN_TOKEN}
    wait(lambda: http("GET", f"/recordings/{A_TEN}", auth)[0] == 200, timeout=120, what="the 10-minute recording")
    rec = json.loads(http("GET", f"/recordings/{A_TEN}", auth)[2])
    assert rec["samples"] == 600 * 8000, rec["samples"]
    sign_in("admin1", "correct horse battery")
    driver.get(BASE + "/r/" + A_TEN + "?t=300")
    wait(lambda: audio("readyState") >= 1 and abs(audio("currentTime") - 300) < 0.5, what="currentTime 300")
    assert audio("currentSrc").split("?")[0].endswith(".opus"), audio("currentSrc")
    assert abs(audio("duration") - 600) < 0.05, audio("duration")
    driver.execute_script("document.querySelector('[data-testid=player-audio]').play()")
    wait(lambda: audio("currentTime") > 301, what="playback from 5:00")
    # Seek across many pieces' seams, then play to the end.
    driver.execute_script("const a = document.querySelector('[data-testid=player-audio]'); a.currentTime = 597; a.play()")
    wait(lambda: audio("ended"), timeout=15, what="the end of the call")
    assert abs(audio("currentTime") - 600) < 0.05, audio("currentTime")
    driver.execute_script("const a = document.querySelector('[data-testid=player-audio]'); a.currentTime = 61.3; a.play()")
    wait(lambda: 62 < audio("currentTime") < 70 and not audio("paused"), what="playback from 1:01.3")
    shot("24-ten-minute-call")


try:
    for run in TESTS:
        run()
finally:
    driver.quit()
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()

passed = sum(1 for _, ok, _ in results if ok)
failed = len(results) - passed
print(f"screenshots: {shots}")
print(f"server log: {os.path.join(work, 'serve.log')}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
