// callrec-bench ami-*: figures for scripts/bench-ami.

import CallrecAMI
import CallrecTestSupport
import Foundation
import Logging
import NIOPosix

enum AMIBench {
    /// The fixture call's events as Asterisk sends them, repeated to `count` events (each copy
    /// with its own uniqueids, as a busy PBX's many calls), written to `out` for the reference parser.
    static func parse(log: String, count: Int, out: String) throws {
        let events = try AMIPeer.load(log)
        var wire: [UInt8] = []
        var n = 0
        var copy = 0
        while n < count {
            copy += 1
            for e in events where n < count {
                wire += Array(e.wire.replacingOccurrences(of: "1795635615.6", with: "17956\(copy).6").utf8)
                n += 1
            }
        }
        try Data(wire).write(to: URL(fileURLWithPath: out))
        // Socket-sized reads: 64 KiB at a time, cut anywhere.
        let chunk = 65536
        func run(_ label: String, wanted: (@Sendable (Substring) -> Bool)?, track: Bool) {
            var best = Double.infinity
            var messages = 0
            for _ in 0..<3 {
                var parser = AMIParser(expectBanner: false, wanted: wanted)
                var logger = Logger(label: "bench")
                logger.logLevel = .critical
                let tracker = CallTracker(catalog: nil, logger: logger)
                messages = 0
                let t0 = now()
                wire.withUnsafeBytes { all in
                    var i = 0
                    while i < all.count {
                        let j = min(all.count, i + chunk)
                        for f in parser.feed(UnsafeRawBufferPointer(rebasing: all[i..<j])) {
                            if case .message(let m) = f {
                                messages += 1
                                if track { tracker.handle(m) }
                            }
                        }
                        i = j
                    }
                }
                best = min(best, now() - t0)
            }
            print(String(format: "%@: %d events (%.1f MB) in %.3f s: %.0f events/s (best of 3)", label, count, Double(wire.count) / 1e6, best, Double(count) / best))
        }
        run("callrec AMI parser, every event built", wanted: nil, track: false)
        let followed = CallTracker.followed
        run("callrec AMI parser + call tracker (followed events built, others skipped)", wanted: { followed.contains(String($0)) }, track: true)
    }

    /// An AMI peer replaying the fixture call up to its bridge and answering actions until killed.
    static func peer(log: String, portFile: String, secret: String) async throws -> Never {
        let peer = AMIPeer(secret: secret, holdMutes: false)
        let port = try peer.start()
        try "\(port)\n".write(toFile: portFile, atomically: true, encoding: .utf8)
        while peer.loggedInConnections == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        try await Task.sleep(nanoseconds: 300_000_000)  // callrec's CoreShowChannels
        let events = try AMIPeer.load(log)
        let upTo = events.firstIndex { $0.name == "BridgeEnter" && $0["Uniqueid"] == "1795635615.61" }!
        try await peer.replay(Array(events[...upTo]), speed: 100)
        while true { try await Task.sleep(nanoseconds: 1_000_000_000) }
    }

    /// The reference: an AMI round trip alone (Ping), through the same client, `n` times.
    static func ping(port: Int, secret: String, n: Int) async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let client = AMIClient(endpoint: AMIEndpoint(host: "127.0.0.1", port: port, username: "callrec", secret: secret), logger: logger) { _ in }
        let run = Task { await client.run() }
        while !client.isConnected { try await Task.sleep(nanoseconds: 10_000_000) }
        var xs: [Double] = []
        for _ in 0..<n {
            let t0 = now()
            try await client.send("Ping", [])
            xs.append(now() - t0)
        }
        client.stop()
        await run.value
        print(String(format: "AMI Ping round trip alone (reference): median %@, p99 %@ over %d", ms(median(xs)), ms(percentile(xs, 0.99)), n))
    }
}
