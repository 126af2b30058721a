import CallrecTestSupport
import Crypto
import Foundation
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
@Suite(.offThePool)
struct WebhookKillTests {
    @Test func eventsSurviveSIGKILLOfServe() async throws {
        let dir = TempDir()
        let data = dir.file("data"), spool = dir.file("spool"), logs = (dir.file("serve1.log"), dir.file("serve2.log"))
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let secret = "kill-test-webhook-secret"
        let ids = (1...6).map { "1732467600.\($0)" }
        let deleted = Array(ids.prefix(2))  // these get a recording.deleted behind their refused recording.ready
        let hooks = HookLog()
        try await withWebhookReceiver({ await hooks.take($0, signature: $1) }) { url in
            let env = ["CALLREC_WEBHOOK_URL": url.absoluteString, "CALLREC_WEBHOOK_SECRET": secret]
            @Sendable func pending() throws -> [[String: String]] {
                let r = try callrec(["webhooks", "--json", "--data", data], env: env)
                #expect(r.status == 0, "\(r.err)")
                return try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: String]] ?? []
            }

            // The receiver refuses; the recordings come in through the spool.
            let first = try ServeProcess(data: data, spool: spool, env: env, log: logs.0)
            for id in ids { try placeFixture("speech.wav", at: spool + "/\(id).wav") }
            let refusedAll = await eventuallyAsync(60) {
                let refused = await hooks.requests.filter { $0.type == "recording.ready" && !$0.accepted }
                return Set(refused.map(\.uniqueid)) == Set(ids)
            }
            try #require(refusedAll, "a refused recording.ready of every recording")
            // Two recordings deleted while their recording.ready is still failing.
            let token = try callrec(["token", "--role", "admin", "--data", data]).out
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for id in deleted {
                #expect(try http("DELETE", "http://127.0.0.1:\(first.port)/recordings/\(id)", token: token).status == 204)
            }
            let before = try pending()
            #expect(before.count == ids.count + deleted.count, "\(before)")
            #expect(before.filter { $0["type"] == "recording.deleted" }.allSatisfy { $0["attempts"] == "0" }, "sent before its recording.ready: \(before)")
            #expect(first.stop(SIGKILL) == SIGKILL)
            #expect(try pending().count == ids.count + deleted.count, "events lost in the kill")

            // The receiver accepts; serve starts again and catches up.
            await hooks.accept()
            let second = try ServeProcess(data: data, spool: spool, env: env, log: logs.1)
            #expect(try await eventuallyAsync(60) { try pending().isEmpty }, "events still pending after the restart")
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
