import CallrecTestSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Every request a webhook receiver got, in arrival order; it answers 500 until told to accept.
actor HookLog {
    struct Request {
        var id: String
        var type: String
        var uniqueid: String
        var signature: String
        var body: Data
        var accepted: Bool
    }
    var requests: [Request] = []
    var accepting = false

    func take(_ body: Data, signature: String) -> Bool {
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        let uniqueid = (json["recording"] as? [String: Any])?["uniqueid"] as? String ?? ""
        requests.append(Request(id: json["id"] as? String ?? "", type: json["type"] as? String ?? "", uniqueid: uniqueid, signature: signature,
                                body: body, accepted: accepting))
        return accepting
    }

    func accept() { accepting = true }
}

/// `callrec serve` SIGKILLed with webhook events pending (the receiver refusing them), then
/// started again with the receiver accepting: every event arrives, with the id it had when it was
/// refused, each recording's events in order, every signature valid, nothing left pending.
struct WebhookKillTests {
    @Test func eventsSurviveSIGKILLOfServe() async throws {
        let dir = TempDir()
        let data = dir.file("data"), spool = dir.file("spool"), logs = (dir.file("serve1.log"), dir.file("serve2.log"))
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let secret = "kill-test-webhook-secret"
        let ids = (1...6).map { "1732467600.\($0)" }
        let deleted = Array(ids.prefix(2))  // these get a recording.deleted behind their refused recording.ready
        let hooks = HookLog()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let ok = await hooks.take(Data(body.readableBytesView), signature: request.headers[HTTPField.Name("Callrec-Signature")!] ?? "")
            return Response(status: ok ? .ok : .internalServerError)
        }
        let logger = { var l = Logger(label: "receiver"); l.logLevel = .critical; return l }()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let env = ["CALLREC_WEBHOOK_URL": "http://127.0.0.1:\(port)/hook", "CALLREC_WEBHOOK_SECRET": secret]
            func pending() throws -> [[String: String]] {
                var cli = ProcessInfo.processInfo.environment
                for (k, v) in env { cli[k] = v }
                let r = try run(Paths.binary, ["webhooks", "--json", "--data", data], environment: cli)
                #expect(r.status == 0, "\(r.err)")
                return try JSONSerialization.jsonObject(with: r.out) as? [[String: String]] ?? []
            }
            func waitFor(_ what: String, seconds: Double = 60, _ condition: () async throws -> Bool) async throws {
                let deadline = Date().addingTimeInterval(seconds)
                while Date() < deadline {
                    if try await condition() { return }
                    try await Task.sleep(for: .milliseconds(100))
                }
                Issue.record("timed out waiting for \(what)")
                throw CancellationError()
            }

            // The receiver refuses; the recordings come in through the spool.
            let first = try ServeProcess(data: data, spool: spool, environment: env, log: logs.0)
            for id in ids { try FileManager.default.copyItem(atPath: Paths.fixture("speech.wav"), toPath: spool + "/\(id).wav") }
            try await waitFor("a refused recording.ready of every recording") {
                let refused = await hooks.requests.filter { $0.type == "recording.ready" && !$0.accepted }
                return Set(refused.map(\.uniqueid)) == Set(ids)
            }
            // Two recordings deleted while their recording.ready is still failing.
            let token = String(decoding: try run(Paths.binary, ["token", "--role", "admin", "--data", data]).out, as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for id in deleted {
                #expect(try request("DELETE", "http://127.0.0.1:\(first.port)/recordings/\(id)", token: token) == 204)
            }
            let before = try pending()
            #expect(before.count == ids.count + deleted.count, "\(before)")
            #expect(before.filter { $0["type"] == "recording.deleted" }.allSatisfy { $0["attempts"] == "0" }, "sent before its recording.ready: \(before)")
            #expect(first.stop(SIGKILL) == SIGKILL)
            #expect(try pending().count == ids.count + deleted.count, "events lost in the kill")

            // The receiver accepts; serve starts again and catches up.
            await hooks.accept()
            let second = try ServeProcess(data: data, spool: spool, environment: env, log: logs.1)
            try await waitFor("nothing pending after the restart") { try pending().isEmpty }
            #expect(second.stop(SIGTERM) == 0)
        }

        let got = await hooks.requests
        let stored = Dictionary(grouping: got, by: \.id)
        // Every event arrived and was accepted; one event id per (recording, type), in the refused attempts as in the accepted one.
        for id in ids {
            let ready = got.filter { $0.uniqueid == id && $0.type == "recording.ready" }
            #expect(Set(ready.map(\.id)).count == 1, "recording.ready of \(id) with several ids: \(Set(ready.map(\.id)))")
            #expect(ready.contains { !$0.accepted } && ready.contains(where: \.accepted), "\(id): refused then accepted")
        }
        for id in deleted {
            let del = got.filter { $0.uniqueid == id && $0.type == "recording.deleted" }
            #expect(Set(del.map(\.id)).count == 1 && del.contains(where: \.accepted), "recording.deleted of \(id)")
            // In order: the first try of recording.deleted after recording.ready was accepted.
            let readyOK = try #require(got.firstIndex { $0.uniqueid == id && $0.type == "recording.ready" && $0.accepted })
            let firstDelete = try #require(got.firstIndex { $0.uniqueid == id && $0.type == "recording.deleted" })
            #expect(readyOK < firstDelete, "\(id): recording.deleted sent before its recording.ready was delivered")
        }
        #expect(stored.count == ids.count + deleted.count)
        #expect(got.filter { $0.type == "recording.deleted" }.allSatisfy { deleted.contains($0.uniqueid) })
        // Every signature: t=<unix>,v1=hex HMAC-SHA256(secret, "<t>.<raw body>").
        for r in got {
            let parts = Dictionary(r.signature.split(separator: ",").compactMap { p -> (String, String)? in
                let kv = p.split(separator: "=", maxSplits: 1)
                return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
            }, uniquingKeysWith: { a, _ in a })
            let t = parts["t"] ?? ""
            let mac = HMAC<SHA256>.authenticationCode(for: Data("\(t).".utf8) + r.body, using: SymmetricKey(data: Data(secret.utf8)))
            #expect(parts["v1"] == mac.map { String(format: "%02x", $0) }.joined(), "bad signature on \(r.id): \(r.signature)")
            if let at = Int(t) { #expect(abs(Date().timeIntervalSince1970 - Double(at)) < 300) }
        }
    }
}

/// One request with a bearer token; the status.
func request(_ method: String, _ url: String, token: String) throws -> Int {
    var req = URLRequest(url: URL(string: url)!)
    req.httpMethod = method
    req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var status = 0
    nonisolated(unsafe) var failure: (any Error)?
    URLSession.shared.dataTask(with: req) { _, response, error in
        if let error { failure = error } else { status = (response as? HTTPURLResponse)?.statusCode ?? 0 }
        done.signal()
    }.resume()
    done.wait()
    if let failure { throw failure }
    return status
}
