import CallrecTestSupport
import Foundation

/// `callrec serve` as a subprocess on port 0, with its log in a file.
final class ServeProcess {
    let process = Process()
    let log: String
    private(set) var port = 0

    init(data: String, spool: String, environment: [String: String] = [:], log: String) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = ["serve", "--data", data, "--spool", spool, "--port", "0"]
        var env = ProcessInfo.processInfo.environment
        env["CALLREC_SETTLE_MS"] = "200"
        env["CALLREC_SCAN_AGE"] = "1"
        env["CALLREC_RESCAN_SECONDS"] = "1"
        env["CALLREC_WORKERS"] = "2"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        let started = eventually(30) {
            let t = text()
            if let r = t.range(of: "listening on 127.0.0.1:", options: .backwards), let p = Int(t[r.upperBound...].prefix { $0.isNumber }), p > 0 {
                port = p
            }
            return port > 0 || !process.isRunning
        }
        guard started, port > 0 else {
            throw NSError(domain: "ServeProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "serve did not start: \(text())"])
        }
    }

    func text() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// GET on the server: status and body.
    func get(_ path: String) throws -> (Int, Data) {
        let answer = try http("GET", "http://127.0.0.1:\(port)\(path)")
        return (answer.status, answer.body)
    }
}
