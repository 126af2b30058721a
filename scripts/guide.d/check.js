// Runs the JavaScript of docs/crm-guide.md against a live `callrec serve` (Node 18+, built-ins only).
//   node scripts/guide.d/check.js <path to the callrec binary>
// Every ```js block of the guide, in order, is the code under test; checked:
//  - readSecret trims the secret files (which may end in a newline);
//  - signedPath matches the contract (HMAC-SHA256 over path + "\n" + exp, base64url without
//    padding) and `callrec sign`, and a real GET of the signed .opus and .wav answers 200/206;
//  - the JWT token() mints is accepted (200 on GET /recordings/<id>, and on the list);
//  - verifyWebhook accepts the signature of a real recording.ready webhook from callrec, and
//    rejects without throwing: a wrong-length signature, a tampered body, a stale timestamp, a
//    missing or garbled header;
//  - the 401 codes the guide's table names (expired, bad_signature, missing_claim, unauthorized)
//    are the ones the server answers (GUIDE_STRICT_CODES=0 makes a mismatch a note only).
"use strict";
const assert = require("assert");
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const { spawn, execFileSync } = require("child_process");

const bin = process.argv[2];
const repo = path.resolve(__dirname, "../..");
const guide = fs.readFileSync(path.join(repo, "docs/crm-guide.md"), "utf8");
const blocks = [...guide.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
assert(blocks.length >= 4, `expected the guide's js blocks, found ${blocks.length}`);
const names = ["readSecret", "signedPath", "token", "verifyWebhook"];
const g = new Function("require", `${blocks.join("\n")}\nreturn { ${names.join(", ")} };`)(require);
for (const n of names) assert.strictEqual(typeof g[n], "function", `the guide defines ${n}`);

let failures = 0;
const notes = [];
function check(what, fn) {
  return Promise.resolve()
    .then(fn)
    .then(() => console.log(`ok   ${what}`))
    .catch((e) => {
      failures++;
      console.log(`FAIL ${what}: ${e && e.message ? e.message : e}`);
    });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "callrec-guide-"));
const data = path.join(tmp, "data");
const spool = path.join(tmp, "spool");
fs.mkdirSync(spool, { recursive: true });
let server = null;
let receiver = null;
function cleanup() {
  if (server && server.exitCode === null) server.kill("SIGTERM");
  if (receiver) receiver.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function request(port, pathAndQuery, { method = "GET", headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: pathAndQuery, method, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}
const errorCode = (r) => {
  try { return JSON.parse(r.body).error.code; } catch { return undefined; }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = require("net").createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function main() {
  // A webhook receiver on loopback: keeps what callrec sent, exactly as received.
  const hooks = [];
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      hooks.push({ raw: Buffer.concat(chunks), header: req.headers["callrec-signature"] });
      res.writeHead(200).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const port = await freePort();
  const env = {
    ...process.env, CALLREC_DATA: data, CALLREC_SPOOL: spool, CALLREC_SETTLE_MS: "200",
    CALLREC_WEBHOOK_URL: `http://127.0.0.1:${receiver.address().port}/callrec`,
  };
  for (const k of ["CALLREC_URL_SECRET", "CALLREC_JWT_SECRET", "CALLREC_WEBHOOK_SECRET"]) delete env[k];
  let log = "";
  server = spawn(bin, ["serve", "--host", "127.0.0.1", "--port", String(port)], { env, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => (log += d));
  server.stderr.on("data", (d) => (log += d));
  for (let i = 0; i < 100; i++) {
    try { if ((await request(port, "/healthz")).status === 200) break; } catch {}
    await sleep(100);
  }
  // A recording arrives in the spool as Asterisk leaves it (written elsewhere, then renamed in).
  const id = "1767225600.1";
  fs.copyFileSync(path.join(repo, "Fixtures/audio/speech.wav"), path.join(tmp, "incoming.wav"));
  fs.renameSync(path.join(tmp, "incoming.wav"), path.join(spool, `${id}.wav`));
  for (let i = 0; i < 300 && !hooks.length; i++) await sleep(100);
  if (!hooks.length) throw new Error(`no recording.ready webhook within 30 s; serve said:\n${log}`);

  const secrets = path.join(data, "secrets");
  const URL_SECRET = g.readSecret(path.join(secrets, "url.secret"));
  const JWT_SECRET = g.readSecret(path.join(secrets, "jwt.secret"));
  const WEBHOOK_SECRET = g.readSecret(path.join(secrets, "webhook.secret"));

  await check("readSecret trims the secret files", () => {
    for (const s of [URL_SECRET, JWT_SECRET, WEBHOOK_SECRET]) assert.match(s, /^\S{32,}$/);
    const f = path.join(tmp, "with-newline.secret");
    fs.writeFileSync(f, "abc\n");
    assert.strictEqual(g.readSecret(f), "abc");
  });

  await check("signedPath is the contract's HMAC-SHA256(path + \"\\n\" + exp), base64url without padding", () => {
    const p = `/recordings/${id}.opus`;
    const [, exp, sig] = g.signedPath(p, 600, URL_SECRET).match(/^\/recordings\/[^?]+\?exp=(\d+)&sig=([A-Za-z0-9_-]+)$/);
    const want = crypto.createHmac("sha256", URL_SECRET).update(`${p}\n${exp}`).digest("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    assert.strictEqual(sig, want);
    assert.strictEqual(sig.length, 43);
    assert(Math.abs(Number(exp) - (Date.now() / 1000 + 600)) < 5);
  });

  await check("signedPath agrees with `callrec sign`", () => {
    const cli = execFileSync(bin, ["sign", `/recordings/${id}.opus`, "--ttl", "600"], { env }).toString().trim();
    const exp = Number(cli.match(/exp=(\d+)/)[1]);
    // The seconds may tick between the two: sign at the CLI's clock.
    const realNow = Date.now;
    Date.now = () => (exp - 600) * 1000;
    try { assert.strictEqual(g.signedPath(`/recordings/${id}.opus`, 600, URL_SECRET), cli); } finally { Date.now = realNow; }
  });

  await check("a signed .opus URL plays (GET 200, a Range 206, HEAD 200)", async () => {
    const url = g.signedPath(`/recordings/${id}.opus`, 600, URL_SECRET);
    const r = await request(port, url);
    assert.strictEqual(r.status, 200, `GET ${url} → ${r.status} ${r.body}`);
    assert.strictEqual(r.body.subarray(0, 4).toString(), "OggS");
    const ranged = await request(port, url, { headers: { Range: "bytes=0-99" } });
    assert.strictEqual(ranged.status, 206);
    assert.strictEqual(ranged.body.length, 100);
    assert.strictEqual((await request(port, url, { method: "HEAD" })).status, 200);
  });

  await check("a signed .wav URL plays (the URL the CRM stores)", async () => {
    const r = await request(port, g.signedPath(`/recordings/${id}.wav`, 600, URL_SECRET), { headers: { Range: "bytes=0-43" } });
    assert.strictEqual(r.status, 206, `→ ${r.status} ${r.body}`);
    assert.strictEqual(r.body.subarray(0, 4).toString(), "RIFF");
  });

  await check("a token() JWT is accepted (GET /recordings/<id> 200, the list 200)", async () => {
    const admin = g.token({ sub: "crm", role: "admin", ttlSeconds: 300 }, JWT_SECRET);
    const r = await request(port, `/recordings/${id}`, { headers: { Authorization: `Bearer ${admin}` } });
    assert.strictEqual(r.status, 200, `→ ${r.status} ${r.body}`);
    assert.strictEqual(JSON.parse(r.body).uniqueid, id);
    const list = await request(port, "/recordings?from=2026-01-01&to=2026-01-02", { headers: { Authorization: `Bearer ${admin}` } });
    assert.strictEqual(list.status, 200);
    assert.deepStrictEqual(JSON.parse(list.body).items.map((x) => x.uniqueid), [id]);
    const viewer = g.token({ sub: "crm", role: "viewer", company: "42", ttlSeconds: 300 }, JWT_SECRET);
    const other = await request(port, `/recordings/${id}`, { headers: { Authorization: `Bearer ${viewer}` } });
    assert.strictEqual(other.status, 404, "a recording of no company is not a viewer of 42's");
  });

  await check("verifyWebhook accepts callrec's real signature", () => {
    const { raw, header } = hooks[0];
    assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.strictEqual(JSON.parse(raw).type, "recording.ready");
    assert.strictEqual(g.verifyWebhook(raw, header, WEBHOOK_SECRET), true);
    assert.strictEqual(g.verifyWebhook(raw.toString("utf8"), header, WEBHOOK_SECRET), true);
  });

  await check("verifyWebhook rejects, without throwing, what it must", () => {
    const { raw, header } = hooks[0];
    const [t, v1] = header.split(",");
    const tampered = Buffer.from(raw.toString().replace(id, "1767225600.2"));
    const cases = {
      "a wrong-length signature": `${t},v1=${v1.slice(3, 40)}`,
      "a signature one hex digit longer": `${header}0`,
      "a non-hex signature of the right length": `${t},v1=${"z".repeat(64)}`,
      "another secret's signature": `${t},v1=${crypto.createHmac("sha256", "x".repeat(32)).update(`${t.slice(2)}.`).update(raw).digest("hex")}`,
      "a stale timestamp": `t=${Number(t.slice(2)) - 3600},${v1}`,
      "no v1": t,
      "an empty header": "",
      "no header": undefined,
      "garbage": "v1,t,==,",
    };
    for (const [what, h] of Object.entries(cases)) {
      let ok;
      assert.doesNotThrow(() => (ok = g.verifyWebhook(raw, h, WEBHOOK_SECRET)), what);
      assert.strictEqual(ok, false, what);
    }
    let ok;
    assert.doesNotThrow(() => (ok = g.verifyWebhook(tampered, header, WEBHOOK_SECRET)), "a tampered body");
    assert.strictEqual(ok, false, "a tampered body");
    assert.doesNotThrow(() => (ok = g.verifyWebhook(JSON.parse(raw), header, WEBHOOK_SECRET)), "a parsed body");
    assert.strictEqual(ok, false, "a parsed body");
  });

  // The 401 codes of the guide's table, as the server answers them.
  const table = [...guide.matchAll(/^\| 401 \| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  const p = `/recordings/${id}.opus`;
  const pastExp = Math.floor(Date.now() / 1000) - 60;
  const hs256 = (header, claims) => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${b64(header)}.${b64(claims)}`;
    return `${unsigned}.${crypto.createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
  };
  const later = Math.floor(Date.now() / 1000) + 300;
  const asks = [
    ["expired", "a signed URL past exp", () => request(port, `${p}?exp=${pastExp}&sig=${crypto.createHmac("sha256", URL_SECRET).update(`${p}\n${pastExp}`).digest("base64url")}`)],
    ["expired", "a token past exp", () => request(port, `/recordings/${id}`, { headers: { Authorization: `Bearer ${g.token({ sub: "crm", role: "admin", ttlSeconds: -60 }, JWT_SECRET)}` } })],
    ["bad_signature", "a signed URL with another secret's signature", () => request(port, g.signedPath(p, 600, "y".repeat(43)))],
    ["bad_signature", "a token with another secret's signature", () => request(port, `/recordings/${id}`, { headers: { Authorization: `Bearer ${g.token({ sub: "crm", role: "admin", ttlSeconds: 300 }, "y".repeat(43))}` } })],
    ["missing_claim", "a viewer token without company", () => request(port, `/recordings/${id}`, { headers: { Authorization: `Bearer ${hs256({ alg: "HS256", typ: "JWT" }, { sub: "crm", role: "viewer", exp: later })}` } })],
    ["missing_claim", "a token without role", () => request(port, `/recordings/${id}`, { headers: { Authorization: `Bearer ${hs256({ alg: "HS256", typ: "JWT" }, { sub: "crm", exp: later })}` } })],
    ["unauthorized", "no credentials", () => request(port, `/recordings/${id}`)],
  ];
  const strict = process.env.GUIDE_STRICT_CODES !== "0";
  await check("the guide's 401 table names every code checked here", () => {
    for (const [code] of asks) assert(table.includes(code), `the table lacks ${code}`);
  });
  for (const [code, what, ask] of asks) {
    await check(`${what} → 401 ${code}`, async () => {
      const r = await ask();
      assert.strictEqual(r.status, 401, `${what} → ${r.status} ${r.body}`);
      const got = errorCode(r);
      if (got !== code) {
        if (strict) throw new Error(`answered code ${got}, the guide says ${code}`);
        notes.push(`${what}: 401 with code ${got}, the guide says ${code}`);
      }
    });
  }

  for (const n of notes) console.log(`note ${n}`);
  console.log(failures ? `${failures} check(s) failed` : "the guide's code works against callrec serve");
  process.exitCode = failures ? 1 : 0;
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 1;
}).finally(() => cleanup());
