import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import CallrecSupport
import Foundation
import Logging
import Testing

@testable import CallrecIngest

/// What someone who can write the spool can do to the ingest (issue 10): swap a file for a
/// symlink or a FIFO while it is examined, bring a removed recording back, read what callrec stores.
@Suite(.offThePool, .serialized)
struct SpoolSafetyTests {
    /// A thread that keeps replacing `path` (atomically, with rename) by a symlink to a file
    /// outside the spool, a FIFO, and the real recording, until stopped.
    final class Swapper: @unchecked Sendable {
        let path: String
        let real: String, outside: String, fifo: String
        private let lock = NSLock()
        private var stopping = false
        private var thread: Thread?
        private let done = DispatchSemaphore(value: 0)

        init(path: String, real: String, outside: String, fifo: String) {
            self.path = path
            self.real = real
            self.outside = outside
            self.fifo = fifo
        }

        func start() {
            let dir = parentDirectory(of: path)
            let t = Thread { [self] in
                var i = 0
                while true {
                    lock.lock()
                    let stop = stopping
                    lock.unlock()
                    if stop { break }
                    let tmp = dir + "/.swap-\(i)"
                    switch i % 3 {
                    case 0: symlink(outside, tmp)
                    case 1: link(fifo, tmp)
                    default: link(real, tmp)
                    }
                    rename(tmp, path)
                    i += 1
                }
                done.signal()
            }
            thread = t
            t.start()
        }

        func stop() {
            lock.lock()
            stopping = true
            lock.unlock()
            done.wait()
        }
    }

    /// Runs `body` on a thread; false if it has not returned within `timeout` (then `unblock`
    /// is called until it does).
    func finishes(within timeout: TimeInterval, unblock: @escaping () -> Void, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Thread { body(); done.signal() }.start()
        if done.wait(timeout: .now() + timeout) == .success { return true }
        while done.wait(timeout: .now() + 0.2) == .timedOut { unblock() }
        return false
    }

    /// Whatever the path names from one moment to the next, the ingest reads one file, the one
    /// it checked: never the symlink's target outside the spool (whose hash it would record),
    /// never blocked on a FIFO; and it never moves or deletes the file outside.
    @Test func aPathSwappedDuringTheIngestIsNeverFollowed() throws {
        let b = try Bench()
        let side = b.dir.file("side")
        try FileManager.default.createDirectory(atPath: side, withIntermediateDirectories: true)
        let real = side + "/real.wav", outside = side + "/outside.wav", fifo = side + "/fifo"
        try placeFixture("speech.wav", at: real)
        try placeFixture("u8.wav", at: outside)
        #expect(mkfifo(fifo, 0o644) == 0)
        let speech = try Transcoder.sha256(of: real), other = try Transcoder.sha256(of: outside)
        var hung = 0
        for i in 0..<40 {
            let id = "1732467600.\(100 + i)"
            let path = b.spool + "/\(id).wav"
            #expect(link(real, path) == 0)
            let swapper = Swapper(path: path, real: real, outside: outside, fifo: fifo)
            swapper.start()
            let ingestor = b.ingestor
            let ok = finishes(within: 10, unblock: {
                let w = open(fifo, O_WRONLY | O_NONBLOCK)
                if w >= 0 { close(w) }
            }) { _ = ingestor.ingest(path: path) }
            swapper.stop()
            if !ok { hung += 1 }
            unlink(path)
            if let row = try b.catalog.recording(id) {
                #expect(row.sourceSHA256 == speech, "ingest \(i) recorded the hash of another file")
                #expect(row.sourceSHA256 != other)
                #expect(row.samples == 48000, "ingest \(i) decoded another file")
            }
        }
        #expect(hung == 0, "ingest blocked on a FIFO \(hung) times")
        #expect(try Transcoder.sha256(of: outside) == other, "the file outside the spool was touched")
        #expect(try Transcoder.sha256(of: real) == speech)
        for q in try b.catalog.quarantined() {
            // Only the file examined may ever be moved: never the FIFO or the file outside.
            var st = stat()
            #expect(lstat(b.data.absolute(q.path), &st) == 0 && st.st_mode & S_IFMT == S_IFREG)
            #expect(q.sha256 == nil || q.sha256 == speech)
        }
    }

    /// A recording deleted while its audio file could not be removed yet (a crash), and whose
    /// source comes back to the spool: it is not taken back in, and the removal is finished.
    @Test func aRemovedRecordingIsNeverTakenBackIn() throws {
        let b = try Bench()
        let id = "1732467600.42"
        let src = try b.drop("speech.wav", as: "\(id).wav")
        #expect(b.ingestor.ingest(path: src) == .ingested(uniqueid: id, parts: 1))
        let row = try #require(try b.catalog.recording(id))
        let audio = b.data.absolute(row.opusPath)
        // The row goes with a tombstone; the crash comes before the file is removed.
        _ = try b.catalog.delete(id, reason: "delete", audit: AuditEntry(at: Date(), actor: "test", role: "admin", company: nil, action: "delete", uniqueid: id))
        #expect(b.exists(audio))

        let again = try b.drop("speech.wav", as: "\(id).wav")
        let outcome = b.ingestor.ingest(path: again)
        #expect(try b.catalog.recording(id) == nil, "a deleted recording came back: \(outcome)")
        #expect(!b.exists(audio), "the removal was not finished")
        guard case .quarantined(let reason) = outcome else {
            Issue.record("expected quarantine, got \(outcome)")
            return
        }
        #expect(reason.contains("removed"))

        // With no leftover audio file at all: the source alone does not bring it back either.
        let third = try b.drop("speech.wav", as: "\(id).wav")
        _ = b.ingestor.ingest(path: third)
        #expect(try b.catalog.recording(id) == nil)
    }

    /// What callrec creates is its own: 0640 files, 0750 folders, whatever the umask.
    @Test func filesAreNotReadableByOtherUsers() throws {
        let old = umask(0o022)
        defer { umask(old) }
        let b = try Bench()
        func mode(_ path: String) -> mode_t {
            var st = stat()
            return lstat(path, &st) == 0 ? st.st_mode & 0o777 : 0
        }
        let src = try b.drop("speech.wav", as: "1732467600.42.wav")
        #expect(b.ingestor.ingest(path: src) == .ingested(uniqueid: "1732467600.42", parts: 1))
        let row = try #require(try b.catalog.recording("1732467600.42"))
        #expect(mode(b.data.absolute(row.opusPath)) == 0o640)
        for dir in [b.data.root, b.data.audioRoot, b.data.audioRoot + "/2024", b.data.audioRoot + "/2024/11", b.data.audioRoot + "/2024/11/24",
                    b.data.quarantineRoot, b.data.exportsRoot, b.data.root + "/locks"] {
            #expect(mode(dir) == 0o750, "\(dir): \(String(mode(dir), radix: 8))")
        }
        #expect(mode(b.data.catalogPath) == 0o640)
        for lock in (try? FileManager.default.contentsOfDirectory(atPath: b.data.root + "/locks")) ?? [] {
            #expect(mode(b.data.root + "/locks/" + lock) == 0o640)
        }
        let bad = try b.drop("bad-random.wav", as: "1732467600.9.wav")
        guard case .quarantined = b.ingestor.ingest(path: bad) else {
            Issue.record("not quarantined")
            return
        }
        let q = try #require(try b.catalog.quarantined().first)
        let day = parentDirectory(of: b.data.absolute(q.path))
        #expect(mode(day) == 0o750)
        #expect(mode(b.data.absolute(q.path)) == 0o640)
        #expect(mode(b.data.absolute(q.path) + ".reason.txt") == 0o640)
    }

    /// Recognised names that no route could serve are quarantined with the reason, not ingested
    /// into a recording that answers 400 everywhere.
    @Test func aUniqueidNoRouteCanServeIsQuarantined() throws {
        let b = try Bench()
        let id = String(repeating: "pbx", count: 45) + "-1732467600.42"  // 149 characters
        let src = try b.drop("speech.wav", as: "\(id).wav")
        guard case .quarantined(let reason) = b.ingestor.ingest(path: src) else {
            Issue.record("not quarantined")
            return
        }
        #expect(reason.contains("128"))
        #expect(try b.catalog.count() == 0)
        #expect(try b.catalog.quarantined().first?.sourceName == "\(id).wav")
    }

    /// `{company}` = `.acme` makes a hidden folder: the watcher still finds the file, and the
    /// ingest quarantines it saying why, instead of never seeing it.
    @Test func aPatternFieldStartingWithADotIsQuarantinedNotIgnored() throws {
        let b = try Bench(pattern: "{company}/{agent}-{lead_number}-{uniqueid}.{ext}")
        var o = WatcherOptions()
        o.settle = 0.2
        o.scanAge = 0.5
        o.rescanInterval = 0.3
        o.workers = 1
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let w = SpoolWatcher(spool: b.spool, ingestor: b.ingestor, options: o, logger: logger)
        try w.start()
        defer { w.stop() }
        try b.drop("speech.wav", as: ".acme/1001-5511-1732467600.5.wav")
        try b.drop("speech.wav", as: "42/.1001-5511-1732467600.6.wav")
        // An ordinary hidden temporary file is still left alone.
        try b.drop("speech.wav", as: "42/.1732467600.7.wav")
        #expect(eventually(10) { ((try? b.catalog.quarantined()) ?? []).count == 2 })
        let reasons = try b.catalog.quarantined().map(\.reason)
        #expect(reasons.contains { $0.contains("company '.acme'") })
        #expect(reasons.contains { $0.contains("agent '.1001'") })
        #expect(b.exists(b.spool + "/42/.1732467600.7.wav"))
        #expect(try b.catalog.count() == 0)
    }

    /// A quarantined file is never replaced by another's reason file (`NAME.reason.txt`).
    @Test func aReasonFileNeverReplacesAQuarantinedFile() throws {
        let b = try Bench()
        let first = try b.drop("bad-random.wav", as: "1732467600.9.wav.reason.txt")
        let firstBytes = try Data(contentsOf: URL(fileURLWithPath: first))
        guard case .quarantined = b.ingestor.ingest(path: first) else {
            Issue.record("not quarantined")
            return
        }
        _ = b.ingestor.ingest(path: try b.drop("bad-text.wav", as: "1732467600.9.wav"))
        let rows = try b.catalog.quarantined()
        #expect(rows.count == 2)
        let kept = try #require(rows.first { $0.sourceName == "1732467600.9.wav.reason.txt" })
        #expect(try Data(contentsOf: URL(fileURLWithPath: b.data.absolute(kept.path))) == firstBytes, "overwritten by a reason file")
        for r in rows {
            #expect(try String(contentsOfFile: b.data.absolute(r.path) + ".reason.txt", encoding: .utf8) == r.reason + "\n")
        }
    }

    /// Files of one name quarantined at once, by several ingests: each keeps its own bytes,
    /// none replaces another.
    @Test func quarantiningTheSameNameAtOnceLosesNothing() throws {
        let b = try Bench()
        let garbage = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("bad-random.wav")))
        // `a/x.wav` and `a_x.wav` both quarantine as `a_x.wav`.
        var paths: [String] = []
        for i in 0..<60 {
            for name in ["a\(i)/x.wav", "a\(i)_x.wav"] {
                let p = b.spool + "/" + name
                try FileManager.default.createDirectory(atPath: parentDirectory(of: p), withIntermediateDirectories: true)
                var bytes = garbage
                bytes.append(contentsOf: Array(name.utf8))
                try bytes.write(to: URL(fileURLWithPath: p))
                paths.append(p)
            }
        }
        let ingestor = b.ingestor
        let all = paths
        DispatchQueue.concurrentPerform(iterations: all.count / 2) { i in
            let pair = [all[2 * i], all[2 * i + 1]]
            DispatchQueue.concurrentPerform(iterations: 2) { j in _ = ingestor.ingest(path: pair[j]) }
        }
        let rows = try b.catalog.quarantined()
        #expect(rows.count == paths.count)
        let kept = Set(rows.map(\.path))
        #expect(kept.count == paths.count, "two quarantine records point at one file")
        var contents = Set<Data>()
        for r in rows { contents.insert(try Data(contentsOf: URL(fileURLWithPath: b.data.absolute(r.path)))) }
        #expect(contents.count == paths.count, "a quarantined file was overwritten")
    }
}
