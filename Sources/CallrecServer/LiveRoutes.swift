import CallrecCatalog
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// What an event stream carries: a change of the live calls, recordings added or changed (the
/// catalog's change listeners), a heartbeat, or the end (logout).
enum LiveEvent: Sendable {
    case calls
    case recordings([String])
    case heartbeat
}

/// The open event streams: at most `maxStreams` at once and `maxPerKey` per signed-in session or
/// token subject (429 beyond, `too_many_streams`). Hears the catalog's and the live calls' changes
/// once and hands them to every stream; `end(key:)` closes a session's streams (logout).
public final class EventHub: @unchecked Sendable {
    let maxStreams: Int
    let maxPerKey: Int
    private let lock = NSLock()
    private var streams: [UInt64: (key: String, continuation: AsyncStream<LiveEvent>.Continuation)] = [:]
    private var next: UInt64 = 0

    init(changes: RecordingChanges, live: LiveCalls, maxStreams: Int = 64, maxPerKey: Int = 4) {
        self.maxStreams = maxStreams
        self.maxPerKey = maxPerKey
        changes.listen { [weak self] ids in self?.broadcast(.recordings(ids)) }
        _ = live.listen { [weak self] in self?.broadcast(.calls) }
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return streams.count
    }

    /// A new stream for `key`, or nil when the caps are reached.
    func open(key: String) -> (UInt64, AsyncStream<LiveEvent>)? {
        // Newest events win: a slow reader skips to the present rather than hold memory.
        let (stream, continuation) = AsyncStream<LiveEvent>.makeStream(bufferingPolicy: .bufferingNewest(64))
        lock.lock()
        defer { lock.unlock() }
        guard streams.count < maxStreams, streams.values.filter({ $0.key == key }).count < maxPerKey else { return nil }
        next += 1
        streams[next] = (key, continuation)
        return (next, stream)
    }

    func refusal(key: String) -> APIError? {
        lock.lock()
        defer { lock.unlock() }
        if streams.count >= maxStreams { return APIError(.serviceUnavailable, "too_many_streams", "the server has \(maxStreams) event streams open; try again later") }
        if streams.values.filter({ $0.key == key }).count >= maxPerKey {
            return APIError(.tooManyRequests, "too_many_streams", "at most \(maxPerKey) event streams at once for one session or token")
        }
        return nil
    }

    func close(_ id: UInt64) {
        lock.lock()
        let s = streams.removeValue(forKey: id)
        lock.unlock()
        s?.continuation.finish()
    }

    /// Ends every stream of `key` now (a console session that signed out).
    func end(key: String) {
        lock.lock()
        let ended = streams.filter { $0.value.key == key }
        for id in ended.keys { streams[id] = nil }
        lock.unlock()
        for s in ended.values { s.continuation.finish() }
    }

    func broadcast(_ e: LiveEvent) {
        lock.lock()
        let all = streams.values.map(\.continuation)
        lock.unlock()
        for c in all { c.yield(e) }
    }

    func send(_ id: UInt64, _ e: LiveEvent) {
        lock.lock()
        let c = streams[id]?.continuation
        lock.unlock()
        c?.yield(e)
    }
}

/// `GET /calls/live` (JSON) and `GET /events` (Server-Sent Events), for bearer tokens of every
/// role that reads recordings; the console serves the same under `/console/api/`. Company scope is
/// the recordings': a scoped principal sees its company's calls only (not those whose company is
/// not known yet).
struct LiveRoutes: Sendable {
    let service: RecordingService
    let auth: Authenticator
    let live: LiveCalls
    let hub: EventHub
    /// Between heartbeats (a comment line), when a stream also checks that its credentials still hold.
    let heartbeat: Duration

    static let readers: Set<Role> = [.viewer, .compliance, .admin]

    func register(on router: Router<CallrecContext>) {
        let api = router.group().add(middleware: Authenticate(auth, roles: Self.readers))
        api.get("/calls/live", use: calls)
        api.get("/events", use: events)
    }

    struct CallsJSON: Encodable { var calls: [LiveCall] }

    func visible(to principal: Principal) -> [LiveCall] {
        live.current().filter { principal.scope.allows($0.company) }
    }

    @Sendable func calls(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try context.who
        if principal == .signedURL { throw APIError(.unauthorized, "unauthorized", "live calls need a bearer token") }
        return try JSONResponse.make(CallsJSON(calls: visible(to: principal)))
    }

    @Sendable func events(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try context.who
        guard case .token(let claims) = principal else { throw APIError(.unauthorized, "unauthorized", "events need a bearer token") }
        return try stream(request, principal: principal, key: "token:" + claims.sub.value, expires: claims.exp.value) { [auth] in
            // A token revoked since the stream opened ends it at the next heartbeat.
            !auth.verifiedTokens.isRevoked(claims)
        }
    }

    /// An event stream for `principal` until `expires`, the client leaves, or `stillValid` says no
    /// (asked at each heartbeat: a console session signed out or disabled elsewhere).
    func stream(
        _ request: Request, principal: Principal, key: String, expires: Date?, stillValid: @escaping @Sendable () async -> Bool
    ) throws -> Response {
        guard request.headers[.accept]?.contains("text/event-stream") == true else {
            throw APIError(.notAcceptable, "not_acceptable", "this is a Server-Sent Events stream: send Accept: text/event-stream")
        }
        if let refusal = hub.refusal(key: key) { throw refusal }
        guard let (id, events) = hub.open(key: key) else { throw APIError(.tooManyRequests, "too_many_streams", "too many event streams") }
        let service = self.service, hub = self.hub, heartbeat = self.heartbeat, now = service.now
        let body = ResponseBody { writer in
            let beat = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    hub.send(id, .heartbeat)
                }
            }
            defer {
                beat.cancel()
                hub.close(id)
            }
            func send(_ text: String) async throws { try await writer.write(ByteBuffer(string: text)) }
            func callsEvent() throws -> String {
                let json = try JSONEncoder.callrec.encode(CallsJSON(calls: self.visible(to: principal)))
                return "event: calls\ndata: " + String(decoding: json, as: UTF8.self) + "\n\n"
            }
            try await send("retry: 3000\n\n" + (try callsEvent()))
            var lastCalls = ""
            // A server shutting down ends its streams (clients reconnect to the next one) rather
            // than wait for them.
            try await withGracefulShutdownHandler {
            loop: for await e in events {
                if let expires, now() >= expires { break }
                switch e {
                case .heartbeat:
                    guard await stillValid() else { break loop }
                    try await send(": heartbeat\n\n")
                case .calls:
                    let text = try callsEvent()
                    if text != lastCalls { try await send(text) }
                    lastCalls = text
                case .recordings(let ids):
                    for uid in ids.prefix(200) {
                        // Through the service: another company's recording is simply not there.
                        guard let row = try? await service.find(uid, for: principal) else { continue }
                        let json = try JSONEncoder.callrec.encode(RecordingJSON(row))
                        try await send("event: recording\ndata: " + String(decoding: json, as: UTF8.self) + "\n\n")
                    }
                }
            }
            } onGracefulShutdown: {
                hub.close(id)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }
}
