import CallrecTestSupport
import Foundation
import Testing

/// What `serve` says when it starts and stops, in the situations operators meet.
@Suite(.serialized, .offThePool)
struct ServeStartupTests {
    /// A second `serve` on a busy port fails at once with one line naming the address and
    /// `--port`, before its watcher has taken anything from its spool.
    @Test func aBusyPortFailsBeforeTheWatcherStarts() throws {
        let dir = TempDir()
        let first = try ServeProcess(data: dir.file("data1"), spool: dir.file("spool1"), log: dir.file("serve1.log"))
        defer { first.stop() }
        let spool = dir.file("spool2")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let waiting = spool + "/1732467600.42.wav"
        try placeFixture("speech.wav", at: waiting)
        let r = try callrec(
            ["serve", "--data", dir.file("data2"), "--spool", spool, "--port", "\(first.port)"],
            env: ["CALLREC_SCAN_AGE": "0", "CALLREC_SETTLE_MS": "0", "CALLREC_LOG_LEVEL": "critical"])
        #expect(r.status != 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "\(r.err)")
        #expect(r.err.hasPrefix("callrec: ") && r.err.contains("127.0.0.1:\(first.port)") && r.err.contains("--port"), "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: waiting), "the watcher ran")
    }

    /// SIGTERM: the log says it is stopping, how many ingests are finishing, and that it stopped.
    @Test func shutdownIsLogged() throws {
        let dir = TempDir()
        let serve = try ServeProcess(data: dir.file("data"), spool: dir.file("spool"), log: dir.file("serve.log"))
        #expect(serve.stop(SIGTERM) == 0)
        let log = serve.text()
        #expect(log.contains("stopping (0 ingests finishing)"), "\(log)")
        #expect(log.contains("stopped"))
        let stopping = try #require(log.range(of: "stopping ("))
        #expect(log.range(of: "stopped", range: stopping.upperBound..<log.endIndex) != nil)
    }

    /// SIGTERM with an event stream open (`GET /events`): the stream ends and serve exits, rather
    /// than wait for the stream's token to expire (it waited, before streams heard the shutdown).
    @Test func shutdownEndsEventStreams() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let serve = try ServeProcess(data: data, spool: dir.file("spool"), log: dir.file("serve.log"))
        let token = try callrec(["token", "--role", "admin", "--ttl", "3600", "--data", data]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let answer = LockedBox<HTTPAnswer?>(nil)
        let url = serve.url
        Thread.detachNewThread {
            answer.set(try? http("GET", url + "/events", token: token, headers: ["Accept": "text/event-stream"], timeout: 300))
        }
        #expect(eventually(30) { (try? serve.get("/healthz").status) == 200 })
        Thread.sleep(forTimeInterval: 1)  // the stream is open (its first event sent)
        kill(serve.process.processIdentifier, SIGTERM)
        let exited = eventually(60) { !serve.process.isRunning }
        #expect(exited, "serve still running 60 s after SIGTERM with an event stream open")
        if !exited { serve.stop(SIGKILL) }
        #expect(eventually(30) { answer.get() != nil })
        #expect(answer.get()?.text.hasPrefix("retry: 3000\n\nevent: calls\n") == true, "\(String(describing: answer.get()?.text.prefix(200)))")
    }

    /// A spool callrec cannot remove files from (Asterisk's user owns it): said at start-up,
    /// naming the folder and the fix. Run as `nobody`, so it needs root to set up.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func aSpoolCallrecCannotEmptyIsReported() throws {
        let dir = TempDir()
        chmod(dir.path, 0o755)
        let data = dir.file("data"), spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        chown(data, 65534, 65534)
        chmod(spool, 0o755)  // root's: nobody may read it, not remove from it
        let log = dir.file("serve.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Paths.binary, "serve", "--data", data, "--spool", spool, "--port", "0"]
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = data
        p.environment = env
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardError = h
        p.standardOutput = h
        try p.run()
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        _ = eventually(30) { !p.isRunning || text().contains("listening on") }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let out = text()
        #expect(out.contains("cannot remove files from the spool \(spool)"), "\(out)")
        #expect(out.contains("ASTERISK_UID") && out.contains("writable"))
    }
}

/// A value shared with a thread.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
