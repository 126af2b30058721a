import CallrecTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Helpers of the Promised* suites (README promises tested end to end), kept apart from the
/// other suites' helpers so that either can change without the other.
enum Promised {
    /// The environment a test gives callrec: this process's, without any CALLREC_* a developer's
    /// shell may carry, plus `extra`.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLREC_") }
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runs the built `callrec` to the end: status, stdout, stderr (through files, so that no
    /// pipe fills up).
    @discardableResult
    static func callrec(_ args: [String], env: [String: String] = [:], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = try Started(args, env: env, stdin: stdin)
        p.process.waitUntilExit()
        return (p.process.terminationStatus, p.out, p.err)
    }

    /// A `callrec` process running in the background.
    final class Started {
        let process = Process()
        let outPath: String
        let errPath: String

        init(_ args: [String], env: [String: String] = [:], stdin: String? = nil) throws {
            let base = NSTemporaryDirectory() + "callrec-promised-\(UUID().uuidString)"
            outPath = base + ".out"
            errPath = base + ".err"
            FileManager.default.createFile(atPath: outPath, contents: nil)
            FileManager.default.createFile(atPath: errPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: Paths.binary)
            process.arguments = args
            process.environment = Promised.environment(env)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            if let stdin {
                let pipe = Pipe()
                process.standardInput = pipe
                try process.run()
                pipe.fileHandleForWriting.write(Data(stdin.utf8))
                try pipe.fileHandleForWriting.close()
            } else {
                process.standardInput = FileHandle.nullDevice
                try process.run()
            }
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            unlink(outPath)
            unlink(errPath)
        }

        var out: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
        var err: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass; whether it held. Async, so
    /// that a long wait does not hold one of the few threads of Swift's cooperative pool, which
    /// every other test in this process needs (on two cores, two blocked waits stall them all).
    static func eventually(_ seconds: TimeInterval, _ condition: () throws -> Bool) async rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try condition()
    }

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    static func sha256(ofFile path: String) throws -> String {
        let r = try run("sha256sum", [path])
        return String(String(decoding: r.out, as: UTF8.self).prefix(64))
    }

    /// One HTTP request: status, headers (lower-case names) and body.
    static func http(_ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil) throws -> (status: Int, headers: [String: String], body: Data) {
        var req = URLRequest(url: URL(string: url)!)
        req.httpMethod = method
        req.httpBody = body
        req.timeoutInterval = 60
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, [String: String], Data)?
        nonisolated(unsafe) var failure: (any Error)?
        URLSession.shared.dataTask(with: req) { data, response, error in
            if let error {
                failure = error
            } else {
                let http = response as? HTTPURLResponse
                var h: [String: String] = [:]
                for (k, v) in http?.allHeaderFields ?? [:] { h[String(describing: k).lowercased()] = String(describing: v) }
                result = (http?.statusCode ?? 0, h, data ?? Data())
            }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }
}

/// `callrec serve` as a subprocess on a free loopback port, its log in a file; killed when dropped.
final class PromisedServe {
    let process = Process()
    let log: String
    private(set) var port = 0

    init(data: String, spool: String, env: [String: String] = [:], log: String) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = ["serve", "--data", data, "--spool", spool, "--port", "0"]
        process.environment = Promised.environment(
            ["CALLREC_SETTLE_MS": "200", "CALLREC_SCAN_AGE": "1", "CALLREC_RESCAN_SECONDS": "1", "CALLREC_WORKERS": "2"].merging(env) { $1 })
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = handle
        process.standardOutput = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let log = text()
            if let r = log.range(of: "listening on 127.0.0.1:", options: .backwards),
                let p = Int(log[r.upperBound...].prefix { $0.isNumber }), p > 0
            {
                port = p
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop(SIGKILL)
        throw NSError(domain: "PromisedServe", code: 1, userInfo: [NSLocalizedDescriptionKey: "serve did not start: \(text())"])
    }

    deinit { if process.isRunning { stop(SIGKILL) } }

    func text() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    var url: String { "http://127.0.0.1:\(port)" }

    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }

    func get(_ path: String, token: String? = nil) throws -> (status: Int, headers: [String: String], body: Data) {
        try Promised.http("GET", url + path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    /// The value of a Prometheus sample with no labels, or nil.
    func metric(_ name: String) throws -> Double? {
        let text = String(decoding: try get("/metrics").body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
