import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Crypto
import Foundation
import Logging
import Testing

@testable import CallrecCatalog
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
            _ = ingestor.ingest(path: try placeFixture(fixture, at: dir.file("\(id).wav")))
        }
        _ = try catalog.delete("1732467600.1", reason: "test", audit: AuditEntry(at: Date(), actor: "t", role: nil, company: nil, action: "delete", uniqueid: "1732467600.1"))
        let stored = try catalog.outbox().map(\.id)
        #expect(stored.count == 3)

        // First the receiver is down: nothing is lost, attempts are counted.
        let down = WebhookSender(catalog: catalog, url: URL(string: "http://127.0.0.1:9/hook")!, secret: "hook-secret", logger: logger, timeout: 2, backoff: 0.05, poll: .milliseconds(20))
        let t1 = Task { try await down.run() }
        // Until an attempt is recorded (a fixed wait failed on a loaded machine: the sender cancels
        // deliveries still in flight, and those do not count).
        _ = try await eventuallyAsync(60) { try catalog.undeliveredEvents().contains(where: { $0.attempts > 0 }) }  // a liveness bound: the suite on 2 cores stalls for tens of seconds at times
        t1.cancel()
        _ = await t1.result
        #expect(try catalog.undeliveredEvents().count == 3)
        #expect(try catalog.undeliveredEvents().contains { $0.attempts > 0 })

        // Then up, failing twice more, as after a restart: every event arrives, ids stable.
        let received = Received(failFirst: 2)
        try await withWebhookReceiver({ await received.take($0, signature: $1) }) { url in
            let sender = WebhookSender(catalog: catalog, url: url, secret: "hook-secret", logger: logger, timeout: 2, backoff: 0.05, poll: .milliseconds(20))
            let t2 = Task { try await sender.run() }
            _ = try await eventuallyAsync(60) { try catalog.undeliveredEvents().isEmpty }  // a liveness bound: the whole suite loads both cores
            t2.cancel()
            _ = await t2.result
        }
        #expect(try catalog.undeliveredEvents().isEmpty)
        let got = await received.requests
        #expect(got.count >= 5)  // two refused, then all three
        #expect(Set(got.map(\.id)) == Set(stored), "the same ids on every try")
        // Delivered in order per recording: A ready before A deleted.
        let delivered = got
        let aReady = try #require(delivered.lastIndex { $0.type == "recording.ready" && String(decoding: $0.body, as: UTF8.self).contains("1732467600.1") })
        let aDeleted = try #require(delivered.lastIndex { $0.type == "recording.deleted" })
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

/// A slow receiver's view of a burst: how many requests it had at once, and whether any event
/// came before the earlier events of its recording had been answered 2xx.
actor Burst {
    let order: [String: [String]]  // uniqueid → its event ids, oldest first
    let recordingOf: [String: String]
    var succeeded = Set<String>()
    var firstAttempts = 0
    var attempts: [String: Int] = [:]
    var inFlight = 0
    var maxInFlight = 0
    var outOfOrder: [String] = []

    init(_ events: [Catalog.OutboxEvent]) {
        var order: [String: [String]] = [:]
        var recordingOf: [String: String] = [:]
        for e in events {
            guard let u = e.uniqueid else { continue }
            order[u, default: []].append(e.id)
            recordingOf[e.id] = u
        }
        self.order = order
        self.recordingOf = recordingOf
    }

    /// A request for `id` arrives; false: answer 500 (the first attempt of every third event).
    func begin(_ id: String) -> Bool {
        inFlight += 1
        maxInFlight = max(maxInFlight, inFlight)
        if let u = recordingOf[id], let mine = order[u] {
            for earlier in mine.prefix { $0 != id } where !succeeded.contains(earlier) {
                outOfOrder.append("\(id) of \(u) came before \(earlier) was delivered")
            }
        }
        attempts[id, default: 0] += 1
        guard attempts[id] == 1 else { return true }
        firstAttempts += 1
        return firstAttempts % 3 != 0
    }

    func end(_ id: String, ok: Bool) {
        inFlight -= 1
        if ok { succeeded.insert(id) }
    }
}

extension WebhookTests {
    /// A burst of 165 events (40 recordings with 4 each, 5 exports) through a slow receiver that
    /// refuses a third of the first attempts: several deliveries at once, never more than the
    /// bound, and each recording's events strictly one after the other.
    @Test func concurrentAcrossRecordingsInOrderWithin() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")), recordsEvents: true)
        let logger = { var l = Logger(label: "test"); l.logLevel = .critical; return l }()
        try await catalog.pool.write { db in
            for round in 0..<4 {
                for r in 0..<40 {
                    let type: Catalog.EventType = round == 3 ? .recordingDeleted : .recordingReady
                    try catalog.recordEvent(db, type: type, uniqueid: "1732467600.\(r)", key: "recording", object: ["uniqueid": "1732467600.\(r)"], now: Date())
                }
                try catalog.recordEvent(db, type: .exportCompleted, uniqueid: nil, key: "export", object: ["id": "\(round)"], now: Date())
            }
            try catalog.recordEvent(db, type: .exportCompleted, uniqueid: nil, key: "export", object: ["id": "4"], now: Date())
        }
        let events = try catalog.outbox()
        #expect(events.count == 165)
        let burst = Burst(events)
        let slow: @Sendable (Data, String) async throws -> Bool = { body, _ in
            let id = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["id"] as? String ?? ""
            let ok = await burst.begin(id)
            try await Task.sleep(for: .milliseconds(10))
            await burst.end(id, ok: ok)
            return ok
        }
        try await withWebhookReceiver(slow) { url in
            let sender = WebhookSender(catalog: catalog, url: url, secret: "s", logger: logger,
                                       timeout: 5, backoff: 0.05, poll: .milliseconds(20), concurrency: 8)
            let run = Task { try await sender.run() }
            _ = try await eventuallyAsync(60, every: .milliseconds(20)) { try catalog.undeliveredEvents().isEmpty }
            run.cancel()
            _ = await run.result
        }
        #expect(try catalog.undeliveredEvents().isEmpty)
        #expect(await burst.outOfOrder == [])
        #expect(await burst.succeeded == Set(events.map(\.id)))
        let most = await burst.maxInFlight
        #expect(most > 1 && most <= 8, "\(most) at once")
        #expect(await burst.attempts.values.reduce(0, +) >= 165 + 165 / 3)
    }

    /// Cancelled while deliveries hang (a listener that reads each request and never answers),
    /// once the listener holds as many unanswered requests as the sender's concurrency, so the
    /// cancellation certainly lands with deliveries in flight: `run` ends at once, not after the
    /// 60 s timeout, and the events stay pending with no attempt counted.
    @Test func cancellationEndsDeliveriesInFlight() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")), recordsEvents: true)
        let logger = { var l = Logger(label: "test"); l.logLevel = .critical; return l }()
        try await catalog.pool.write { db in
            for r in 0..<20 {
                try catalog.recordEvent(db, type: .recordingReady, uniqueid: "1732467600.\(r)", key: "recording", object: [:], now: Date())
            }
        }
        let listener = try WebhookReceiver { _, _ in nil }  // reads each request, never answers
        defer { listener.stop() }
        let sender = WebhookSender(catalog: catalog, url: listener.hookURL, secret: "s", logger: logger,
                                   timeout: 60, poll: .milliseconds(20), concurrency: 4)
        let run = Task { try await sender.run() }
        let inFlight = await eventuallyAsync(30) { listener.hits.count >= 4 }
        #expect(inFlight, "only \(listener.hits.count) request(s) reached the listener")
        let cancelled = ContinuousClock.now
        run.cancel()
        _ = await run.result
        // A liveness bound, far below the 60 s a delivery would otherwise hang.
        #expect(ContinuousClock.now - cancelled < .seconds(20))
        #expect(listener.hits.count == 4, "no delivery started after the cancellation")
        let pending = try catalog.undeliveredEvents()
        #expect(pending.count == 20 && pending.allSatisfy { $0.attempts == 0 })
    }
}

extension WebhookTests {
    /// With a poll of an hour, an event this process commits still goes out at once: the catalog
    /// rings the sender's bell on commit.
    @Test func anEventCommittedHereGoesOutWithoutWaitingForThePoll() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")), recordsEvents: true)
        let logger = { var l = Logger(label: "test"); l.logLevel = .critical; return l }()
        let received = Received(failFirst: 0)
        try await withWebhookReceiver({ await received.take($0, signature: $1) }) { url in
            let sender = WebhookSender(catalog: catalog, url: url, secret: "s", logger: logger, poll: .seconds(3600))
            let run = Task { try await sender.run() }
            try await Task.sleep(for: .milliseconds(200))  // the sender's first poll found nothing and waits
            for n in 0..<3 {
                let committed = ContinuousClock.now
                try await catalog.pool.write { db in
                    try catalog.recordEvent(db, type: .recordingReady, uniqueid: "1732467600.\(n)", key: "recording", object: [:], now: Date())
                }
                _ = await eventuallyAsync(150, every: .milliseconds(5)) { await received.requests.count > n }
                // Far below the poll, and loose: the whole suite loads both cores (25 s stalls seen).
                #expect(ContinuousClock.now - committed < .seconds(120), "event \(n)")
            }
            run.cancel()
            _ = await run.result
        }
        #expect(await received.requests.count == 3)
    }
}
