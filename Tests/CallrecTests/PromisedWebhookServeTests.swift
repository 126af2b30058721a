import CallrecTestSupport
import Foundation
import Testing

@testable import CallrecCatalog

/// What README promises of webhook delivery by `callrec serve`, against a receiver on loopback.
@Suite(.offThePool)
struct PromisedWebhookServeTests {
    struct Setup {
        let dir: TempDir
        let receiver: WebhookReceiver
        var data: String { dir.file("data") }
        var env: [String: String] { ["CALLREC_WEBHOOK_URL": receiver.url, "CALLREC_WEBHOOK_SECRET": "promised-hook-secret"] }

        init(dir: TempDir = TempDir(), answer: @escaping @Sendable (WebhookReceiver.Hit, [WebhookReceiver.Hit]) -> Int? = { _, _ in 200 }) throws {
            self.dir = dir
            receiver = try WebhookReceiver(answer: answer)
        }

        static func pending(data: String, env: [String: String]) throws -> [[String: String]] {
            let r = try callrec(["webhooks", "--json", "--data", data], env: env)
            return Promised.json(r.out) as? [[String: String]] ?? []
        }

        func serve() throws -> ServeProcess {
            try ServeProcess(data: data, spool: dir.file("spool"), env: env, log: dir.file("serve.log"))
        }

        /// `callrec ingest` in its own process, with the webhook settings (so it writes the event).
        func ingest(_ id: String) throws {
            let file = dir.file("\(id).wav")
            try FileManager.default.copyItem(atPath: Paths.fixture("speech.wav"), toPath: file)
            let r = try callrec(["ingest", "--data", data, file], env: env)
            #expect(r.status == 0, "\(r.err)")
        }

        func pending() throws -> [[String: String]] {
            let r = try callrec(["webhooks", "--json", "--data", data], env: env)
            return Promised.json(r.out) as? [[String: String]] ?? []
        }
    }

    /// An event written by a CLI command in another process is picked up by serve's poll and
    /// delivered; `/metrics` counts the delivery. Checked to fail: with the sender's default poll
    /// made an hour (the event stayed pending).
    @Test func anEventACLICommandWroteIsDeliveredByServeAndCounted() async throws {
        let s = try Setup()
        let serve = try s.serve()
        try await Task.sleep(for: .milliseconds(Int(0.5 * 1000)))  // the sender's first look found nothing
        let id = "1732467600.21"
        try s.ingest(id)
        #expect(await eventuallyAsync(30) { s.receiver.hits.contains { $0.uniqueid == id && $0.type == "recording.ready" && $0.status == 200 } },
                "not delivered: \(serve.text().suffix(1500))")
        #expect(await eventuallyAsync(10) { (try? s.pending())?.isEmpty == true })
        #expect(await eventuallyAsync(10) { (try? serve.metric("callrec_webhooks_delivered_total")) == 1 },
                "\(String(decoding: (try? serve.get("/metrics").body) ?? Data(), as: UTF8.self).split(separator: "\n").filter { $0.contains("webhook") })")
        #expect(try serve.metric("callrec_webhooks_failed_attempts_total") ?? 0 == 0)
        #expect(serve.stop() == 0)
    }

    /// Refused attempts are retried after 2 s, then 4 s (each ±20 %): the gaps between attempts
    /// are at least 1.6 s and 3.2 s. `callrec webhooks` shows the failing event meanwhile, and
    /// `/metrics` counts the failed attempts and the delivery. Checked to fail: with the back-off
    /// not doubling (`pow(2, attempts)` → 1), the second gap was about 2 s.
    @Test func refusedDeliveriesAreRetriedWithDoublingBackoff() async throws {
        // What `callrec webhooks` says when the second attempt arrives (asked from the receiver's
        // thread, so that it is exactly then, however busy the machine).
        let dir = TempDir()
        let seen = PromisedBox<[[String: String]]>()
        let env = ["CALLREC_WEBHOOK_URL": "", "CALLREC_WEBHOOK_SECRET": "promised-hook-secret"]
        let data = dir.file("data")
        let s = try Setup(dir: dir) { hit, earlier in
            let tries = earlier.filter { $0.id == hit.id }.count
            if tries == 1 { seen.value = try? Setup.pending(data: data, env: env) }
            return tries < 2 ? 500 : 200
        }
        let serve = try s.serve()
        let id = "1732467600.22"
        try s.ingest(id)
        #expect(await eventuallyAsync(40) { s.receiver.hits.contains { $0.status == 200 } }, "\(serve.text().suffix(1500))")
        let failing = seen.value ?? []
        #expect(failing.count == 1 && failing.first?["attempts"] == "1" && failing.first?["last_error"]?.contains("500") == true, "\(failing)")
        let hits = s.receiver.hits
        #expect(hits.map(\.status) == [500, 500, 200])
        #expect(Set(hits.map(\.id)).count == 1, "one event id on every attempt")
        if hits.count == 3 {
            let gaps = [hits[1].at.timeIntervalSince(hits[0].at), hits[2].at.timeIntervalSince(hits[1].at)]
            #expect(gaps[0] >= 1.6 && gaps[1] >= 3.2, "gaps \(gaps)")
        }
        #expect(await eventuallyAsync(10) { (try? serve.metric("callrec_webhooks_delivered_total")) == 1 })
        #expect(try serve.metric("callrec_webhooks_failed_attempts_total") == 2)
        #expect(await eventuallyAsync(10) { (try? s.pending())?.isEmpty == true })
        #expect(serve.stop() == 0)
    }

    /// A receiver that takes the request and never answers: the attempt is given up after the
    /// 10 s timeout (not sooner; and not never), recorded as failed, and tried again later.
    /// Checked to fail: with the sender's default timeout made 3 s.
    @Test func aReceiverThatNeverAnswersTimesOutAfter10Seconds() async throws {
        let s = try Setup { _, _ in nil }
        let serve = try s.serve()
        try s.ingest("1732467600.23")
        #expect(await eventuallyAsync(15) { !s.receiver.hits.isEmpty })
        // The receiver's own thread notes when the client closed the connection: the timeout.
        #expect(await eventuallyAsync(45) { s.receiver.hits.first?.closedAt != nil }, "\(serve.text().suffix(1500))")
        let first = try #require(s.receiver.hits.first)
        let given = try #require(first.closedAt).timeIntervalSince(first.at)
        #expect(given >= 9.5 && given < 30, "gave up after \(given) s")
        #expect(await eventuallyAsync(30) { Int((try? s.pending())?.first?["attempts"] ?? "") ?? 0 >= 1 })
        #expect(try s.pending().first?["last_error"]?.isEmpty == false)
        #expect(try serve.metric("callrec_webhooks_failed_attempts_total") ?? 0 >= 1)
        #expect(serve.stop() == 0)
    }

    /// 40 recordings' events and a receiver that holds every request: serve has exactly 16
    /// requests in flight at once (its default), then delivers them all once answered.
    /// The events are written by this process into serve's catalog (serve's poll finds them).
    /// Checked to fail: with `defaultConcurrency` made 20.
    @Test func deliversSixteenAtOnceAcrossRecordingsByDefault() async throws {
        let s = try Setup()
        s.receiver.holding = true
        let serve = try s.serve()
        let catalog = try Catalog(data: DataDirectory(s.data), recordsEvents: true)
        try await catalog.pool.write { db in
            for r in 0..<40 {
                let id = "1732467600.\(100 + r)"
                try catalog.recordEvent(db, type: .recordingReady, uniqueid: id, key: "recording", object: ["uniqueid": id], now: Date())
            }
        }
        #expect(await eventuallyAsync(30) { s.receiver.maxInFlight >= 16 }, "\(s.receiver.maxInFlight) in flight at most")
        try await Task.sleep(for: .milliseconds(Int(1.5 * 1000)))  // room for a 17th, were there no bound
        #expect(s.receiver.maxInFlight == 16)
        s.receiver.holding = false
        #expect(await eventuallyAsync(60) { Set(s.receiver.hits.filter { $0.status == 200 }.map(\.uniqueid)).count == 40 })
        #expect(s.receiver.maxInFlight == 16)
        #expect(await eventuallyAsync(10) { (try? s.pending())?.isEmpty == true })
        #expect(serve.stop() == 0)
    }
}

/// A value set on one thread and read on another.
final class PromisedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T?
    var value: T? {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}
