import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

@testable import CallrecIngest

/// The watcher on a real spool, with files written the way Asterisk writes them.
@Suite(.offThePool, .serialized)
struct SpoolWatcherTests {
    func watcher(_ b: Bench, settle: TimeInterval = 0.3, scanAge: TimeInterval = 1) -> SpoolWatcher {
        var o = WatcherOptions()
        o.settle = settle
        o.scanAge = scanAge
        o.rescanInterval = 0.5
        o.workers = 2
        o.backoff = 0.2
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return SpoolWatcher(spool: b.spool, ingestor: b.ingestor, options: o, logger: logger)
    }

    /// Nothing is taken while MixMonitor is still writing, even through a long pause in the
    /// middle of the call; everything is taken, in full, after it closes the file.
    @Test func waitsForTheWriterToFinish() throws {
        let b = try Bench()
        let w = watcher(b)
        try w.start()
        defer { w.stop() }
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        let path = b.spool + "/1732467600.42.wav"
        let writer = try MixMonitorWriter(path: path, pcm: pcm)
        try writer.record(frames: 100, interval: 0.002)
        Thread.sleep(forTimeInterval: 1.5)  // a hold with nothing written: 5× the settle time
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try b.catalog.count() == 0)
        try writer.record(frames: 150, interval: 0.002)
        // Writing again, then a second pause, still open: the watcher has had 5× the settle time
        // to act on the new writes, and must still wait for the close.
        Thread.sleep(forTimeInterval: 1.5)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try b.catalog.count() == 0)
        try writer.close()
        #expect(try eventually { try b.catalog.recording("1732467600.42") != nil })
        #expect(try b.catalog.recording("1732467600.42")?.samples == 250 * 160)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// A file being written is a call being recorded (`writing()`, for `/calls/live`), growing;
    /// once closed it is not, and it is ingested.
    @Test func filesBeingWrittenAreListed() throws {
        let b = try Bench()
        let w = watcher(b)
        try w.start()
        defer { w.stop() }
        #expect(w.writing().isEmpty)
        let path = b.spool + "/1732467600.44.wav"
        let writer = try MixMonitorWriter(path: path, pcm: try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav")))
        try writer.record(frames: 50, interval: 0.002)
        #expect(eventually { w.writing().map(\.name?.uniqueid) == ["1732467600.44"] })
        let first = try #require(w.writing().first)
        try writer.record(frames: 50, interval: 0.002)
        #expect(eventually { (w.writing().first?.bytes ?? 0) > first.bytes })
        #expect(w.writing().first?.path == path)
        try writer.close()
        #expect(eventually { w.writing().isEmpty })
        #expect(try eventually { try b.catalog.recording("1732467600.44") != nil })
    }

    /// Asterisk killed mid-call: sizes 0 in the header, every frame on disk, all of it ingested.
    @Test func crashedWriterIsRecoveredInFull() throws {
        let b = try Bench()
        let w = watcher(b)
        try w.start()
        defer { w.stop() }
        let writer = try MixMonitorWriter(path: b.spool + "/1732467600.43.wav", pcm: try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav")))
        try writer.record(frames: 321)
        try writer.abandon()
        #expect(try eventually { try b.catalog.recording("1732467600.43") != nil })
        #expect(try b.catalog.recording("1732467600.43")?.samples == 321 * 160)
    }

    /// FreePBX writes into YYYY/MM/DD folders created as the days come.
    @Test func newSubfoldersAreWatched() throws {
        let b = try Bench()
        let w = watcher(b, scanAge: 3600)  // only inotify can find it in time
        try w.start()
        defer { w.stop() }
        let dir = b.spool + "/2026/11/25"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let writer = try MixMonitorWriter(path: dir + "/out-5511999990000-1001-20261125-093000-1764063000.5.wav", pcm: try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav")))
        try writer.record(frames: 100, interval: 0.01)  // a call lasts: the folder's watch is in place before it ends
        try writer.close()
        #expect(try eventually { try b.catalog.recording("1764063000.5") != nil })
        #expect(try b.catalog.recording("1764063000.5")?.leadNumber == "5511999990000")
    }

    /// Symlinks, hidden and temporary files, and other files are never touched.
    @Test func ignoresWhatIsNotARecording() throws {
        let b = try Bench()
        let w = watcher(b, scanAge: 0.2)
        try w.start()
        defer { w.stop() }
        let link = b.spool + "/1732467600.50.wav"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: Paths.fixture("speech.wav"))
        let hidden = try b.drop("speech.wav", as: ".1732467600.51.wav")
        let temp = try b.drop("speech.wav", as: "1732467600.52.wav.tmp")
        let text = try b.drop("bad-text.wav", as: "notes.txt")
        let real = try b.drop("speech.wav", as: "1732467600.53.wav")
        #expect(try eventually { try b.catalog.recording("1732467600.53") != nil })
        Thread.sleep(forTimeInterval: 1)
        for p in [link, hidden, temp, text] { #expect(FileManager.default.fileExists(atPath: p), "\(p)") }
        #expect(!FileManager.default.fileExists(atPath: real))
        #expect(try b.catalog.count() == 1)
        #expect(try b.catalog.quarantined().isEmpty)
    }

    /// Files already in the spool at start-up are taken by age; a part appended later (MixMonitor
    /// `a` after a transfer) joins the same recording.
    @Test func startupScanAndAppend() throws {
        let b = try Bench()
        let old = try b.drop("speech.wav", as: "1732467600.60.wav")
        var past = [timespec(tv_sec: time(nil) - 600, tv_nsec: 0), timespec(tv_sec: time(nil) - 600, tv_nsec: 0)]
        utimensat(AT_FDCWD, old, &past, 0)
        let fresh = try b.drop("speech.wav", as: "1732467600.61.wav")  // mtime now: may still be written
        let freshMtime = try #require(try FileManager.default.attributesOfItem(atPath: fresh)[.modificationDate] as? Date)
        let scanAge: TimeInterval = 3
        let w = watcher(b, scanAge: scanAge)
        try w.start()
        defer { w.stop() }
        #expect(try eventually(5) { try b.catalog.recording("1732467600.60") != nil })
        // The fresh file is taken only once it is scanAge old: it is seen leaving the spool no
        // sooner (a poll can only see it later than it went, never earlier).
        #expect(eventually { !b.exists(fresh) })
        let taken = Date()
        #expect(taken.timeIntervalSince(freshMtime) >= scanAge, "taken \(taken.timeIntervalSince(freshMtime)) s after its last write")
        #expect(try eventually { try b.catalog.recording("1732467600.61") != nil })

        let part2 = try MixMonitorWriter(path: b.spool + "/1732467600.60.wav", pcm: try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav")))
        try part2.record(frames: 100)
        try part2.close()
        #expect(try eventually { try b.catalog.recording("1732467600.60")?.parts == 2 })
        #expect(try b.catalog.recording("1732467600.60")?.samples == 48000 + 16000)
    }

    /// Many calls at once through two workers: each exactly once.
    @Test func manyCallsAtOnce() throws {
        let b = try Bench()
        let w = watcher(b)
        try w.start()
        defer { w.stop() }
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        let writers = try (0..<12).map { try MixMonitorWriter(path: b.spool + "/1732467700.\($0).wav", pcm: pcm) }
        for round in 0..<40 {
            for (i, wr) in writers.enumerated() where round < 20 + i { try wr.record(frames: 5) }
        }
        for wr in writers { try wr.close() }
        #expect(try eventually(30) { try b.catalog.count() == 12 })
        for (i, wr) in writers.enumerated() {
            #expect(try b.catalog.recording("1732467700.\(i)")?.samples == wr.samplesWritten)
        }
        #expect(eventually { (try? FileManager.default.contentsOfDirectory(atPath: b.spool))?.isEmpty == true })
    }
}
