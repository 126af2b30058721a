import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import CallrecServer

/// What a webhook receiver got.
actor Received {
    var requests: [(id: String, type: String, signature: String, body: Data)] = []
    var failFirst: Int
    init(failFirst: Int) { self.failFirst = failFirst }

    /// Records a request; answers 500 for the first `failFirst`.
    func take(_ body: Data, signature: String) -> Bool {
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        requests.append((json["id"] as? String ?? "", json["type"] as? String ?? "", signature, body))
        if failFirst > 0 {
            failFirst -= 1
            return false
        }
        return true
    }
}

struct WebhookTests {
    @Test func deliveredSignedInOrderDespiteFailures() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")), recordsEvents: true)
        let logger = { var l = Logger(label: "test"); l.logLevel = .critical; return l }()
        let ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
        for (id, fixture) in [("1732467600.1", "speech.wav"), ("1732467600.2", "u8.wav")] {
            let p = dir.file("\(id).wav")
            try FileManager.default.copyItem(atPath: Paths.fixture(fixture), toPath: p)
            _ = ingestor.ingest(path: p)
        }
        _ = try catalog.delete("1732467600.1", reason: "test", audit: AuditEntry(at: Date(), actor: "t", role: nil, company: nil, action: "delete", uniqueid: "1732467600.1"))
        let stored = try catalog.outbox().map(\.id)
        #expect(stored.count == 3)

        // First the receiver is down: nothing is lost, attempts are counted.
        let down = WebhookSender(catalog: catalog, url: URL(string: "http://127.0.0.1:9/hook")!, secret: "hook-secret", logger: logger, timeout: 2, backoff: 0.05, poll: .milliseconds(20))
        let t1 = Task { try await down.run() }
        try await Task.sleep(for: .milliseconds(400))
        t1.cancel()
        _ = await t1.result
        #expect(try catalog.undeliveredEvents().count == 3)
        #expect(try catalog.undeliveredEvents().contains { $0.attempts > 0 })

        // Then up, failing twice more, as after a restart: every event arrives, ids stable.
        let received = Received(failFirst: 2)
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let ok = await received.take(Data(body.readableBytesView), signature: request.headers[HTTPField.Name("Callrec-Signature")!] ?? "")
            return Response(status: ok ? .ok : .internalServerError)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let sender = WebhookSender(catalog: catalog, url: URL(string: "http://127.0.0.1:\(port)/hook")!, secret: "hook-secret", logger: logger, timeout: 2, backoff: 0.05, poll: .milliseconds(20))
            let t2 = Task { try await sender.run() }
            for _ in 0..<200 where try catalog.undeliveredEvents().isEmpty == false {
                try await Task.sleep(for: .milliseconds(50))
            }
            t2.cancel()
            _ = await t2.result
        }
        #expect(try catalog.undeliveredEvents().isEmpty)
        let got = await received.requests
        #expect(got.count >= 5)  // two refused, then all three
        #expect(Set(got.map(\.id)) == Set(stored), "the same ids on every try")
        // Delivered in order per recording: A ready before A deleted.
        let delivered = got
        let aReady = delivered.lastIndex { $0.type == "recording.ready" && String(decoding: $0.body, as: UTF8.self).contains("1732467600.1") }!
        let aDeleted = delivered.lastIndex { $0.type == "recording.deleted" }!
        #expect(aReady < aDeleted)
        // Signatures verify: HMAC-SHA256(secret, "<t>.<raw body>").
        for r in got {
            let parts = Dictionary(uniqueKeysWithValues: r.signature.split(separator: ",").map { p -> (String, String) in
                let kv = p.split(separator: "=", maxSplits: 1)
                return (String(kv[0]), String(kv[1]))
            })
            let t = try #require(parts["t"])
            var signed = Data("\(t).".utf8)
            signed.append(r.body)
            let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data("hook-secret".utf8)))
            #expect(parts["v1"] == mac.map { String(format: "%02x", $0) }.joined())
            let json = try #require(try JSONSerialization.jsonObject(with: r.body) as? [String: Any])
            #expect((json["id"] as? String)?.hasPrefix("evt_") == true && json["created_at"] is String)
        }
    }
}
