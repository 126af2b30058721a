import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

@testable import CallrecIngest

/// A spool, a data directory and the watcher over them, recording every outcome with its time.
private final class PromisedSpool: @unchecked Sendable {
    let dir = TempDir()
    let spool: String
    let data: DataDirectory
    let catalog: Catalog
    let ingestor: Ingestor
    private let lock = NSLock()
    private var _outcomes: [(at: Date, path: String, outcome: IngestOutcome)] = []

    init(now: @escaping @Sendable () -> Date = Date.init) throws {
        spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        data = DataDirectory(dir.file("data"))
        catalog = try Catalog(data: data)
        var logger = Logger(label: "promised")
        logger.logLevel = .critical
        ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: spool, logger: logger, now: now)
    }

    var outcomes: [(at: Date, path: String, outcome: IngestOutcome)] { lock.withLock { _outcomes } }

    /// A watcher that takes files only through inotify events (scans find nothing old enough).
    func watcher(settle: TimeInterval = WatcherOptions().settle, backoff: TimeInterval = 0.3) -> SpoolWatcher {
        var o = WatcherOptions()
        o.settle = settle
        o.scanAge = 3600
        o.rescanInterval = 3600
        o.workers = 2
        o.backoff = backoff
        var logger = Logger(label: "promised")
        logger.logLevel = .critical
        let w = SpoolWatcher(spool: spool, ingestor: ingestor, options: o, logger: logger)
        w.onOutcome = { [self] path, outcome in lock.withLock { _outcomes.append((Date(), path, outcome)) } }
        return w
    }

    /// A closed 8 kHz MixMonitor WAV of `frames` 20 ms frames of speech, written now.
    static func wav(frames: Int) throws -> Data {
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        var audio: [UInt8] = []
        while audio.count < frames * 320 { audio += pcm }
        return MixMonitorWriter.header(dataBytes: frames * 320, sampleRate: 8000) + Data(audio.prefix(frames * 320))
    }
}

struct PromisedSpoolTests {
    /// A finished recording `rename(2)`d into the spool (what a tool that writes elsewhere and
    /// moves in does) is taken: IN_MOVED_TO counts as a close. No scan can find it here (scan age
    /// an hour). Checked to fail: with IN_MOVED_TO handled like IN_CREATE (as still being written).
    @Test func aFileRenamedIntoTheSpoolIsTaken() async throws {
        let b = try PromisedSpool()
        let w = b.watcher(settle: 0.2)
        try w.start()
        defer { w.stop() }
        let outside = b.dir.file("elsewhere.wav")
        try PromisedSpool.wav(frames: 150).write(to: URL(fileURLWithPath: outside))
        let inside = b.spool + "/1732467600.31.wav"
        #expect(rename(outside, inside) == 0)
        #expect(await eventuallyAsync(20) { (try? b.catalog.recording("1732467600.31")) != nil }, "\(b.outcomes)")
        #expect(try b.catalog.recording("1732467600.31")?.samples == 150 * 160)
        #expect(!FileManager.default.fileExists(atPath: inside))
    }

    /// A file closed, then changed again (appended to, closed) twice within the settle time, is
    /// taken once, whole, only after it has stayed unchanged for the settle time (the default,
    /// 2 s). Checked to fail: with the settle time ignored (taken at the first close).
    @Test func aFileChangedWithinTheSettleTimeIsTakenOnlyOnceItStaysUnchanged() async throws {
        let b = try PromisedSpool()
        let settle = WatcherOptions().settle
        #expect(settle == 2)
        let w = b.watcher()
        try w.start()
        defer { w.stop() }
        let path = b.spool + "/1732467600.32.wav"
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        let writer = try MixMonitorWriter(path: path, pcm: pcm)
        try writer.record(frames: 100)
        try writer.close()
        var frames = 100
        var lastChange = Date()
        for _ in 0..<2 {
            usleep(400_000)  // well inside the settle time (a short blocking wait, to keep it so)
            guard let h = FileHandle(forUpdatingAtPath: path) else {
                // Taken: wrong unless this machine was so busy that the file did stay unchanged
                // for the whole settle time.
                let quiet = Date().timeIntervalSince(lastChange)
                if quiet < settle { Issue.record("the file was taken \(quiet) s after a change: \(b.outcomes)") }
                return
            }
            try h.seekToEnd()
            try h.write(contentsOf: Array(pcm.prefix(100 * 320)))
            frames += 100
            try h.seek(toOffset: 0)
            try h.write(contentsOf: MixMonitorWriter.header(dataBytes: frames * 320, sampleRate: 8000))
            try h.close()
            lastChange = Date()
        }
        #expect(await eventuallyAsync(20) { !b.outcomes.isEmpty })
        let outcomes = b.outcomes
        #expect(outcomes.count == 1, "\(outcomes)")
        #expect(outcomes.first?.outcome == .ingested(uniqueid: "1732467600.32", parts: 1))
        if let taken = outcomes.first?.at { #expect(taken.timeIntervalSince(lastChange) >= settle - 0.1, "taken too early") }
        let row = try #require(try b.catalog.recording("1732467600.32"))
        #expect(row.samples == frames * 160, "the whole file, as last written")
    }

    /// A transient failure (the data directory's audio folder not writable) keeps the source in
    /// the spool — not quarantined — and the watcher tries again with back-off; once the folder
    /// is writable again the file is ingested. Checked to fail: with every MediaError treated as
    /// permanent (the file went to quarantine on the first try).
    @Test func aTransientFailureKeepsTheSourceAndIsRetriedUntilItSucceeds() async throws {
        let b = try PromisedSpool()
        let audio = b.data.audioRoot
        try FileManager.default.createDirectory(atPath: audio, withIntermediateDirectories: true)
        // root writes anywhere, whatever the mode: there the folder is made immutable instead.
        let asRoot = getuid() == 0
        func writable(_ yes: Bool) throws {
            if asRoot {
                #expect(try run("chattr", [yes ? "-i" : "+i", audio]).status == 0)
            } else {
                chmod(audio, yes ? 0o750 : 0o550)
            }
        }
        try writable(false)
        var restored = false
        defer { if !restored { try? writable(true) } }
        let w = b.watcher(settle: 0.2, backoff: 0.3)
        try w.start()
        defer { w.stop() }
        let path = b.spool + "/1732467600.33.wav"
        try PromisedSpool.wav(frames: 120).write(to: URL(fileURLWithPath: path))

        #expect(await eventuallyAsync(20) { b.outcomes.count >= 2 }, "\(b.outcomes)")  // a first try and a retry
        for o in b.outcomes {
            guard case .deferred = o.outcome else {
                Issue.record("not deferred: \(o.outcome)")
                return
            }
        }
        #expect(FileManager.default.fileExists(atPath: path), "the source must stay while it cannot be ingested")
        #expect(try await b.catalog.count() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: b.data.quarantineRoot).isEmpty)

        try writable(true)
        restored = true
        #expect(await eventuallyAsync(30) { b.outcomes.last?.outcome == .ingested(uniqueid: "1732467600.33", parts: 1) }, "\(b.outcomes)")
        #expect(b.outcomes.last?.outcome == .ingested(uniqueid: "1732467600.33", parts: 1))
        #expect(try b.catalog.recording("1732467600.33")?.samples == 120 * 160)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// A file that is not audio goes to `quarantine/YYYY-MM-DD/` (the UTC day it was quarantined),
    /// unchanged, with `NAME.reason.txt` beside it holding the reason the catalog has; a second
    /// one of the same name does not replace it (`2-NAME`). Checked to fail: with the expected
    /// folder the day before.
    @Test func quarantineGoesUnderADatedFolderWithAReasonFile() async throws {
        let now = Date(timeIntervalSince1970: 1_772_926_200)  // 2026-03-07T23:30:00Z
        let b = try PromisedSpool(now: { now })
        let name = "1732467600.34.wav"
        let original = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("bad-text.wav")))
        var reasons: [String] = []
        for _ in 0..<2 {
            try original.write(to: URL(fileURLWithPath: b.spool + "/" + name))
            guard case .quarantined(let reason) = b.ingestor.ingest(path: b.spool + "/" + name) else {
                Issue.record("not quarantined")
                return
            }
            reasons.append(reason)
            #expect(!FileManager.default.fileExists(atPath: b.spool + "/" + name))
        }
        let day = b.data.quarantineRoot + "/2026-03-07"
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: b.data.quarantineRoot)) == ["2026-03-07"])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: day)) == [name, name + ".reason.txt", "2-" + name, "2-" + name + ".reason.txt"])
        for (i, file) in [name, "2-" + name].enumerated() {
            #expect(try Data(contentsOf: URL(fileURLWithPath: day + "/" + file)) == original)
            let reason = try String(contentsOfFile: day + "/" + file + ".reason.txt", encoding: .utf8)
            #expect(reason == reasons[i] + "\n" && !reasons[i].isEmpty, "\(reason)")
        }
        let entries = try await b.catalog.quarantineEntries()
        #expect(Set(entries.map(\.path)) == ["quarantine/2026-03-07/\(name)", "quarantine/2026-03-07/2-\(name)"])
        #expect(entries.allSatisfy { $0.reason == reasons[0] && $0.sourceName == name })
    }
}
