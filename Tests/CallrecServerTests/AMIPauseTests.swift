import CallrecAMI
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Testing

@testable import CallrecServer

/// PCI pause and resume against `AMIPeer`, which replays the events Asterisk 22.10.1 sent during
/// a real call (`Fixtures/audio/asterisk-22/1795635615.61.*`) in real time, while the real recording of
/// that call is written into the spool the way MixMonitor writes it. Not a live Asterisk.
@Suite(.serialized) struct AMIPauseTests {
    static let id = "1795635615.61"
    static let channel = "Local/t6@caller-0000001e;2"
    static var log: String { Paths.root + "/Fixtures/audio/asterisk-22/1795635615.61.ami.log" }
    static var wav: String { Paths.root + "/Fixtures/audio/asterisk-22/1795635615.61.wav" }

    static func logger() -> Logger {
        var l = Logger(label: "ami-test")
        l.logLevel = .error
        return l
    }

    static func service(_ peer: AMIPeer, port: Int, catalog: Catalog, maxPause: TimeInterval = 300) -> AMIService {
        var options = AMIOptions()
        options.actionTimeout = 5
        options.minBackoff = 0.1
        options.maxBackoff = 0.5
        return AMIService.make(
            endpoint: AMIEndpoint(host: "127.0.0.1", port: port, username: peer.username, secret: peer.secret), options: options, catalog: catalog,
            maxPause: maxPause, logger: logger())
    }

    /// The application over `catalog` with AMI on, tested live (a real server on loopback).
    static func serve(_ h: Harness, catalog: Catalog, ami: AMIService, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var settings = try Settings(environment: [:])
        settings.port = 0
        settings.data = h.data
        let app = CallrecApplication.make(
            settings: settings, catalog: catalog, watcher: nil, auth: Authenticator(signer: h.signer, tokens: h.tokens),
            registry: PrometheusCollectorRegistry(), logger: logger(), limits: ConnectionLimits(maxConnections: 64), ami: ami)
        try await app.test(.live) { client in try await body(client) }
    }

    /// Writes the fixture's audio into the spool in real time from MixMonitorStart, as MixMonitor
    /// does (header with sizes 0, 20 ms frames appended), and closes it at the Hangup.
    final class Recorder: @unchecked Sendable {
        let writer: MixMonitorWriter
        let total: Int
        var task: Task<Void, Never>?
        init(path: String) throws {
            let pcm = try MixMonitorWriter.samples(ofWAV: AMIPauseTests.wav)
            total = pcm.count / 320
            writer = try MixMonitorWriter(path: path, pcm: pcm)
        }
        func start() {
            let begin = Date()
            task = Task {
                while !Task.isCancelled {
                    let due = min(total, Int(Date().timeIntervalSince(begin) / 0.02))
                    if due > writer.bytesWritten / 320 { try? writer.record(frames: due - writer.bytesWritten / 320) }
                    try? await Task.sleep(nanoseconds: 20_000_000)
                }
            }
        }
        func hangUp() async throws {
            task?.cancel()
            await task?.value
            if writer.bytesWritten / 320 < total { try writer.record(frames: total - writer.bytesWritten / 320) }
            try writer.close()
        }
    }

    /// Replays the fixture call: the recording starts at its MixMonitorStart and ends at its Hangup.
    static func replay(_ peer: AMIPeer, spool: String, speed: Double = 1) -> Task<Void, Error> {
        Task {
            let events = try AMIPeer.load(log)
            let recorder = try Recorder(path: spool + "/\(id).wav")
            try await peer.replay(events, speed: speed) { e in
                if e.name == "MixMonitorStart" && e["Uniqueid"] == id { recorder.start() }
                if e.name == "Hangup" && e["Uniqueid"] == id { try await recorder.hangUp() }
            }
        }
    }

    /// Seconds from the replay's start to the fixture's n-th MixMonitorMute (0: on, 1: off).
    static func muteOffset(_ n: Int) throws -> Double {
        let events = try AMIPeer.load(log)
        return events.filter { $0.name == "MixMonitorMute" }[n].recv - events[0].recv
    }

    static func sleep(until start: Date, plus seconds: Double) async throws {
        let wait = start.addingTimeInterval(seconds).timeIntervalSinceNow
        if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }

    static func waitLive(_ ami: AMIService, bridged: Bool = true) async throws {
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            if let c = ami.tracker.live(id), !bridged || c.answeredAt != nil { return }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        Issue.record("the call never became live")
    }

    static func ingest(_ h: Harness, spool: String, ami: AMIService) async throws -> [String: Any] {
        await ami.tracker.flush()
        #expect(h.ingestor.ingest(path: spool + "/\(id).wav") == .ingested(uniqueid: id, parts: 1))
        let row = try #require(try h.catalog.recording(id))
        return try JSONSerialization.jsonObject(with: JSONEncoder.callrec.encode(RecordingJSON(row))) as? [String: Any] ?? [:]
    }

    // MARK: tests

    @Test func pauseAndResumeOnTheFixtureCallMapOntoItsZeros() async throws {
        let h = try await Harness()
        let spool = h.dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try h.catalog.setMetadata(Self.id, Metadata(company: "acme"))
        let peer = AMIPeer()
        let port = try peer.start()
        defer { peer.stop() }
        let ami = Self.service(peer, port: port, catalog: h.catalog)
        let recorder = try await h.tokens.issue(Claims(subject: "agent-1001", expires: Date().addingTimeInterval(600), role: .recorder, company: "acme"))
        try await Self.serve(h, catalog: h.catalog, ami: ami) { client in
            #expect(await peer.waitForLogin())
            let start = Date()
            let replay = Self.replay(peer, spool: spool)
            try await Self.waitLive(ami)
            try await Self.sleep(until: start, plus: try Self.muteOffset(0))
            let paused = try await client.execute(uri: "/recordings/\(Self.id)/pause", method: .post, headers: h.bearer(recorder))
            #expect(paused.status == .ok, "\(paused.text)")
            #expect(paused.json["paused"] as? Bool == true)
            #expect((paused.json["pause"] as? [String: Any])?["by"] as? String == "agent-1001")
            // The action Asterisk got, exactly.
            let mute = await peer.waitForAction { $0["Action"] == "MixMonitorMute" && $0["State"] == "1" }
            #expect(mute?["Channel"] == Self.channel && mute?["Direction"] == "both" && mute?["ActionID"]?.isEmpty == false)
            #expect(ami.tracker.live(Self.id)?.paused == true)
            // The live list has it from AMI (no spool watcher here), paused, within the feed's second.
            let admin = try await h.token(.admin)
            let listed = try await eventuallyAsync(2.5) { () async throws -> Bool in
                let answer = try await client.execute(uri: "/calls/live", method: .get, headers: h.bearer(admin))
                let calls = answer.json["calls"] as? [[String: Any]] ?? []
                return calls.contains { $0["uniqueid"] as? String == Self.id && $0["paused"] as? Bool == true }
            }
            #expect(listed, "GET /calls/live shows the AMI call as paused")
            try await Self.sleep(until: start, plus: try Self.muteOffset(1))
            let resumed = try await client.execute(uri: "/recordings/\(Self.id)/resume", method: .post, headers: h.bearer(recorder))
            #expect(resumed.status == .ok, "\(resumed.text)")
            #expect(resumed.json["paused"] as? Bool == false)
            try await replay.value
        }
        let json = try await Self.ingest(h, spool: spool, ami: ami)
        let pauses = try #require(json["pauses"] as? [[String: Any]])
        #expect(pauses.count == 1)
        // The fixture's zero run: samples 32,000–56,000, 4,000–7,000 ms.
        let p = try #require(pauses.first)
        #expect(abs((p["start_ms"] as? Int ?? 0) - 4000) <= 20, "\(p)")
        #expect(abs((p["end_ms"] as? Int ?? 0) - 7000) <= 20, "\(p)")
        #expect(p["by"] as? String == "agent-1001" && p["ended_by"] as? String == "agent-1001")
        #expect(p["zeros"] as? Bool == true)
        #expect(p["requested_at"] is String)
        #expect(json["answered_at"] as? String == AMIFacts.iso(1795635615.883933))
        #expect(json["ended_at"] as? String == AMIFacts.iso(1795635627.879820))
        #expect(json["started_at"] as? String == "2026-11-25T19:40:15.880Z")
        #expect(json["hangup_cause"] as? Int == 16)
        #expect((json["gaps"] as? [Any])?.isEmpty == true)
    }

    @Test func aPauseWithNoZerosInTheAudioIsFlagged() async throws {
        // The same call, paused 1 s early by the clock of the replay (the peer makes the event):
        // the first second of the pause is tone, not zeros.
        let h = try await Harness()
        let spool = h.dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let peer = AMIPeer(holdMutes: false)
        let port = try peer.start()
        defer { peer.stop() }
        let ami = Self.service(peer, port: port, catalog: h.catalog)
        let admin = try await h.token(.admin)
        try await Self.serve(h, catalog: h.catalog, ami: ami) { client in
            #expect(await peer.waitForLogin())
            let start = Date()
            let replay = Self.replay(peer, spool: spool, speed: 1)
            try await Self.waitLive(ami)
            try await Self.sleep(until: start, plus: 2)
            #expect(try await client.execute(uri: "/recordings/\(Self.id)/pause", method: .post, headers: h.bearer(admin)).status == .ok)
            try await Self.sleep(until: start, plus: 6)
            #expect(try await client.execute(uri: "/recordings/\(Self.id)/resume", method: .post, headers: h.bearer(admin)).status == .ok)
            try await replay.value
        }
        let json = try await Self.ingest(h, spool: spool, ami: ami)
        let p = try #require((json["pauses"] as? [[String: Any]])?.first)
        #expect(p["zeros"] as? Bool == false, "\(p)")
    }

    @Test func unavailableNotLiveAndRoles() async throws {
        let h = try await Harness()
        let spool = h.dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try h.catalog.setMetadata(Self.id, Metadata(company: "acme"))
        let peer = AMIPeer()
        let port = try peer.start()
        defer { peer.stop() }
        let ami = Self.service(peer, port: port, catalog: h.catalog)
        let recorder = try await h.token(.recorder, company: "acme")
        let other = try await h.token(.recorder, company: "beta")
        let viewer = try await h.token(.viewer, company: "acme")
        try await Self.serve(h, catalog: h.catalog, ami: ami) { client in
            #expect(await peer.waitForLogin())
            // Replay up to the bridge, fast: the call is live and stays live.
            let events = try AMIPeer.load(Self.log)
            let upTo = try #require(events.firstIndex { $0.name == "BridgeEnter" && $0["Uniqueid"] == Self.id })
            try await peer.replay(Array(events[...upTo]), speed: 100)
            try await Self.waitLive(ami)
            let path = "/recordings/\(Self.id)/pause"
            #expect(try await client.execute(uri: "/recordings/1795635615.99/pause", method: .post, headers: h.bearer(recorder)).status == .notFound)
            #expect(try await client.execute(uri: path, method: .post, headers: h.bearer(other)).errorCode == "not_found")
            #expect(try await client.execute(uri: path, method: .post, headers: h.bearer(viewer)).status == .forbidden)
            #expect(try await client.execute(uri: path, method: .post).status == .unauthorized)
            // A recorder token holds for one company only.
            let unscoped = try await h.tokens.issue(Claims(subject: "crm", expires: Date().addingTimeInterval(600), role: .recorder, company: nil))
            #expect(try await client.execute(uri: path, method: .post, headers: h.bearer(unscoped)).errorCode == "missing_claim")
            #expect(try await client.execute(uri: path, method: .get, headers: h.bearer(recorder)).status == .methodNotAllowed)
            // A recorder reads nothing.
            #expect(try await client.execute(uri: "/recordings", method: .get, headers: h.bearer(recorder)).status == .forbidden)
            // Asterisk does not confirm: 503, nothing stored.
            peer.answerMutes = false
            let unconfirmed = try await client.execute(uri: path, method: .post, headers: h.bearer(recorder))
            #expect(unconfirmed.status == .serviceUnavailable)
            #expect(unconfirmed.errorCode == "ami_unavailable")
            #expect(try h.catalog.pauses(of: Self.id).isEmpty)
            #expect(ami.tracker.live(Self.id)?.paused == false)
            // Asterisk is down: 503 at once, nothing stored.
            peer.answerMutes = true
            peer.stop()
            let deadline = Date().addingTimeInterval(90)
            while ami.client.isConnected && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
            let down = try await client.execute(uri: path, method: .post, headers: h.bearer(recorder))
            #expect(down.status == .serviceUnavailable)
            #expect(try down.jsonObject()["error"] as? [String: String] != nil)
            #expect(down.errorCode == "ami_unavailable")
            #expect(try h.catalog.pauses(of: Self.id).isEmpty)
        }
    }

    @Test func withoutAMIPauseAnswers503() async throws {
        let h = try await Harness()
        let admin = try await h.token(.admin)
        try await h.test { client in
            let r = try await client.execute(uri: "/recordings/1795635615.61/pause", method: .post, headers: h.bearer(admin))
            #expect(r.status == .serviceUnavailable)
            #expect(r.errorCode == "ami_unavailable")
        }
    }

    @Test func aPauseLeftOpenIsResumedAfterMaxPause() async throws {
        let h = try await Harness()
        let peer = AMIPeer(holdMutes: false)
        let port = try peer.start()
        defer { peer.stop() }
        let ami = Self.service(peer, port: port, catalog: h.catalog, maxPause: 1)
        let admin = try await h.token(.admin)
        try await Self.serve(h, catalog: h.catalog, ami: ami) { client in
            #expect(await peer.waitForLogin())
            let events = try AMIPeer.load(Self.log)
            let upTo = try #require(events.firstIndex { $0.name == "BridgeEnter" && $0["Uniqueid"] == Self.id })
            try await peer.replay(Array(events[...upTo]), speed: 100)
            try await Self.waitLive(ami)
            #expect(try await client.execute(uri: "/recordings/\(Self.id)/pause", method: .post, headers: h.bearer(admin)).status == .ok)
            let unmute = await peer.waitForAction { $0["Action"] == "MixMonitorMute" && $0["State"] == "0" }
            #expect(unmute?["Channel"] == Self.channel)
            await ami.tracker.flush()
            var pauses: [PauseRow] = []
            let deadline = Date().addingTimeInterval(90)
            repeat {
                pauses = try await h.catalog.pausesAsync(of: Self.id)
                if pauses.first?.endBy == "max_pause" { break }
                try await Task.sleep(nanoseconds: 20_000_000)
            } while Date() < deadline
            #expect(pauses.count == 1, "\(pauses)")
            #expect(pauses.first?.endBy == "max_pause")
            #expect(pauses.first?.by == "tester")
            #expect(ami.tracker.live(Self.id)?.paused == false)
        }
    }

    @Test func connectionKilledAndCallrecRestartedMidCallLoseNoPauseAndDuplicateNone() async throws {
        let h = try await Harness()
        let spool = h.dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let peer = AMIPeer()
        let port = try peer.start()
        defer { peer.stop() }
        let admin = try await h.token(.admin)
        let first = Self.service(peer, port: port, catalog: h.catalog)
        final class Call: @unchecked Sendable {
            var start = Date()
            var replay: Task<Void, Error>?
        }
        let call = Call()
        try await Self.serve(h, catalog: h.catalog, ami: first) { client in
            #expect(await peer.waitForLogin())
            call.start = Date()
            call.replay = Self.replay(peer, spool: spool)
            let start = call.start
            try await Self.waitLive(first)
            try await Self.sleep(until: start, plus: try Self.muteOffset(0))
            #expect(try await client.execute(uri: "/recordings/\(Self.id)/pause", method: .post, headers: h.bearer(admin)).status == .ok)
            // The link breaks; callrec logs in again and the call is still there (CoreShowChannels).
            peer.dropConnections()
            #expect(await peer.waitForLogin(count: 2))
            try await Self.waitLive(first)
            // The CRM, unsure, asks again: the same pause, not a second one.
            let again = try await client.execute(uri: "/recordings/\(Self.id)/pause", method: .post, headers: h.bearer(admin))
            #expect(again.status == .ok, "\(again.text)")
            #expect(try await h.catalog.pausesAsync(of: Self.id).count == 1)
        }
        // callrec restarts mid-call: a new catalog handle on the same data, a new AMI connection.
        let catalog = try Catalog(data: h.data)
        let second = Self.service(peer, port: port, catalog: catalog)
        try await Self.serve(h, catalog: catalog, ami: second) { client in
            let start = call.start
            #expect(await peer.waitForLogin(count: 3))
            #expect(second.tracker.live(Self.id)?.paused == true)
            let again = try await client.execute(uri: "/recordings/\(Self.id)/pause", method: .post, headers: h.bearer(admin))
            #expect(again.status == .ok)
            try await Self.sleep(until: start, plus: try Self.muteOffset(1))
            #expect(try await client.execute(uri: "/recordings/\(Self.id)/resume", method: .post, headers: h.bearer(admin)).status == .ok)
            try await call.replay?.value
            await second.tracker.flush()
        }
        let json = try await Self.ingest(h, spool: spool, ami: second)
        let pauses = try #require(json["pauses"] as? [[String: Any]])
        #expect(pauses.count == 1, "\(pauses)")
        #expect(abs((pauses.first?["start_ms"] as? Int ?? 0) - 4000) <= 20, "\(pauses)")
        #expect(abs((pauses.first?["end_ms"] as? Int ?? 0) - 7000) <= 20, "\(pauses)")
        #expect(pauses.first?["zeros"] as? Bool == true)
        // Each pause or resume was one MixMonitorMute with State 1 or 0.
        #expect(peer.actions.filter { $0["Action"] == "MixMonitorMute" && $0["State"] == "0" }.count == 1)
    }
}
