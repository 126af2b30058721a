import CallrecCatalog
import CallrecIngest
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// Calls being recorded now (`GET /calls/live`) and the event stream (`GET /events`).
@Suite(.offThePool)
struct LiveTests {
    static let t0 = Date(timeIntervalSince1970: 1_732_467_600)

    /// Two sources' facts of one call are one call; each source replaces only its own set.
    @Test func sourcesMerge() {
        let live = LiveCalls()
        let heard = Counter()
        _ = live.listen { heard.add() }
        live.replace(source: "spool", with: [LiveCall(uniqueid: "1732467600.1", company: "acme", startedAt: Self.t0.addingTimeInterval(2), durationMs: 5000, updatedAt: Self.t0)])
        live.upsert(source: "ami", LiveCall(uniqueid: "1732467600.1", agent: "1001", leadNumber: "5511", startedAt: Self.t0, durationMs: 4000, updatedAt: Self.t0.addingTimeInterval(9)))
        live.upsert(source: "ami", LiveCall(uniqueid: "1732467600.2", startedAt: Self.t0, durationMs: 0, updatedAt: Self.t0))
        let calls = live.current()
        #expect(calls.map(\.uniqueid) == ["1732467600.1", "1732467600.2"])
        #expect(calls[0] == LiveCall(uniqueid: "1732467600.1", company: "acme", agent: "1001", leadNumber: "5511", startedAt: Self.t0, durationMs: 5000, updatedAt: Self.t0.addingTimeInterval(9)))
        #expect(heard.value == 3)
        live.replace(source: "spool", with: [LiveCall(uniqueid: "1732467600.1", company: "acme", startedAt: Self.t0.addingTimeInterval(2), durationMs: 5000, updatedAt: Self.t0)])
        #expect(heard.value == 3)  // no change, no news
        live.replace(source: "spool", with: [])
        #expect(live.current().map(\.uniqueid) == ["1732467600.1", "1732467600.2"] && live.current()[0].company == nil)
        live.remove(source: "ami", uniqueid: "1732467600.1")
        #expect(live.current().map(\.uniqueid) == ["1732467600.2"])
    }

    /// A file being written becomes a live call: fields from the spool name, duration from its size.
    @Test func spoolFilesBecomeCalls() throws {
        let naming = try SpoolNaming(pattern: "{company}/{agent}-{lead_number}-{uniqueid}.{ext}")
        let name = try #require(naming.parse("acme/1001-5511999990001-1732467600.7.wav"))
        let w = SpoolWatcher.Writing(path: "/spool/x", name: name, bytes: 44 + 16000 * 95, modified: Self.t0.addingTimeInterval(95), firstSeen: Self.t0.addingTimeInterval(1))
        let calls = SpoolLiveFeed.calls([w, SpoolWatcher.Writing(path: "/spool/y", name: nil, bytes: 1, modified: Self.t0, firstSeen: Self.t0)])
        #expect(calls == [LiveCall(uniqueid: "1732467600.7", company: "acme", agent: "1001", leadNumber: "5511999990001", startedAt: Self.t0, durationMs: 95_000, updatedAt: Self.t0.addingTimeInterval(95))])
        #expect(SpoolLiveFeed.startTime(uniqueid: "pbx1-1732467600.42") == Self.t0)
        #expect(SpoolLiveFeed.startTime(uniqueid: "callid-abc") == nil)
    }

    @Test func callsAreScopedLikeRecordings() async throws {
        let h = try await Harness()
        let live = LiveCalls()
        live.replace(source: "spool", with: [
            LiveCall(uniqueid: "1732467600.1", company: "42", agent: "1001", startedAt: Self.t0, durationMs: 1000, updatedAt: Self.t0),
            LiveCall(uniqueid: "1732467600.2", company: "7", startedAt: Self.t0, durationMs: 1000, updatedAt: Self.t0),
            LiveCall(uniqueid: "1732467600.3", startedAt: Self.t0, durationMs: 1000, updatedAt: Self.t0),
        ])
        let admin = try await h.token(.admin), viewer42 = try await h.token(.viewer, company: "42")
        try await h.test(limits: ConnectionLimits(maxConnections: 64), freeBytes: FileSystemSpace.free, live: live) { client in
            func ids(_ token: String?) async throws -> (HTTPResponse.Status, [String]) {
                let r = try await client.execute(uri: "/calls/live", method: .get, headers: token.map { h.bearer($0) } ?? [:])
                return (r.status, (r.json["calls"] as? [[String: Any]] ?? []).compactMap { $0["uniqueid"] as? String })
            }
            #expect(try await ids(admin) == (.ok, ["1732467600.1", "1732467600.2", "1732467600.3"]))
            #expect(try await ids(viewer42) == (.ok, ["1732467600.1"]))
            #expect(try await ids(nil).0 == .unauthorized)
            let r = try await client.execute(uri: "/calls/live", method: .get, headers: h.bearer(viewer42))
            let call = try #require((r.json["calls"] as? [[String: Any]])?.first)
            #expect(Set(call.keys) == ["uniqueid", "company", "agent", "lead_number", "started_at", "duration_ms", "updated_at", "paused"])
            #expect(call["started_at"] as? String == "2024-11-24T17:00:00.000Z" && call["lead_number"] is NSNull)
            // The stream needs Accept: text/event-stream.
            let plain = try await client.execute(uri: "/events", method: .get, headers: h.bearer(admin))
            #expect(plain.status == .notAcceptable && plain.errorCode == "not_acceptable")
        }
    }

    /// A stream opens with the calls, then tells of a new recording (its own company's only) and of
    /// a call that started, and beats.
    @Test func streamTellsOfRecordingsAndCalls() async throws {
        let h = try await Harness()
        let live = LiveCalls()
        let hub = EventHub(changes: h.catalog.changes, live: live)
        let viewer42 = try await h.token(.viewer, company: "42")
        try await h.test(limits: ConnectionLimits(maxConnections: 64), freeBytes: FileSystemSpace.free, live: live, eventHeartbeat: .milliseconds(200), eventHub: hub) { client in
            var headers = h.bearer(viewer42)
            headers[.accept] = "text/event-stream"
            async let stream = client.execute(uri: "/events", method: .get, headers: headers)
            #expect(await Self.eventually { hub.count == 1 })
            try h.add("speech.wav", as: "1732467600.7", company: "7")
            try h.add("speech.wav", as: "1732467600.8", company: "42")
            live.upsert(source: "ami", LiveCall(uniqueid: "1732467600.9", company: "42", startedAt: Self.t0, durationMs: 1500, updatedAt: Self.t0))
            live.upsert(source: "ami", LiveCall(uniqueid: "1732467600.10", company: "7", startedAt: Self.t0, durationMs: 1500, updatedAt: Self.t0))
            try await Task.sleep(for: .seconds(3))  // fifteen heartbeats' time (loose: the loaded suite stalls)
            hub.end(key: "token:tester")  // the harness's tokens' subject; what the stream was told is still written
            let r = try await stream
            #expect(r.status == .ok && r.headers[.contentType]?.hasPrefix("text/event-stream") == true)
            let text = r.text
            #expect(text.hasPrefix("retry: 3000\n\nevent: calls\ndata: {\"calls\":[]}\n\n"), "\(text.prefix(200))")
            #expect(text.contains("event: recording\ndata: {") && text.contains("\"uniqueid\":\"1732467600.8\""), "\(text)")
            #expect(!text.contains("1732467600.7") && !text.contains("1732467600.10"))
            #expect(text.contains("\"uniqueid\":\"1732467600.9\""))
            #expect(text.contains(": heartbeat\n\n"))
        }
    }

    /// A stream ends by itself when its token expires.
    @Test func streamEndsWhenTheTokenExpires() async throws {
        let h = try await Harness()
        try await h.test(limits: ConnectionLimits(maxConnections: 64), freeBytes: FileSystemSpace.free, eventHeartbeat: .milliseconds(200)) { client in
            // Minted just before the request; a stall of the loaded suite between the two can make
            // it expire first (a 401 here, not what is tested): then again, with a new token.
            for attempt in 1...3 {
                let soon = try await h.token(.admin, expires: 6)
                var headers = h.bearer(soon)
                headers[.accept] = "text/event-stream"
                let r = try await client.execute(uri: "/events", method: .get, headers: headers)
                if r.status == .unauthorized && attempt < 3 { continue }
                #expect(r.status == .ok && r.text.hasPrefix("retry: 3000\n\nevent: calls\n"), "\(r.text.prefix(200))")
                break
            }
        }
    }

    static func eventually(_ seconds: Double = 30, _ f: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if f() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return f()
    }

    @Test func streamsAreCapped() async throws {
        let hub = EventHub(changes: RecordingChanges(), live: LiveCalls(), maxStreams: 3, maxPerKey: 2)
        let a = try #require(hub.open(key: "a")), _ = try #require(hub.open(key: "a"))
        #expect(hub.open(key: "a") == nil && hub.refusal(key: "a")?.status == .tooManyRequests)
        _ = try #require(hub.open(key: "b"))
        #expect(hub.open(key: "c") == nil && hub.refusal(key: "c")?.status == .serviceUnavailable)
        hub.close(a.0)
        #expect(hub.open(key: "c") != nil)
        hub.end(key: "a")
        #expect(hub.count == 2)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
