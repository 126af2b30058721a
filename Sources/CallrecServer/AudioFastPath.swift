import CallrecCatalog
import CallrecMedia
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOPosix

/// The player's request — `GET`/`HEAD /recordings/<id>.opus?exp=…&sig=…`, or the same path with
/// a bearer token — answered on the event loop that read it, with the file's bytes handed to the
/// kernel by sendfile(2).
///
/// Why: a player's seeks are the hot path, and through the router each one cost two task hops,
/// a copy of the bytes into a buffer and the async writer (scripts/bench-serve measured 14,000
/// req/s against nginx's 36,000 for 64 KiB ranges). Hummingbird's response body cannot carry a
/// `FileRegion`, so this handler sits in front of its HTTP/1 codec and answers only what it can
/// answer exactly as the router would: the canonical signed URL (nothing percent-encoded, no
/// other query parameters), or `/recordings/<id>.opus` with no query and a bearer token the
/// router has verified before (`VerifiedTokens`: `exp` checked again now) whose role reads audio,
/// of a recording that exists, is visible to the principal (the service's company scope), and
/// whose file is open (`OpenAudioCache`), with at most one range. It decides before it has any
/// side effect; everything else — tokens not seen yet, `.wav`, JSON, errors,
/// `multipart/byteranges` — goes on to the router unchanged, which gives the same answer.
/// The decision itself (ranges, preconditions, headers) is `AudioResponder.plan`, shared with the
/// router's path, and the request is audited (the same entry: actor, role, company, range,
/// client) and counted in `/metrics` the same way.
///
/// Responses leave in request order: while the router owes a response on this connection, later
/// requests go to the router too. So do requests past `maxWriting` unfinished answers or with
/// the socket's buffer full (the router reads one request at a time: that is the backpressure).
/// After a request that asks to close the connection, nothing more is read.
final class AudioFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The route as Hummingbird's MetricsMiddleware labels it (`/recordings/{id}`), so that
    /// `/metrics` shows one series for both paths.
    static let route = RecordingRoutes.recordingPath.description

    let routes: RecordingRoutes
    let serverName: String
    /// Requests handed to the router whose response has not ended yet.
    private var routerOwes = 0
    /// The parts of the request being read go to the router.
    private var forwarding = false
    /// A request this handler answers once its end has been read.
    private var claimed: Claim?
    /// Fast responses still being written; a quiesce (graceful shutdown) waits for them.
    private var inFlight = AnswersInFlight()
    /// A request asked to close the connection: later ones are not read.
    private var closing = false
    /// The request being read asks to close the connection.
    private var lastOne = false
    /// Answers being written at most, per connection, before requests wait their turn in the router.
    static let maxWriting = 8

    struct Claim {
        let isHead: Bool
        let keepAlive: Bool
        /// The Range field as the router reads it (audited).
        let range: String?
        let id: String
        let principal: Principal
        let audio: StoredAudio
        let answer: Answer
        /// The recording's open file (`OpenAudioCache`), held until the response ends.
        let file: OpenAudio
        /// A sealed file's range, decrypted and authenticated while claiming (nil: plaintext, sent
        /// with sendfile).
        var decrypted: ByteBuffer?
        let started: UInt64
    }

    /// What a claimed request is answered.
    enum Answer {
        /// As `AudioResponder.plan` decided.
        case plan(AudioPlan)
        /// No conditional field and no range, or one satisfiable range (`AudioResponder.plan`
        /// would answer 200 or 206 with exactly these fields): the head is written from the open
        /// file's rendered fields (`OpenAudio.fields`) without building `HTTPFields` (only for
        /// `RawAudioFastPath`, which writes heads itself; perf put the plan and the head's
        /// formatting at 7% of a range).
        case simple(ClosedRange<Int>?)

        var status: HTTPResponseStatus {
            switch self {
            case .plan(let plan): return HTTPResponseStatus(statusCode: plan.status.code)
            case .simple(let range): return range == nil ? .ok : .partialContent
            }
        }
    }

    init(routes: RecordingRoutes, serverName: String) {
        self.routes = routes
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a request that closes the connection, nothing more is processed (RFC 9112 §9.6).
        if closing { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            lastOne = !head.isKeepAlive
            // Backpressure: past `maxWriting` unfinished answers, or with the socket's buffer full,
            // requests go to the router, which reads one at a time.
            if routerOwes == 0, !inFlight.quiescing, inFlight.writing < Self.maxWriting, context.channel.isWritable, let claim = claim(head) {
                claimed = claim
                forwarding = false
            } else {
                routerOwes += 1
                forwarding = true
                context.fireChannelRead(data)
            }
        case .body:
            // A claimed request has no body (claim refuses Content-Length and Transfer-Encoding).
            if forwarding { context.fireChannelRead(data) }
        case .end:
            if lastOne { closing = true }
            if forwarding {
                forwarding = false
                context.fireChannelRead(data)
            } else if let claim = claimed {
                claimed = nil
                answer(claim, context: context)
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routerOwes = max(0, routerOwes - 1) }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Hummingbird closes idle connections on graceful shutdown; it cannot see our responses,
        // so it hears of the shutdown only once they are written.
        if inFlight.passes(event) { context.fireUserInboundEventTriggered(event) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        claimed = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        claimed = nil
        context.fireChannelInactive()
    }

    // MARK: deciding

    /// The request, if this handler can answer it exactly as the router would: a canonical signed
    /// URL, or `/recordings/<id>.opus` with a bearer token verified before (`VerifiedTokens`,
    /// `exp` checked now) whose role may read audio; the recording's row cached and visible to the
    /// principal (the service's scope), its file open.
    private func claim(_ head: HTTPRequestHead) -> Claim? {
        guard head.method == .GET || head.method == .HEAD,
            !head.headers.contains(name: "content-length") || head.headers["content-length"] == ["0"],
            !head.headers.contains(name: "transfer-encoding")
        else { return nil }
        let authorization = head.headers["authorization"]
        guard
            case .claimed(let claim) = claim(
                AudioAsk(isHead: head.method == .HEAD, header: { name in Self.joined(head.headers[name.rawName]) }),
                keepAlive: head.isKeepAlive, uri: head.uri,
                authorization: authorization.isEmpty ? nil : authorization.count == 1 ? authorization[0] : "")
        else { return nil }
        return claim
    }

    enum Decision {
        case claimed(Claim)
        /// The router's: it answers exactly as it would have.
        case unclaimed
        /// Authenticated, but the recording's row is not in the row cache (or not visible, or its
        /// file does not open): a lookup off the event loop (`RecordingService.cachedFind`) may
        /// let it be claimed after all.
        case notCached(id: String, principal: Principal)
    }

    /// The decision for a GET (or HEAD) of `uri`, whichever way it was read (`RawAudioFastPath`
    /// reads the bytes itself): `ask` holds the method and the conditional and range fields as
    /// HTTPFields would give them, `authorization` the one Authorization field's value (nil: none).
    func claim(_ ask: AudioAsk, keepAlive: Bool, uri: String, authorization: String?, simple: Bool = false) -> Decision {
        let id: String
        let principal: Principal
        let now = routes.auth.now()
        let query = uri.utf8.contains(0x3F)  // '?': only a signed URL has one
        if query, let (signedID, expires) = routes.auth.signer.verified.lookup(uri), expires > Int(now.timeIntervalSince1970) {
            // This very URL verified before (a player asks for many ranges of one URL).
            id = signedID
            principal = .signedURL
        } else if query, let (path, signedID, exp, sig) = Self.signedOpus(uri) {
            guard routes.auth.signer.verify(path: path, exp: exp, sig: sig, now: now, id: signedID) else { return .unclaimed }
            id = signedID
            principal = .signedURL
        } else if let plainID = Self.plainOpus(uri) {
            guard let authorization, let claims = routes.auth.cachedBearer(authorization), RecordingRoutes.mediaRoles.contains(claims.role)
            else { return .unclaimed }
            id = plainID
            principal = .token(claims)
        } else {
            return .unclaimed
        }
        guard let (audio, file) = routes.openedAudio(id, principal) else { return .notCached(id: id, principal: principal) }
        let answer: Answer
        if simple, audio.size > 0, ask.ifMatch == nil, ask.ifNoneMatch == nil, ask.ifModifiedSince == nil, ask.ifUnmodifiedSince == nil,
            ask.ifRange == nil, case let ranges = ByteRanges.parse(ask.range, size: audio.size)
        {
            switch ranges {
            case .none: answer = .simple(nil)
            case .ranges(let list) where list.count == 1: answer = .simple(list[0])
            default: answer = .plan(Self.plan(ask, audio))
            }
        } else {
            answer = .plan(Self.plan(ask, audio))
        }
        var decrypted: ByteBuffer?
        if file.sealed != nil && !ask.isHead {
            let range: Range<Int>?
            switch answer {
            case .plan(.multipart): return .unclaimed
            case .plan(.partial(let r, _)), .simple(.some(let r)): range = r.lowerBound..<(r.upperBound + 1)
            case .plan(.whole(let size, _)) where size > 0: range = 0..<size
            case .simple(nil): range = 0..<audio.size
            default: range = nil
            }
            if let range {
                guard let d = decrypt(file, range) else { return .unclaimed }
                decrypted = d
            }
        } else if case .plan(.multipart) = answer {
            return .unclaimed
        }
        return .claimed(Claim(
            isHead: ask.isHead, keepAlive: keepAlive, range: ask.range, id: id, principal: principal, audio: audio, answer: answer, file: file,
            decrypted: decrypted, started: DispatchTime.now().uptimeNanoseconds))
    }

    static func plan(_ ask: AudioAsk, _ audio: StoredAudio) -> AudioPlan {
        AudioResponder.plan(ask, size: audio.size, etag: audio.opusETag, lastModified: audio.modified, contentType: StoredAudio.opusType)
    }

    /// A sealed file's range, up to 1 MiB, decrypted and authenticated now, before anything is
    /// decided; any failure (a damaged segment) sends the request to the router, which answers the
    /// error (and logs and counts it).
    private func decrypt(_ file: OpenAudio, _ range: Range<Int>) -> ByteBuffer? {
        guard let sealed = file.sealed, range.count <= FileBody.longBody else { return nil }
        let box = Self.scratch.currentValue ?? {
            let b = Scratch()
            Self.scratch.currentValue = b
            return b
        }()
        var out = ByteBufferAllocator().buffer(capacity: range.count)
        do {
            try sealed.read(file.descriptor, range, into: &out, scratch: &box.bytes, path: file.path)
        } catch {
            return nil
        }
        return out
    }

    /// A sealed segment's bytes as read, one buffer per event loop thread.
    final class Scratch { var bytes: [UInt8] = [] }
    nonisolated(unsafe) private static let scratch = ThreadSpecificVariable<Scratch>()

    /// The uniqueid of exactly `/recordings/<id>.opus` (no query, nothing percent-encoded).
    static func plainOpus(_ uri: String) -> String? {
        let u = uri.utf8
        let prefix = "/recordings/".utf8
        guard u.count > prefix.count + 5, u.starts(with: prefix), u.suffix(5).elementsEqual(".opus".utf8), !u.contains(0x3F) else { return nil }
        let id = String(decoding: u.dropFirst(prefix.count).dropLast(5), as: UTF8.self)
        return UniqueID.isValid(id) ? id : nil
    }

    /// `(path, uniqueid, exp, sig)` of `/recordings/<id>.opus?exp=<digits>&sig=<base64url>` (either
    /// order), or nil for anything else: other or repeated parameters, percent-encoding, a bad id.
    static func signedOpus(_ uri: String) -> (String, String, String, String)? {
        let u = Array(uri.utf8)
        let prefix = Array("/recordings/".utf8)
        guard u.count > prefix.count, u.starts(with: prefix), let q = u.firstIndex(of: 0x3F) else { return nil }  // '?'
        guard q - prefix.count > 5, u[(q - 5)..<q].elementsEqual(".opus".utf8) else { return nil }
        let id = String(decoding: u[prefix.count..<(q - 5)], as: UTF8.self)
        guard UniqueID.isValid(id) else { return nil }
        var exp: Range<Int>?
        var sig: Range<Int>?
        var i = q + 1
        while i <= u.count {
            var j = i
            while j < u.count && u[j] != 0x26 { j += 1 }  // '&'
            if exp == nil, j - i >= 4, u[i..<(i + 4)].elementsEqual("exp=".utf8) {
                exp = (i + 4)..<j
            } else if sig == nil, j - i >= 4, u[i..<(i + 4)].elementsEqual("sig=".utf8) {
                sig = (i + 4)..<j
            } else {
                return nil
            }
            i = j + 1
        }
        guard let exp, let sig, !exp.isEmpty, u[exp].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            !sig.isEmpty, u[sig].allSatisfy({ Self.base64url[Int($0)] })
        else { return nil }
        return (String(decoding: u[..<q], as: UTF8.self), id, String(decoding: u[exp], as: UTF8.self), String(decoding: u[sig], as: UTF8.self))
    }

    /// A field's values as HTTPFields gives them: joined with ", ", nil when absent.
    static func joined(_ values: [String]) -> String? { values.isEmpty ? nil : values.joined(separator: ", ") }

    private static let base64url: [Bool] = (0..<256).map { b in
        (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x2D || b == 0x5F
    }

    // MARK: answering

    /// What a claimed request is answered: status, fields (the plan's, then Date, Server and
    /// Connection as the router's encoder writes them), and body.
    struct Prepared {
        let status: HTTPResponseStatus
        var fields: HTTPFields
        var body: IOData?
        var handle: NIOFileHandle?
        /// The bytes of the plaintext file sent (with `regions: false`, `body` is then nil: the
        /// caller sends them itself, or asks `region(from:)`).
        var fileRange: Range<Int>?

        /// A `FileRegion` of the file's range from `offset` on (the descriptor lent to NIO until
        /// `finished`).
        mutating func region(_ claim: Claim, from offset: Int) -> IOData {
            let h = claim.file.handle()
            handle = h
            return .fileRegion(FileRegion(fileHandle: h, readerIndex: offset, endIndex: fileRange!.upperBound))
        }
    }

    /// The answer to `claim`, its side effects done: audited (GET), counted, active meter raised.
    /// `client`: the connection's peer address (audited).
    func prepare(_ claim: Claim, client: String?, regions: Bool = true) -> Prepared {
        let isHead = claim.isHead
        answeredHere.withLockedValue { $0 += 1 }
        if !isHead {
            routes.recordAudio(claim.principal, wav: false, claim.id, range: claim.range, client: client)
        }
        var body: IOData?
        var handle: NIOFileHandle?
        var fields = HTTPFields()
        /// The bytes sent, when there are any.
        var range: Range<Int>?
        switch claim.answer {
        case .simple(let r):
            range = r.map { $0.lowerBound..<($0.upperBound + 1) } ?? 0..<claim.audio.size
        case .plan(let plan):
            switch plan {
            case .preconditionFailed(let f), .notModified(let f):
                fields = f
            case .unsatisfiable(let f, let err):
                fields = f
                if !isHead { body = .byteBuffer(ByteBuffer(string: err)) }
            case .partial(let r, let f):
                fields = f
                range = r.lowerBound..<(r.upperBound + 1)
            case .whole(let size, let f):
                fields = f
                if size > 0 { range = 0..<size }
            case .multipart(_, let f):
                fields = f  // not claimed; kept for exhaustiveness
            }
            if case .preconditionFailed = plan { fields[.contentLength] = "0" }  // as the router's empty body
        }
        var fileRange: Range<Int>?
        if let range, !isHead {
            if let d = claim.decrypted { body = .byteBuffer(d) } else { fileRange = range }
        }
        (isHead ? activeHead : activeGet).increment()
        var prepared = Prepared(status: claim.answer.status, fields: fields, body: body, handle: handle, fileRange: fileRange)
        if regions, let fileRange { prepared.body = prepared.region(claim, from: fileRange.lowerBound) }
        return prepared
    }

    /// A prepared answer has been written (or failed): the file released, the request measured.
    func finished(_ claim: Claim, _ prepared: Prepared) {
        if let handle = prepared.handle { OpenAudio.release(handle) }
        withExtendedLifetime(claim.file) {}
        meters(isHead: claim.isHead, status: prepared.status.code).record(since: claim.started)
        (claim.isHead ? activeHead : activeGet).decrement()
    }

    private func answer(_ claim: Claim, context: ChannelHandlerContext) {
        let prepared = prepare(claim, client: client(context))
        var headers = HTTPHeaders()
        headers.reserveCapacity(prepared.fields.count + 3)
        for field in prepared.fields { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Date", value: HTTPDateCache.now())
        headers.add(name: "Server", value: serverName)
        let keepAlive = claim.keepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        // Head and body in one send: corked, the head waits for the body's first bytes instead of
        // leaving in a segment of its own (two sends per response were a third of the profile).
        let cork = prepared.body != nil && Self.corks ? context.channel.syncOptions : nil
        try? cork?.setOption(Self.tcpCork, value: 1)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: prepared.status, headers: headers))), promise: nil)
        if let body = prepared.body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        inFlight.started()
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        try? cork?.setOption(Self.tcpCork, value: 0)
        done.futureResult.assumeIsolated().whenComplete { [self] result in
            finished(claim, prepared)
            let held = inFlight.ended()
            if !keepAlive || (try? result.get()) == nil {
                context.close(promise: nil)
            } else if let held {
                context.fireUserInboundEventTriggered(held)
            }
        }
    }

    /// The peer's address as audited, read once per connection (per handler).
    private var clientAddress: String??
    func client(_ context: ChannelHandlerContext) -> String? {
        if let known = clientAddress { return known }
        let address = context.channel.remoteAddress?.ipAddress
        clientAddress = .some(address)
        return address
    }

    static let tcpCork = ChannelOptions.Types.SocketOption(
        level: NIOBSDSocket.OptionLevel(rawValue: CInt(IPPROTO_TCP)), name: NIOBSDSocket.Option(rawValue: CInt(TCP_CORK)))

    // MARK: metrics, as Hummingbird's MetricsMiddleware names them

    /// Requests this handler answered, by data directory. `/metrics` counts both paths as one
    /// series on purpose; this says which one answered (a test's server has a data directory of
    /// its own, so tests running side by side do not count each other's).
    private static let answered = NIOLockedValueBox<[String: NIOLockedValueBox<Int>]>([:])
    static func answers(data root: String) -> Int { counter(data: root).withLockedValue { $0 } }
    /// Of those, the ones `RawAudioFastPath` answered.
    static func rawAnswers(data root: String) -> Int { counter(data: root + " raw").withLockedValue { $0 } }
    var dataRoot: String { routes.service.catalog.data.root }
    lazy var rawAnsweredHere = Self.counter(data: dataRoot + " raw")
    /// Of those, the ones sent whole by `DirectSocket` (none of it through NIO).
    static func directAnswers(data root: String) -> Int { counter(data: root + " direct").withLockedValue { $0 } }
    lazy var directAnsweredHere = Self.counter(data: dataRoot + " direct")
    static func counter(data root: String) -> NIOLockedValueBox<Int> {
        answered.withLockedValue { all in
            if let c = all[root] { return c }
            let c = NIOLockedValueBox(0)
            all[root] = c
            return c
        }
    }

    // Looked up once per connection, not per request (a lock, a string key and a dictionary each).
    private lazy var answeredHere = Self.counter(data: routes.service.catalog.data.root)
    private lazy var activeGet = Self.active(method: "GET")
    private lazy var activeHead = Self.active(method: "HEAD")
    private var metersHere: [UInt: Meters] = [:]
    private func meters(isHead: Bool, status: UInt) -> Meters {
        let key = status << 1 | (isHead ? 1 : 0)
        if let m = metersHere[key] { return m }
        let m = Self.metrics(method: isHead ? "HEAD" : "GET", status: status)
        metersHere[key] = m
        return m
    }

    /// `CALLREC_TCP_CORK=off` sends head and body as they come (for measuring what corking saves:
    /// scripts/bench-serve).
    static let corks = ProcessInfo.processInfo.environment["CALLREC_TCP_CORK"] != "off"

    struct Meters {
        let counter: Counter
        let timer: Metrics.Timer
        func record(since start: UInt64) {
            counter.increment()
            timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
        }
    }
    private static let actives = NIOLockedValueBox<[String: Meter]>([:])
    static func active(method: String) -> Meter {
        actives.withLockedValue { all in
            if let m = all[method] { return m }
            let m = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method)])
            all[method] = m
            return m
        }
    }
    private static let meters = NIOLockedValueBox<[String: Meters]>([:])
    static func metrics(method: String, status: UInt) -> Meters {
        meters.withLockedValue { all in
            let key = "\(method) \(status)"
            if let m = all[key] { return m }
            let dimensions = [("http.route", route), ("http.request.method", method), ("http.response.status_code", String(status))]
            let m = Meters(
                counter: Counter(label: "hb.requests", dimensions: dimensions),
                timer: Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds))
            all[key] = m
            return m
        }
    }
}

/// The answers a fast path (`AudioFastPath`, `RawAudioFastPath`) is writing, and a graceful
/// shutdown held back until they have left: Hummingbird closes idle connections when it hears of
/// one, and it cannot see these answers.
struct AnswersInFlight {
    private(set) var writing = 0
    /// A graceful shutdown began: no more answers are started here.
    private(set) var quiescing = false
    private var held: Any?
    /// Nothing being written and no shutdown held back.
    var idle: Bool { writing == 0 && held == nil }

    mutating func started() { writing += 1 }

    /// Whether an inbound event goes on now: a quiesce waits while answers are being written.
    mutating func passes(_ event: Any) -> Bool {
        guard event is ChannelShouldQuiesceEvent else { return true }
        quiescing = true
        guard writing > 0 else { return true }
        held = event
        return false
    }

    /// An answer has left; when it was the last, the quiesce held back (to fire now).
    mutating func ended() -> Any? {
        writing -= 1
        guard writing == 0, let event = held else { return nil }
        held = nil
        return event
    }
}

/// The HTTP `Date` header, formatted once a second.
enum HTTPDateCache {
    private static let cache = NIOLockedValueBox<(Int, String)>((0, ""))
    static func now() -> String {
        let t = Int(Date().timeIntervalSince1970)
        return cache.withLockedValue { c in
            if c.0 != t { c = (t, HTTPDate.string(Date(timeIntervalSince1970: TimeInterval(t)))) }
            return c.1
        }
    }
}

/// Where the audio fast path reads requests (`CALLREC_FAST_PATH`): `raw` from the socket's bytes
/// (`RawAudioFastPath`) and behind the codec for what that does not claim, `http` behind the
/// codec only (`AudioFastPath`), `off` every request through the router (for measuring:
/// scripts/bench-serve).
enum FastPathMode: String {
    case raw, http, off
    static let current = ProcessInfo.processInfo.environment["CALLREC_FAST_PATH"].flatMap(FastPathMode.init(rawValue:)) ?? .raw

    /// Tests compare the modes on one data directory (servers started afterwards on it use `mode`).
    private static let overrides = NIOLockedValueBox<[String: FastPathMode]>([:])
    static func set(_ mode: FastPathMode?, data root: String) { overrides.withLockedValue { $0[root] = mode } }
    static func mode(data root: String) -> FastPathMode { overrides.withLockedValue { $0.isEmpty ? current : $0[root] ?? current } }
}

/// Hummingbird's HTTP/1 server with `AudioFastPath` in front of its codec, behind the connection
/// cap and timeouts of `ConnectionGuard`.
struct CallrecHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let fastPath: @Sendable () -> AudioFastPath?
    let counter: ConnectionCounter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let admitted = counter.tryOpen()
        let counter = self.counter
        if admitted { channel.closeFuture.whenComplete { _ in counter.closed(channel) } }
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let ops = channel.pipeline.syncOperations
            guard admitted else {
                // Past the cap: answered 503 at once and closed, never left in the accept queue.
                try ops.addHandler(ConnectionCounter.Refuse(), position: .first)
                return value
            }
            let codec = try ops.handler(type: HTTP1ToHTTPServerCodec.self)
            let timeouts = ConnectionTimeouts(counter.limits, counter: counter)
            let bytes = timeouts.bytes
            try ops.addHandler(bytes, position: .first)
            try ops.addHandler(timeouts.parts, position: .before(codec))
            if let handler = fastPath(), case let mode = FastPathMode.mode(data: handler.dataRoot), mode != .off {
                try ops.addHandler(handler, position: .before(codec))
                if mode == .raw {
                    try ops.addHandler(RawAudioFastPath(fastPath: handler, timeouts: timeouts), position: .after(bytes))
                }
                // A 64 KiB range plus its head is past NIO's default high-water mark (64 KiB): each
                // response flipped the channel unwritable and back, waking Hummingbird's writer
                // (5% of a range under wrk). The fast path keeps its own bound (`maxWriting`).
                try channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 128 << 10, high: 512 << 10))
            }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the signed-audio fast path (nil: plain Hummingbird) and connection limits.
    static func callrec(limits: ConnectionLimits, fastPath: @escaping @Sendable () -> AudioFastPath?) -> HTTPServerBuilder {
        let counter = ConnectionCounter(limits)
        return .init { responder in
            CallrecHTTP1Channel(inner: HTTP1Channel(responder: responder), fastPath: fastPath, counter: counter)
        }
    }
}
