import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// How many connections the server holds and how long it waits on them. 1,100 idle sockets used to
/// exhaust systemd's default 1,024 descriptors: `/healthz` timed out and the spool watcher could
/// not open files. Now idle and half-sent connections are closed, at the cap a newcomer takes an
/// idle connection's place, and only when every place has a request in progress is it answered
/// `503` and closed at once, rather than left waiting in the accept queue.
public struct ConnectionLimits: Sendable {
    /// Connections held at once; more are refused politely.
    public var maxConnections: Int
    /// A connection with no request in progress is closed after this.
    public var idleTimeout: TimeAmount
    /// A request's head (request line and headers) must arrive within this of its first byte.
    public var headerTimeout: TimeAmount

    public init(maxConnections: Int, idleTimeout: TimeAmount = .seconds(60), headerTimeout: TimeAmount = .seconds(10)) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
    }

    /// From `CALLREC_MAX_CONNECTIONS`, `CALLREC_IDLE_TIMEOUT` and `CALLREC_HEADER_TIMEOUT` (seconds).
    /// Raises the soft descriptor limit to the hard one first (as nginx's `worker_rlimit_nofile`
    /// would be set by hand); the default cap leaves 256 descriptors for files, the catalog and the
    /// spool watcher.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> ConnectionLimits {
        var rl = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0, rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { rl = raised }
        }
        let descriptors = rl.rlim_cur > 1 << 20 ? 1 << 20 : Int(rl.rlim_cur)
        let fallback = max(16, min(65_536, descriptors - 256))
        func seconds(_ name: String, _ d: Int64) -> TimeAmount {
            env[name].flatMap(Double.init).map { .nanoseconds(Int64($0 * 1e9)) } ?? .seconds(d)
        }
        return ConnectionLimits(
            maxConnections: env["CALLREC_MAX_CONNECTIONS"].flatMap(Int.init).map { min($0, fallback) } ?? fallback,
            idleTimeout: seconds("CALLREC_IDLE_TIMEOUT", 60), headerTimeout: seconds("CALLREC_HEADER_TIMEOUT", 10))
    }
}

/// Counts open connections against the cap. At the cap, a new connection takes the place of an
/// idle one (no request in progress), closed for it, as nginx reuses keep-alive connections when
/// `worker_connections` run out: a crowd of idle sockets cannot lock new clients out; only a cap
/// full of requests in progress refuses (503).
final class ConnectionCounter: Sendable {
    let limits: ConnectionLimits
    private struct State {
        var open = 0
        /// Connections with no request in progress, by their ObjectIdentifier.
        var idle: [ObjectIdentifier: any Channel] = [:]
        /// Connections closed to make room: their close frees no place (the newcomer took it).
        var evicted: Set<ObjectIdentifier> = []
    }
    private let state = NIOLockedValueBox(State())

    init(_ limits: ConnectionLimits) { self.limits = limits }

    var count: Int { state.withLockedValue { $0.open } }

    /// Takes a place — at the cap, an idle connection's, closing it — or false when every place
    /// has a request in progress.
    func tryOpen() -> Bool {
        enum Outcome { case admitted, full, evict(any Channel) }
        let outcome: Outcome = state.withLockedValue { s in
            if s.open < limits.maxConnections {
                s.open += 1
                return .admitted
            }
            // A connection closing on its own may still be listed: skip those (their close frees a place).
            while let (id, victim) = s.idle.first {
                s.idle[id] = nil
                guard victim.isActive else { continue }
                s.evicted.insert(id)  // in the same lock: a close of its own meanwhile frees no place either
                return .evict(victim)
            }
            return .full
        }
        switch outcome {
        case .admitted: return true
        case .full: return false
        case .evict(let victim):
            victim.close(promise: nil)
            return true
        }
    }

    /// A connection that took a place has closed.
    func closed(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            s.idle[id] = nil
            if s.evicted.remove(id) == nil { s.open -= 1 }
        }
    }

    /// The connection has no request in progress (true), or has one (false).
    func setIdle(_ channel: any Channel, _ idle: Bool) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            guard !s.evicted.contains(id) else { return }
            if idle && channel.isActive { s.idle[id] = channel } else { s.idle[id] = nil }
        }
    }

    /// Answers a connection past the cap and closes it, as soon as it is active.
    final class Refuse: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var done = false

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { refuse(context) }
        }
        func channelActive(context: ChannelHandlerContext) {
            refuse(context)
            context.fireChannelActive()
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // whatever it asks

        private func refuse(_ context: ChannelHandlerContext) {
            guard !done else { return }
            done = true
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ConnectionCounter.refusal)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// The whole answer to a connection past the cap.
    static let refusal: ByteBuffer = {
        let body = #"{"error":{"code":"too_many_connections","message":"the server holds as many connections as it may; retry shortly"}}"#
        return ByteBuffer(string: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body)
    }()
}

/// Closes a connection that is idle past `idleTimeout`, or whose request head has not fully arrived
/// within `headerTimeout` of its first byte (a slow-loris trickle resets no timer). Two faces on
/// one state: `bytes` sits first in the pipeline and sees raw reads; `parts` sits after the HTTP
/// decoder, before `AudioFastPath`, and sees every request head and every response end, the fast
/// path's as well as the router's.
final class ConnectionTimeouts {
    let limits: ConnectionLimits
    /// Told when the connection has, or has no, request in progress (an idle one may be closed to
    /// make room for a newcomer at the cap).
    let counter: ConnectionCounter?
    private var inFlight = 0
    private var partial = false
    /// When the connection is closed unless something happens first (nil: never, a request is in
    /// progress). Moving it costs nothing: one timer is scheduled at a time, and when it fires
    /// early it schedules itself again for the deadline. Scheduling and cancelling a timer at
    /// every request's first byte, head and end was about 6% of a fast-path range (perf).
    private var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?

    init(_ limits: ConnectionLimits, counter: ConnectionCounter? = nil) {
        self.limits = limits
        self.counter = counter
    }

    private func arm(_ context: ChannelHandlerContext, _ after: TimeAmount) {
        let at = NIODeadline.now() + after
        deadline = at
        if let timerAt, timerAt <= at { return }  // fires first, then waits on for the deadline
        schedule(context.channel, at: at)
    }

    private func schedule(_ channel: any Channel, at: NIODeadline) {
        timer?.cancel()
        timerAt = at
        timer = channel.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: at) { [self] in
            timer = nil
            timerAt = nil
            guard let deadline else { return }
            if deadline <= .now() { channel.close(promise: nil) } else { schedule(channel, at: deadline) }
        }
    }

    private func disarm() {
        deadline = nil
    }

    fileprivate func inactiveCleanup() {
        deadline = nil
        timer?.cancel()
        timer = nil
        timerAt = nil
    }

    fileprivate func active(_ context: ChannelHandlerContext) {
        arm(context, limits.idleTimeout)
        counter?.setIdle(context.channel, true)
    }

    func bytesRead(_ context: ChannelHandlerContext) {
        guard inFlight == 0, !partial else { return }
        partial = true
        arm(context, limits.headerTimeout)
    }

    func headRead(_ context: ChannelHandlerContext) {
        partial = false
        inFlight += 1
        disarm()
        if inFlight == 1 { counter?.setIdle(context.channel, false) }
    }

    func responseEnded(_ context: ChannelHandlerContext) {
        inFlight = max(0, inFlight - 1)
        if inFlight == 0 {
            arm(context, partial ? limits.headerTimeout : limits.idleTimeout)
            counter?.setIdle(context.channel, true)
        }
    }

    fileprivate func inactive() { inactiveCleanup() }

    var bytes: Bytes { Bytes(self) }
    var parts: Parts { Parts(self) }

    final class Bytes: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        let state: ConnectionTimeouts
        init(_ state: ConnectionTimeouts) { self.state = state }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { state.active(context) }
        }
        func channelActive(context: ChannelHandlerContext) {
            state.active(context)
            context.fireChannelActive()
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            state.bytesRead(context)
            context.fireChannelRead(data)
        }
        func channelInactive(context: ChannelHandlerContext) {
            state.inactive()
            context.fireChannelInactive()
        }
    }

    final class Parts: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        let state: ConnectionTimeouts
        init(_ state: ConnectionTimeouts) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) { state.headRead(context) }
            context.fireChannelRead(data)
        }
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { state.responseEnded(context) }
            context.write(data, promise: promise)
        }
    }
}
