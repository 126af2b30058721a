import CallrecTestSupport
import Foundation

/// `callrec serve` as a subprocess on a free loopback port (`--port 0`, the port read from its
/// log), stdout and stderr in the file `log`, with short settle and rescan times (overridable in
/// `env`). Ready when `init` returns; killed (SIGKILL) when dropped still running.
final class ServeProcess {
    let log: String
    private(set) var port = 0
    private let running: CallrecProcess

    var process: Process { running.process }
    var url: String { "http://127.0.0.1:\(port)" }

    init(data: String, spool: String, env: [String: String] = [:], log: String) throws {
        self.log = log
        running = try CallrecProcess(
            ["serve", "--data", data, "--spool", spool, "--port", "0"],
            env: ["CALLREC_SETTLE_MS": "200", "CALLREC_SCAN_AGE": "1", "CALLREC_RESCAN_SECONDS": "1", "CALLREC_WORKERS": "2"].merging(env) { $1 },
            log: log)
        // A liveness bound: the whole suite loads both cores.
        _ = eventually(60) {
            let t = text()
            if let r = t.range(of: "listening on 127.0.0.1:", options: .backwards), let p = Int(t[r.upperBound...].prefix { $0.isNumber }), p > 0 {
                port = p
            }
            return port > 0 || !running.process.isRunning
        }
        guard port > 0 else {
            if running.process.isRunning { stop(SIGKILL) }
            throw NSError(domain: "ServeProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "serve did not start: \(text())"])
        }
    }

    /// The log so far.
    func text() -> String { running.out }

    /// Sends `signal` and waits for the exit: the status, or the signal that ended it.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 { running.stop(signal) }

    /// GET on the server, with a bearer `token` if given.
    func get(_ path: String, token: String? = nil) throws -> HTTPAnswer {
        try http("GET", url + path, token: token)
    }

    /// The value of a Prometheus sample with no labels, or nil.
    func metric(_ name: String) throws -> Double? {
        for line in try get("/metrics").text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
