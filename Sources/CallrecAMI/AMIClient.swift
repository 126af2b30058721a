import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// `CALLREC_AMI=tcp://USER:SECRET@HOST:PORT`. Its description never shows the secret.
public struct AMIEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var secret: String

    public init(host: String, port: Int, username: String, secret: String) {
        self.host = host
        self.port = port
        self.username = username
        self.secret = secret
    }

    /// Parses the setting; the error names what is wrong, never the secret.
    public init(url: String) throws {
        guard let c = URLComponents(string: url), c.scheme == "tcp", let host = c.host, !host.isEmpty,
            let user = c.user, !user.isEmpty, let secret = c.password, !secret.isEmpty
        else {
            throw AMIError.badSetting("CALLREC_AMI must be tcp://USER:SECRET@HOST:PORT (user, secret and host required)")
        }
        let port = c.port ?? 5038
        guard (1...65535).contains(port) else { throw AMIError.badSetting("CALLREC_AMI's port must be 1–65535") }
        self.init(
            host: host, port: port, username: user.removingPercentEncoding ?? user, secret: secret.removingPercentEncoding ?? secret)
    }

    public var description: String { "tcp://\(username):***@\(host):\(port)" }
}

public enum AMIError: Error, Equatable, CustomStringConvertible, Sendable {
    case badSetting(String)
    /// Not connected or not logged in.
    case unavailable
    /// No response within the action's timeout.
    case timeout
    /// The connection closed with the action outstanding.
    case disconnected
    /// `Response: Error` with its `Message`.
    case refused(String)
    case loginFailed(String)

    public var description: String {
        switch self {
        case .badSetting(let s): return s
        case .unavailable: return "the AMI connection is down"
        case .timeout: return "Asterisk did not answer in time"
        case .disconnected: return "the AMI connection closed before Asterisk answered"
        case .refused(let m): return "Asterisk refused: \(m)"
        case .loginFailed(let m): return "AMI login failed: \(m)"
        }
    }
}

/// Timings of the connection: how often it pings, how long an action may take, the back-off.
public struct AMIOptions: Sendable {
    public var keepAlive: TimeInterval = 20
    public var actionTimeout: TimeInterval = 5
    public var connectTimeout: TimeInterval = 5
    public var minBackoff: TimeInterval = 0.5
    public var maxBackoff: TimeInterval = 30
    /// Login's `Events:` mask: `call` carries every event the tracker follows.
    public var events = "call"
    public init() {}
}

/// One connection to Asterisk's Manager Interface, kept up: connect, wait for the banner, log in,
/// ping every `keepAlive`; on any failure, close and connect again after a back-off that doubles
/// up to `maxBackoff` (and starts again once a login succeeds). Actions carry an `ActionID` and
/// their response is matched to it; events go to `onEvent` on the connection's event loop, in order.
public final class AMIClient: @unchecked Sendable {
    public let endpoint: AMIEndpoint
    let options: AMIOptions
    let logger: Logger
    let group: EventLoopGroup
    let onEvent: @Sendable (AMIMessage) -> Void
    let onLogin: @Sendable () -> Void
    let wanted: (@Sendable (Substring) -> Bool)?

    private struct Pending {
        var continuation: CheckedContinuation<[AMIMessage], Error>
        var timer: Scheduled<Void>?
        /// An action answered by a list of events (`EventList: start` … `Complete`).
        var list: [AMIMessage]?
    }
    private struct State {
        var channel: Channel?
        var loggedIn = false
        var pending: [String: Pending] = [:]
        var next = 0
        var stopped = false
        var banner: String?
        var sleeper: CheckedContinuation<Void, Never>?
    }
    private let state = NIOLockedValueBox(State())

    public init(
        endpoint: AMIEndpoint, options: AMIOptions = AMIOptions(), logger: Logger, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        wanted: (@Sendable (Substring) -> Bool)? = nil,
        onLogin: @escaping @Sendable () -> Void = {}, onEvent: @escaping @Sendable (AMIMessage) -> Void
    ) {
        self.endpoint = endpoint
        self.options = options
        self.logger = logger
        self.group = group
        self.wanted = wanted
        self.onLogin = onLogin
        self.onEvent = onEvent
    }

    /// Logged in and not known to be down.
    public var isConnected: Bool { state.withLockedValue { $0.loggedIn && $0.channel != nil } }
    /// The banner of the current connection (`Asterisk Call Manager/…`).
    public var banner: String? { state.withLockedValue { $0.banner } }

    // MARK: the connection loop

    /// Keeps the connection up until `stop()`.
    public func run() async {
        var backoff = options.minBackoff
        while !state.withLockedValue({ $0.stopped }) {
            var loggedIn = false
            do {
                try await connectOnce { loggedIn = true }
            } catch {
                logger.warning("AMI connection failed", metadata: ["ami": "\(endpoint)", "error": "\(error)"])
            }
            if loggedIn { backoff = options.minBackoff }
            if state.withLockedValue({ $0.stopped }) { break }
            logger.info("AMI reconnecting", metadata: ["ami": "\(endpoint)", "in_seconds": "\(backoff)"])
            await sleep(backoff)
            backoff = min(options.maxBackoff, backoff * 2)
        }
    }

    /// Stops the loop and closes the connection; outstanding actions fail.
    public func stop() {
        let (channel, sleeper) = state.withLockedValue { s -> (Channel?, CheckedContinuation<Void, Never>?) in
            s.stopped = true
            let c = s.sleeper
            s.sleeper = nil
            return (s.channel, c)
        }
        channel?.close(promise: nil)
        sleeper?.resume()
    }

    /// Closes the current connection (the loop reconnects): for a keep-alive that went unanswered.
    public func dropConnection() {
        state.withLockedValue { $0.channel }?.close(promise: nil)
    }

    private func sleep(_ seconds: TimeInterval) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let stopped = state.withLockedValue { s -> Bool in
                if s.stopped { return true }
                s.sleeper = c
                return false
            }
            if stopped { c.resume(); return }
            group.next().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
                let c = self.state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
                    let c = s.sleeper
                    s.sleeper = nil
                    return c
                }
                c?.resume()
            }
        }
    }

    private func connectOnce(loggedIn: () -> Void) async throws {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Int64(options.connectTimeout * 1e9)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AMIHandler(client: self, parser: AMIParser(wanted: self.wanted)))
                }
            }
        let channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        let stopped = state.withLockedValue { s -> Bool in
            if s.stopped { return true }
            s.channel = channel  // the banner may have arrived already: it is cleared when a connection closes
            return false
        }
        if stopped {
            try? await channel.close()
            return
        }
        do {
            let answer = try await send(
                "Login", [("Username", endpoint.username), ("Secret", endpoint.secret), ("Events", options.events)], requireLogin: false)
            _ = answer
        } catch AMIError.refused(let m) {
            channel.close(promise: nil)
            try? await channel.closeFuture.get()
            throw AMIError.loginFailed(m)
        } catch {
            channel.close(promise: nil)
            try? await channel.closeFuture.get()
            throw error
        }
        state.withLockedValue { $0.loggedIn = true }
        loggedIn()
        logger.notice("AMI connected", metadata: ["ami": "\(endpoint)", "banner": "\(banner ?? "")"])
        onLogin()
        // Keep-alive: a Ping every keepAlive; no answer closes the connection (the loop reconnects).
        let keepAlive = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(self.options.keepAlive * 1e9))
                if Task.isCancelled { break }
                do { _ = try await self.send("Ping", []) } catch {
                    self.logger.warning("AMI keep-alive unanswered: reconnecting", metadata: ["error": "\(error)"])
                    channel.close(promise: nil)
                    break
                }
            }
        }
        try? await channel.closeFuture.get()
        keepAlive.cancel()
        logger.warning("AMI connection lost", metadata: ["ami": "\(endpoint)"])
    }

    // MARK: actions

    /// Sends an action and waits for its `Response: Success` (the response is returned); throws
    /// `refused` for `Response: Error`, `unavailable` when not logged in, `timeout`, `disconnected`.
    @discardableResult
    public func send(_ action: String, _ fields: [(String, String)], timeout: TimeInterval? = nil, requireLogin: Bool = true) async throws -> AMIMessage {
        try await exchange(action, fields, timeout: timeout, requireLogin: requireLogin, list: false)[0]
    }

    /// Sends an action answered by a list of events (e.g. `CoreShowChannels`): the events, in order.
    public func sendList(_ action: String, _ fields: [(String, String)] = [], timeout: TimeInterval? = nil) async throws -> [AMIMessage] {
        Array(try await exchange(action, fields, timeout: timeout, requireLogin: true, list: true).dropFirst())
    }

    private func exchange(_ action: String, _ fields: [(String, String)], timeout: TimeInterval?, requireLogin: Bool, list: Bool) async throws -> [AMIMessage] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[AMIMessage], Error>) in
            let prepared = state.withLockedValue { s -> (Channel, String)? in
                guard let channel = s.channel, !requireLogin || s.loggedIn else { return nil }
                s.next += 1
                let id = "callrec-\(s.next)"
                s.pending[id] = Pending(continuation: c, timer: nil, list: list ? [] : nil)
                return (channel, id)
            }
            guard let (channel, id) = prepared else {
                c.resume(throwing: AMIError.unavailable)
                return
            }
            let wait = timeout ?? options.actionTimeout
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) { self.finish(id, .failure(AMIError.timeout)) }
            state.withLockedValue { s in s.pending[id]?.timer = timer }
            let message = AMIMessage([("Action", action), ("ActionID", id)] + fields)
            channel.writeAndFlush(ByteBuffer(string: message.wire)).whenFailure { error in self.finish(id, .failure(AMIError.disconnected)) }
        }
    }

    private func finish(_ id: String, _ result: Result<[AMIMessage], Error>) {
        guard let p = state.withLockedValue({ $0.pending.removeValue(forKey: id) }) else { return }
        p.timer?.cancel()
        p.continuation.resume(with: result)
    }

    // MARK: from the handler (on the channel's event loop)

    fileprivate func received(_ frame: AMIFrame, on channel: Channel) {
        switch frame {
        case .banner(let b):
            state.withLockedValue { $0.banner = b }
        case .message(let m):
            if let response = m.response {
                let id = m["ActionID"] ?? ""
                if response == "Error" {
                    finish(id, .failure(AMIError.refused(m["Message"] ?? "error")))
                } else if m["EventList"]?.lowercased() == "start" {
                    state.withLockedValue { s in s.pending[id]?.list = [m] }
                } else {
                    finish(id, .success([m]))
                }
                return
            }
            if let id = m["ActionID"], state.withLockedValue({ $0.pending[id]?.list != nil }) {
                if m["EventList"]?.lowercased() == "complete" {
                    let collected = state.withLockedValue { $0.pending[id]?.list ?? [] }
                    finish(id, .success(collected.isEmpty ? [m] : collected))
                } else {
                    state.withLockedValue { s in s.pending[id]?.list?.append(m) }
                }
                return
            }
            if m.event != nil { onEvent(m) }
        }
    }

    fileprivate func closed(_ channel: Channel) {
        let failed = state.withLockedValue { s -> [Pending] in
            guard s.channel === channel else { return [] }
            s.channel = nil
            s.loggedIn = false
            s.banner = nil
            let all = Array(s.pending.values)
            s.pending.removeAll()
            return all
        }
        for p in failed {
            p.timer?.cancel()
            p.continuation.resume(throwing: AMIError.disconnected)
        }
    }
}

/// Bytes in, frames out, on the channel's event loop.
final class AMIHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let client: AMIClient
    var parser: AMIParser

    init(client: AMIClient, parser: AMIParser) {
        self.client = client
        self.parser = parser
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let frames = buffer.withUnsafeReadableBytes { parser.feed($0) }
        for f in frames { client.received(f, on: context.channel) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.closed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
