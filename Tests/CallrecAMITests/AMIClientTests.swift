import CallrecAMI
import CallrecTestSupport
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

/// The connection against `AMIPeer` on loopback: login, keep-alive, ActionID correlation,
/// reconnection with back-off, a refused login.
@Suite struct AMIClientTests {
    static func client(port: Int, secret: String, keepAlive: TimeInterval = 20, onEvent: @escaping @Sendable (AMIMessage) -> Void = { _ in }) -> AMIClient {
        var options = AMIOptions()
        options.keepAlive = keepAlive
        options.actionTimeout = 1
        options.minBackoff = 0.05
        options.maxBackoff = 0.2
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        return AMIClient(
            endpoint: AMIEndpoint(host: "127.0.0.1", port: port, username: "callrec", secret: secret), options: options, logger: logger, onEvent: onEvent)
    }

    /// Liveness bounds, not timings: the whole suite on 2 busy cores stalled a client here past 15 s.
    static func until(_ timeout: TimeInterval = 90, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return false
    }

    @Test func logsInPingsAndMatchesAnswersToActions() async throws {
        let peer = AMIPeer()
        let port = try peer.start()
        defer { peer.stop() }
        let events = NIOLockedValueBox<[String]>([])
        let client = Self.client(port: port, secret: peer.secret, keepAlive: 0.1) { m in events.withLockedValue { $0.append(m.event ?? "") } }
        let run = Task { await client.run() }
        #expect(await Self.until { client.isConnected })
        #expect(client.banner == AMIPeer.banner)
        let login = try #require(peer.actions.first)
        #expect(login["Action"] == "Login" && login["Username"] == "callrec" && login["Secret"] == peer.secret && login["Events"] == "call")
        // Keep-alive.
        #expect(await Self.until { peer.actions.filter { $0["Action"] == "Ping" }.count >= 2 })
        // Concurrent actions, each answered by its own response.
        let a = Task { try await client.send("Ping", []) }
        let b = Task { try await client.send("MixMonitorMute", [("Channel", "Local/none;1"), ("Direction", "both"), ("State", "1")]) }
        let pong = try await a.value
        #expect(pong["Ping"] == "Pong")
        await #expect(throws: AMIError.refused("No such channel")) { _ = try await b.value }
        #expect(events.withLockedValue { $0 }.contains("FullyBooted"))
        client.stop()
        await run.value
        #expect(!client.isConnected)
    }

    @Test func reconnectsAfterTheLinkBreaksAndFailsWhatWasOutstanding() async throws {
        let peer = AMIPeer()
        let port = try peer.start()
        defer { peer.stop() }
        let client = Self.client(port: port, secret: peer.secret)
        let run = Task { await client.run() }
        #expect(await peer.waitForLogin())
        // Asterisk does not answer; the link breaks while the action waits.
        peer.answerMutes = false
        let pending = Task { try await client.send("MixMonitorMute", [("Channel", "x"), ("Direction", "both"), ("State", "1")], timeout: 60) }
        _ = await peer.waitForAction { $0["Action"] == "MixMonitorMute" }
        peer.dropConnections()
        await #expect(throws: AMIError.disconnected) { _ = try await pending.value }
        #expect(await peer.waitForLogin(count: 2))
        #expect(await Self.until { client.isConnected })
        // Down: every action fails at once, nothing waits.
        peer.stop()
        #expect(await Self.until { !client.isConnected })
        await #expect(throws: AMIError.unavailable) { try await client.send("Ping", []) }
        client.stop()
        await run.value
    }

    @Test func aRefusedLoginIsRetriedWithBackoffAndNeverConnects() async throws {
        let peer = AMIPeer()
        let port = try peer.start()
        defer { peer.stop() }
        let client = Self.client(port: port, secret: "wrong")
        let run = Task { await client.run() }
        #expect(await Self.until { peer.actions.filter { $0["Action"] == "Login" }.count >= 3 })
        #expect(!client.isConnected)
        #expect(peer.logins == 0)
        client.stop()
        await run.value
    }
}
