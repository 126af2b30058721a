import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An Asterisk Manager Interface peer for tests, speaking the protocol as Asterisk 22 does (the
/// banner, `Login`, `Action`/`ActionID`/`Response`, CRLF lines, a blank line after each message)
/// and replaying the events of a real call (`Fixtures/audio/asterisk-22/*.ami.log`, as received from
/// Asterisk 22.10.1) in real time, with their fields and timestamps unchanged.
///
/// It answers `Login`, `Ping`, `CoreShowChannels` (the channels its replay has created and not
/// hung up) and `MixMonitorMute`: with `holdMutes`, the log's own MixMonitorMute events are not
/// replayed on their own but sent as Asterisk's reaction to the matching action, with the log's
/// timestamp (the peer plays the Asterisk that muted at that instant); otherwise, or when none
/// is left, one is made with the replay's clock. Written by no callrec code: it has its own parser.
public final class AMIPeer: @unchecked Sendable {
    /// One event of the log: when it was received, and its lines.
    public struct Event: Sendable {
        public var recv: Double
        public var fields: [(key: String, value: String)]
        public var name: String { self["Event"] ?? "" }
        public subscript(_ key: String) -> String? { fields.first { $0.key == key }?.value }
        public var wire: String { fields.map { "\($0.key): \($0.value)\r\n" }.joined() + "\r\n" }
        public init(recv: Double, fields: [(key: String, value: String)]) {
            self.recv = recv
            self.fields = fields
        }
    }

    public static let banner = "Asterisk Call Manager/11.0.0"

    /// The events of a log: blocks after `# recv=<unix seconds>` lines.
    public static func load(_ path: String) throws -> [Event] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var events: [Event] = []
        var recv = 0.0
        var fields: [(key: String, value: String)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# recv=") {
                recv = Double(line.dropFirst(7)) ?? 0
            } else if line.isEmpty {
                if !fields.isEmpty { events.append(Event(recv: recv, fields: fields)) }
                fields = []
            } else if let colon = line.firstIndex(of: ":") {
                let key = String(line[..<colon])
                var v = line[line.index(after: colon)...]
                if v.first == " " { v = v.dropFirst() }
                fields.append((key: key, value: String(v)))
            }
        }
        if !fields.isEmpty { events.append(Event(recv: recv, fields: fields)) }
        return events
    }

    public let username: String
    public let secret: String
    public var holdMutes: Bool
    private struct State {
        var server: Channel?
        var connections: [ObjectIdentifier: (Channel, loggedIn: Bool)] = [:]
        var actions: [[String: String]] = []
        var answerMutes = true
        var held: [Event] = []
        var live: [String: Event] = [:]  // uniqueid → its latest snapshot
        var replayStartWall: Double?
        var firstTimestamp: Double?
        var logins = 0
    }
    private let state = NIOLockedValueBox(State())
    let group = MultiThreadedEventLoopGroup.singleton

    public init(username: String = "callrec", secret: String = "s3cret pass", holdMutes: Bool = true) {
        self.username = username
        self.secret = secret
        self.holdMutes = holdMutes
    }

    /// Listens on a loopback port (0: any); returns it.
    @discardableResult
    public func start(port: Int = 0) throws -> Int {
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PeerHandler(peer: self))
                }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        state.withLockedValue { $0.server = server }
        return server.localAddress?.port ?? port
    }

    /// Stops listening and closes every connection: Asterisk is down.
    public func stop() {
        let (server, conns) = state.withLockedValue { s in (s.server, s.connections.values.map(\.0)) }
        try? server?.close().wait()
        for c in conns { try? c.close().wait() }
        state.withLockedValue { $0.server = nil }
    }

    /// Closes the connections but keeps listening: the link broke.
    public func dropConnections() {
        for c in state.withLockedValue({ $0.connections.values.map(\.0) }) { try? c.close().wait() }
    }

    /// Whether MixMonitorMute actions are answered (false: Asterisk does not confirm).
    public var answerMutes: Bool {
        get { state.withLockedValue { $0.answerMutes } }
        set { state.withLockedValue { $0.answerMutes = newValue } }
    }

    /// Every action received, in order (fields by key).
    public var actions: [[String: String]] { state.withLockedValue { $0.actions } }
    public var logins: Int { state.withLockedValue { $0.logins } }
    public var loggedInConnections: Int { state.withLockedValue { $0.connections.values.filter(\.loggedIn).count } }

    /// Waits (up to `timeout` seconds) for an action matching `match`.
    public func waitForAction(timeout: TimeInterval = 90, _ match: @escaping ([String: String]) -> Bool) async -> [String: String]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let a = actions.first(where: match) { return a }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return nil
    }

    /// Waits for a logged-in connection.
    public func waitForLogin(count: Int = 1, timeout: TimeInterval = 90) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if logins >= count && loggedInConnections > 0 { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return false
    }

    /// Sends `events` to every logged-in connection at the pace they were received (`speed` 1:
    /// real time), calling `before` just ahead of each (the test starts the recording's writer at
    /// MixMonitorStart, stops it at the Hangup). Held MixMonitorMute events are kept for the actions.
    public func replay(_ events: [Event], speed: Double = 1, before: (Event) async throws -> Void = { _ in }) async throws {
        guard let first = events.first else { return }
        let start = Date().timeIntervalSince1970
        state.withLockedValue { s in
            s.replayStartWall = start
            s.firstTimestamp = first["Timestamp"].flatMap(Double.init)
            if holdMutes { s.held = events.filter { $0.name == "MixMonitorMute" } }
        }
        for e in events {
            if holdMutes && e.name == "MixMonitorMute" { continue }
            let due = start + (e.recv - first.recv) / speed
            let wait = due - Date().timeIntervalSince1970
            if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
            try await before(e)
            send(e)
        }
    }

    /// The instant of the replayed call's clock now (its first Timestamp plus the time since).
    public var clock: Double {
        state.withLockedValue { s in
            guard let start = s.replayStartWall, let t0 = s.firstTimestamp else { return Date().timeIntervalSince1970 }
            return t0 + Date().timeIntervalSince1970 - start
        }
    }

    /// Sends one event to every logged-in connection (and follows the channels it creates and ends).
    public func send(_ e: Event) {
        let conns = state.withLockedValue { s -> [Channel] in
            if let u = e["Uniqueid"] {
                if e.name == "Hangup" { s.live[u] = nil } else if e["Channel"] != nil { s.live[u] = e }
            }
            return s.connections.values.filter(\.loggedIn).map(\.0)
        }
        for c in conns { c.writeAndFlush(ByteBuffer(string: e.wire), promise: nil) }
    }

    // MARK: actions

    fileprivate func connected(_ c: Channel) {
        state.withLockedValue { $0.connections[ObjectIdentifier(c)] = (c, false) }
        c.writeAndFlush(ByteBuffer(string: Self.banner + "\r\n"), promise: nil)
    }

    fileprivate func disconnected(_ c: Channel) {
        _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(c)) }
    }

    fileprivate func action(_ a: [String: String], on c: Channel) {
        state.withLockedValue { $0.actions.append(a) }
        let id = a["ActionID"].map { "ActionID: \($0)\r\n" } ?? ""
        func reply(_ s: String) { c.writeAndFlush(ByteBuffer(string: s), promise: nil) }
        let loggedIn = state.withLockedValue { $0.connections[ObjectIdentifier(c)]?.loggedIn ?? false }
        switch a["Action"]?.lowercased() ?? "" {
        case "login":
            guard a["Username"] == username, a["Secret"] == secret else {
                reply("Response: Error\r\n\(id)Message: Authentication failed\r\n\r\n")
                c.close(promise: nil)
                return
            }
            state.withLockedValue { s in
                s.connections[ObjectIdentifier(c)]?.loggedIn = true
                s.logins += 1
            }
            reply("Response: Success\r\n\(id)Message: Authentication accepted\r\n\r\n")
            reply("Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 10\r\nLastReload: 10\r\nStatus: Fully Booted\r\n\r\n")
        case _ where !loggedIn:
            reply("Response: Error\r\n\(id)Message: Permission denied\r\n\r\n")
        case "ping":
            reply("Response: Success\r\n\(id)Ping: Pong\r\nTimestamp: \(String(format: "%.6f", Date().timeIntervalSince1970))\r\n\r\n")
        case "coreshowchannels":
            let live = state.withLockedValue { Array($0.live.values) }
            reply("Response: Success\r\n\(id)EventList: start\r\nMessage: Channels will follow\r\n\r\n")
            for e in live {
                reply("Event: CoreShowChannel\r\n\(id)Channel: \(e["Channel"] ?? "")\r\nUniqueid: \(e["Uniqueid"] ?? "")\r\nLinkedid: \(e["Linkedid"] ?? "")\r\n\r\n")
            }
            reply("Event: CoreShowChannelsComplete\r\n\(id)EventList: Complete\r\nListItems: \(live.count)\r\n\r\n")
        case "mixmonitormute":
            guard state.withLockedValue({ $0.answerMutes }) else { return }
            let channel = a["Channel"] ?? ""
            let snapshot = state.withLockedValue { s in s.live.values.first { $0["Channel"] == channel } }
            guard let snapshot else {
                reply("Response: Error\r\n\(id)Message: No such channel\r\n\r\n")
                return
            }
            let on = a["State"] == "1"
            reply("Response: Success\r\n\(id)\r\n")
            let held = state.withLockedValue { s -> Event? in
                guard let i = s.held.firstIndex(where: { $0["Channel"] == channel && $0["State"] == (on ? "1" : "0") }) else { return nil }
                return s.held.remove(at: i)
            }
            var event = held ?? snapshot
            if held == nil {
                event.fields = [(key: "Event", value: "MixMonitorMute"), (key: "Privilege", value: "call,all"),
                                (key: "Timestamp", value: String(format: "%.6f", clock))]
                    + snapshot.fields.filter { !["Event", "Privilege", "Timestamp", "Direction", "State"].contains($0.key) && !$0.key.hasPrefix("Bridge") }
                    + [(key: "Direction", value: a["Direction"] ?? "both"), (key: "State", value: on ? "1" : "0")]
            }
            send(event)
        default:
            reply("Response: Error\r\n\(id)Message: Invalid/unknown command\r\n\r\n")
        }
    }
}

/// Lines in, actions out (its own small parser: CRLF or LF lines, a blank line ends an action).
final class PeerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let peer: AMIPeer
    var pending = ""

    init(peer: AMIPeer) { self.peer = peer }

    func channelActive(context: ChannelHandlerContext) {
        peer.connected(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.disconnected(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending += buffer.readString(length: buffer.readableBytes) ?? ""
        pending = pending.replacingOccurrences(of: "\r\n", with: "\n")
        while let end = pending.range(of: "\n\n") {
            let block = pending[..<end.lowerBound]
            pending = String(pending[end.upperBound...])
            var fields: [String: String] = [:]
            for line in block.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                var v = line[line.index(after: colon)...]
                if v.first == " " { v = v.dropFirst() }
                fields[String(line[..<colon])] = String(v)
            }
            if !fields.isEmpty { peer.action(fields, on: context.channel) }
        }
    }
}
