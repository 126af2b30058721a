import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

@testable import CallrecIngest

/// MixMonitor `r()`/`t()` legs: one stereo recording per uniqueid, the mix handled by its rule,
/// nothing ever lost.
@Suite(.offThePool, .serialized)
struct LegsTests {
    static let real = "asterisk-22/1795635600.57"

    /// The 16-bit samples of channel `c` of the scripted stereo call (all of it when nil: the
    /// saturated sum, as MixMonitor mixes).
    static func cut(_ c: Int?) throws -> [Int16] {
        let bytes = try MixMonitorWriter.samples(ofWAV: Paths.fixture("stereo/call.wav"))
        let pcm = stride(from: 0, to: bytes.count - 1, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
        return stride(from: 0, to: pcm.count - 1, by: 2).map { i in
            c.map { pcm[i + $0] } ?? Int16(clamping: Int(pcm[i]) + Int(pcm[i + 1]))
        }
    }

    static func writeWAV(_ samples: [Int16], to path: String) throws {
        try (MixMonitorWriter.header(dataBytes: samples.count * 2, sampleRate: 8000) + samples.withUnsafeBytes { Data($0) })
            .write(to: URL(fileURLWithPath: path))
    }

    func watcher(_ b: Bench, legWait: TimeInterval) -> SpoolWatcher {
        var o = WatcherOptions()
        o.settle = 0.2
        o.scanAge = 0.5
        o.rescanInterval = 0.3
        o.workers = 2
        o.backoff = 0.2
        o.legWait = legWait
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return SpoolWatcher(spool: b.spool, ingestor: b.ingestor, options: o, logger: logger)
    }

    /// The real Asterisk files (mix, -r, -t): one stereo recording, channel 0 the r leg (440 Hz),
    /// the mix verified equal to the legs' sum, kept as a hash among the parts, and removed.
    @Test func legsAndMixBecomeOneStereoRecording() throws {
        let b = try Bench()
        let mix = try b.drop(Self.real + ".wav", as: "1795635600.57.wav")
        let r = try b.drop(Self.real + "-r.wav", as: "1795635600.57-r.wav")
        let t = try b.drop(Self.real + "-t.wav", as: "1795635600.57-t.wav")
        #expect(b.ingestor.ingest(call: [mix, r, t]) == .ingested(uniqueid: "1795635600.57", parts: 3))
        #expect(!b.exists(mix) && !b.exists(r) && !b.exists(t))
        let row = try #require(try b.catalog.recording("1795635600.57"))
        #expect(row.channels == 2 && row.samples == 95840 && row.parts == 3)
        #expect(row.loneLeg == nil)
        let parts = try b.catalog.parts(of: "1795635600.57")
        #expect(parts.map(\.sha256) == [
            try Transcoder.sha256(of: Paths.fixture(Self.real + "-r.wav")), try Transcoder.sha256(of: Paths.fixture(Self.real + "-t.wav")),
            try Transcoder.sha256(of: Paths.fixture(Self.real + ".wav")),
        ])
        let sp = try #require(row.speakerAnalysis)
        #expect(sp.speakers.map(\.role) == [.agent, .customer])
        #expect(sp.speakers[0].talkMs > 0 && sp.speakers[1].talkMs > 0)

        // Channel order, by frequency: r (read from the recorded channel, 440 Hz) is left.
        let decoded = try opusfileDecode(b.data.absolute(row.opusPath))
        #expect(decoded.channels == 2 && decoded.total == 95840 * 6)
        func power(_ ch: Int, _ f: Double) -> Double {
            let x = stride(from: 48000 * 2 + ch, to: 96000 * 2, by: 2).map { Double(decoded.pcm[$0]) }
            let c = 2 * cos(2 * Double.pi * f / 48000)
            var s1 = 0.0, s2 = 0.0
            for v in x { (s1, s2) = (v + c * s1 - s2, s1) }
            return s1 * s1 + s2 * s2 - c * s1 * s2
        }
        #expect(power(0, 440) > 100 * power(0, 1000))
        #expect(power(1, 1000) > 100 * power(1, 440))

        // The mix again (a copy from a backup): recognised by its hash, removed, nothing appended.
        let again = try b.drop(Self.real + ".wav", as: "1795635600.57.wav")
        #expect(b.ingestor.ingest(path: again) == .duplicate(uniqueid: "1795635600.57"))
        #expect(try b.catalog.recording("1795635600.57")?.parts == 3)
    }

    /// A mix that is not the sum of its legs (one sample off by 1000) is kept, in quarantine with
    /// the reason; the legs are stored in stereo.
    @Test func mixThatDiffersIsQuarantined() throws {
        let b = try Bench()
        var mixed = try Self.cut(nil)
        mixed[12345] = mixed[12345] &+ 1000
        try Self.writeWAV(mixed, to: b.spool + "/1795635700.2.wav")
        try Self.writeWAV(try Self.cut(0), to: b.spool + "/1795635700.2-r.wav")
        try Self.writeWAV(try Self.cut(1), to: b.spool + "/1795635700.2-t.wav")
        let outcome = b.ingestor.ingest(call: ["/1795635700.2.wav", "/1795635700.2-r.wav", "/1795635700.2-t.wav"].map { b.spool + $0 })
        #expect(outcome == .ingested(uniqueid: "1795635700.2", parts: 2))
        let q = try b.catalog.quarantined()
        #expect(q.count == 1)
        #expect(q.first?.reason.contains("not the sum of its r()/t() legs (sample 12345") == true, "\(q)")
        #expect(FileManager.default.fileExists(atPath: b.data.root + "/" + (q.first?.path ?? "")))
        let row = try #require(try b.catalog.recording("1795635700.2"))
        #expect(row.channels == 2 && row.samples == 96000)
        // The figures of the scripted call, as the media tests check them.
        #expect(abs((row.overtalkMs ?? 0) - 1800) <= 20)
        #expect(abs((row.deadAirMs ?? 0) - 2000) <= 20)
    }

    /// A leg whose partner never comes: stored alone, mono, flagged; the partner coming after all
    /// is kept in quarantine with the reason, never appended.
    @Test func loneLegIsKeptMonoAndFlagged() throws {
        let b = try Bench()
        let r = try b.drop(Self.real + "-r.wav", as: "1795635600.57-r.wav")
        #expect(b.ingestor.ingest(call: [r]) == .ingested(uniqueid: "1795635600.57", parts: 1))
        let row = try #require(try b.catalog.recording("1795635600.57"))
        #expect(row.channels == 1 && row.loneLeg == "read" && row.speakers == nil)
        let json = String(decoding: try JSONEncoder.callrec.encode(RecordingJSON(row)), as: UTF8.self)
        #expect(json.contains(#""lone_leg":"read""#) && json.contains(#""speakers":null"#))
        let t = try b.drop(Self.real + "-t.wav", as: "1795635600.57-t.wav")
        guard case .quarantined(let reason) = b.ingestor.ingest(path: t) else { Issue.record("not quarantined"); return }
        #expect(reason.contains("arrived after the call was stored"))
        #expect(try b.catalog.recording("1795635600.57")?.samples == 95840)
    }

    /// Legs arriving apart: the first waits (well past the settle time) for the second; then
    /// both make one stereo recording.
    @Test func watcherWaitsForTheOtherLeg() throws {
        let b = try Bench()
        let w = watcher(b, legWait: 60)
        try w.start()
        defer { w.stop() }
        try b.drop(Self.real + "-r.wav", as: "1795635600.57-r.wav")
        Thread.sleep(forTimeInterval: 2)  // 10× the settle time, 4× the scan age
        #expect(try b.catalog.count() == 0)
        #expect(b.exists(b.spool + "/1795635600.57-r.wav"))
        try b.drop(Self.real + "-t.wav", as: "1795635600.57-t.wav")
        #expect(try eventually { try b.catalog.recording("1795635600.57") != nil })
        let row = try #require(try b.catalog.recording("1795635600.57"))
        #expect(row.channels == 2 && row.parts == 2 && row.loneLeg == nil)
    }

    /// The watcher stopped (a restart) between the legs: the first leg stays in the spool, and the
    /// next watcher pairs it with the second.
    @Test func restartBetweenLegs() throws {
        let b = try Bench()
        var w = watcher(b, legWait: 60)
        try w.start()
        try b.drop(Self.real + "-t.wav", as: "1795635600.57-t.wav")
        Thread.sleep(forTimeInterval: 1)
        w.stop()
        #expect(try b.catalog.count() == 0)
        w = watcher(b, legWait: 60)
        try w.start()
        defer { w.stop() }
        Thread.sleep(forTimeInterval: 1)
        #expect(try b.catalog.count() == 0)
        try b.drop(Self.real + "-r.wav", as: "1795635600.57-r.wav")
        #expect(try eventually { try b.catalog.recording("1795635600.57") != nil })
        #expect(try b.catalog.recording("1795635600.57")?.channels == 2)
    }

    /// The partner never arrives: after the wait (from the file's modification time, so a restart
    /// does not reset it) the leg is stored mono and flagged.
    @Test func watcherStoresALoneLegAfterTheWait() throws {
        let b = try Bench()
        let w = watcher(b, legWait: 1.5)
        try w.start()
        defer { w.stop() }
        let r = try b.drop(Self.real + "-r.wav", as: "1795635600.57-r.wav")
        let dropped = Date()
        #expect(try eventually { try b.catalog.recording("1795635600.57") != nil })
        #expect(Date().timeIntervalSince(dropped) >= 1.4)
        #expect(!b.exists(r))
        #expect(try b.catalog.recording("1795635600.57")?.loneLeg == "read")
    }

    /// `reindex` (recovery from the audio files alone) rebuilds a stereo recording's figures, roles
    /// included (from the OpusTags), and both legs' hashes as its parts.
    @Test func reindexRebuildsStereoFigures() throws {
        let b = try Bench()
        try Self.writeWAV(try Self.cut(0), to: b.spool + "/1795635700.3-r.wav")
        try Self.writeWAV(try Self.cut(1), to: b.spool + "/1795635700.3-t.wav")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let customerFirst = Ingestor(
            catalog: b.catalog, transcoder: Transcoder(recordedRole: .customer), naming: try SpoolNaming(), spoolRoot: b.spool, logger: logger)
        #expect(customerFirst.ingest(call: [b.spool + "/1795635700.3-r.wav", b.spool + "/1795635700.3-t.wav"]) == .ingested(uniqueid: "1795635700.3", parts: 2))
        let before = try #require(try b.catalog.recording("1795635700.3"))
        try b.catalog.pool.write { try $0.execute(sql: "DELETE FROM recording") }
        #expect(try b.catalog.recording("1795635700.3") == nil)
        let report = b.ingestor.recover(pendingUniqueids: [])  // an ingestor with the default role: the file's tag wins
        #expect(report.adoptedFiles == 1)
        let after = try #require(try b.catalog.recording("1795635700.3"))
        #expect(after.channels == 2 && after.parts == 2)
        let sp = try #require(after.speakerAnalysis), was = try #require(before.speakerAnalysis)
        #expect(sp.speakers.map(\.role) == [.customer, .agent])
        // Measured again on the decoded audio: the same within a window or two.
        #expect(abs(sp.overtalkMs - was.overtalkMs) <= 40 && abs(sp.deadAirMs - was.deadAirMs) <= 40)
        #expect(abs(sp.speakers[0].talkMs - was.speakers[0].talkMs) <= 40)
    }
}
