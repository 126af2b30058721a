import HTTPTypes
import NIOCore
import NIOHTTP1

/// `AudioFastPath` below the HTTP codec: a player's `GET`/`HEAD /recordings/<id>.opus` read from
/// the socket's bytes and answered with one buffer for the status line and header fields and the
/// file's bytes (sendfile), the same bytes in the same order as the fast path behind the codec
/// sends, with the same decision (`AudioFastPath.claim`, `AudioResponder.plan`), audit, metrics and
/// scoping.
///
/// Why: behind NIO's HTTP/1 codec a fast-path range still paid for llhttp, the boxed request
/// parts, `HTTPHeaders` both ways, the response encoder and a hop through each handler per part
/// (perf put most of callrec's user time per request there; scripts/bench-serve).
///
/// It claims only a request head it reads whole and understands, and is strict about it: the
/// request line `GET|HEAD <target> HTTP/1.1` with a target of `/recordings/…` in visible ASCII,
/// CRLF line ends (a bare CR or LF, or a line starting with white space — obs-fold — is not
/// claimed), at most `maxHead` bytes, exactly one Host, no field twice, only fields it reads
/// (Range, the conditionals, Authorization, Connection: `keep-alive` or `close`) or may ignore
/// (`Known`, from `.userAgent` on), values of visible ASCII and spaces without trailing white space. Anything else —
/// Content-Length, Transfer-Encoding, Expect, Upgrade, HTTP/1.0, an absolute-form target, a token
/// not verified before, a recording it cannot answer — is not claimed.
///
/// The first request it does not claim, and every byte after it on this connection, go to the HTTP
/// codec exactly as they came (from that request's first byte), and this handler leaves the
/// pipeline: a connection that ever needs the router stays on the router, so there is no question
/// of order or of where one request ends across the boundary. The same happens when `maxWriting`
/// answers are unfinished, when the socket's buffer is full (the router reads one request at a
/// time: that is the backpressure), and after a graceful shutdown began. After a request that asks
/// to close the connection, nothing more is read.
final class RawAudioFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The longest request head claimed; a longer one goes to the codec.
    static let maxHead = 8 << 10

    /// The decision, the answer's content and its metrics: the same object as the fast path
    /// behind the codec on this connection.
    let fastPath: AudioFastPath
    let timeouts: ConnectionTimeouts?
    /// Bytes read that do not yet make a whole request head.
    private var pending: ByteBuffer?
    /// Everything goes to the codec from now on.
    private var handedOff = false
    private var inFlight = AnswersInFlight()
    private var closing = false
    /// A row is being looked up for the request at the front of `pending`.
    private var lookingUp = false
    /// That request has been looked up once already (a second miss hands it to the router).
    private var lookedUp = false
    private var outsideRead = false
    private var readHeld = false

    init(fastPath: AudioFastPath, timeouts: ConnectionTimeouts?) {
        self.fastPath = fastPath
        self.timeouts = timeouts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if handedOff {
            context.fireChannelRead(data)
            return
        }
        if closing { return }
        var buffer = unwrapInboundIn(data)
        if var before = pending {
            before.writeBuffer(&buffer)
            pending = before
        } else {
            pending = buffer
        }
        if !lookingUp { process(context) }
    }

    /// Answers the whole request heads at the front of `pending`, in order, until one is not
    /// claimed (handed off with everything after it) or not whole yet (kept).
    private func process(_ context: ChannelHandlerContext) {
        guard var buffer = pending else { return }
        pending = nil
        while buffer.readableBytes > 0 {
            guard !inFlight.quiescing, inFlight.writing < AudioFastPath.maxWriting, context.channel.isWritable else {
                return handOff(buffer, context: context)
            }
            switch RawRequestHead.parse(buffer.readableBytesView) {
            case .incomplete:
                pending = buffer
                // Part of the next request is here: its head must arrive within the header timeout.
                timeouts?.bytesRead(context)
                return
            case .unclaimable:
                return handOff(buffer, context: context)
            case .complete(let head):
                switch fastPath.claim(head.ask, keepAlive: head.keepAlive, uri: head.target, authorization: head.authorization, simple: true)
                {
                case .unclaimed:
                    return handOff(buffer, context: context)
                case .notCached(let id, let principal):
                    // The row cache keeps a row 1 s: each connection would fall to the router
                    // within a second. Instead the row is looked up off the event loop (as the
                    // router would) and the request decided again, once.
                    if lookedUp { return handOff(buffer, context: context) }
                    pending = buffer
                    lookUp(id, principal, context: context)
                    return
                case .claimed(let claim):
                    lookedUp = false
                    buffer.moveReaderIndex(forwardBy: head.length)
                    timeouts?.headRead(context)
                    answer(claim, context: context)
                    timeouts?.responseEnded(context)
                    if !claim.keepAlive {
                        closing = true
                        return
                    }
                }
            }
        }
    }

    /// Fills the row cache for `id` on a task of its own, then decides the waiting request again;
    /// bytes read meanwhile wait behind it in `pending`.
    private func lookUp(_ id: String, _ principal: Principal, context: ChannelHandlerContext) {
        lookingUp = true
        lookedUp = true
        let service = fastPath.routes.service
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        Task {
            _ = try? await service.cachedFind(id, for: principal)
            loop.execute {
                let (handler, context) = bound.value
                handler.lookingUp = false
                if handler.readHeld {
                    handler.readHeld = false
                    context.read()
                }
                guard context.channel.isActive, !handler.handedOff, !handler.closing else { return }
                handler.outsideRead = true
                handler.process(context)
                handler.outsideRead = false
            }
        }
    }

    /// While a row is looked up, nothing more is read (backpressure: bytes wait in the socket).
    func read(context: ChannelHandlerContext) {
        if lookingUp {
            readHeld = true
            return
        }
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Nothing behind this handler has been given anything until it hands off.
        if handedOff { context.fireChannelReadComplete() }
    }

    /// From the first byte of `buffer` on, everything goes to the codec.
    private func handOff(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        handedOff = true
        pending = nil
        if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
        // After a lookup, outside a read: what went on to the codec is delivered at a read's end
        // (before this handler leaves, or the event would go nowhere).
        if outsideRead { context.fireChannelReadComplete() }
        leaveIfDone(context)
    }

    /// Out of the pipeline once handed off and nothing of its own is being written.
    private func leaveIfDone(_ context: ChannelHandlerContext) {
        guard handedOff, inFlight.idle else { return }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // As the fast path behind the codec: Hummingbird hears of a graceful shutdown only once
        // the answers written here have left.
        if inFlight.passes(event) { context.fireUserInboundEventTriggered(event) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending = nil
        closing = true
        context.fireChannelInactive()
    }

    private func answer(_ claim: AudioFastPath.Claim, context: ChannelHandlerContext) {
        var prepared = fastPath.prepare(claim, client: fastPath.client(context), regions: false)
        fastPath.rawAnsweredHere.withLockedValue { $0 += 1 }
        var head: ByteBuffer
        if case .simple(let range) = claim.answer {
            head = Self.simpleHead(claim, range, serverName: fastPath.serverName, close: !claim.keepAlive, allocator: context.channel.allocator)
        } else {
            head = Self.head(prepared, serverName: fastPath.serverName, close: !claim.keepAlive, allocator: context.channel.allocator)
        }
        var body = prepared.body
        var fileFrom = prepared.fileRange?.lowerBound ?? 0
        // Straight to the socket when nothing of ours is queued in NIO (`DirectSocket`); what the
        // socket's buffer cannot take now goes on through NIO below.
        if inFlight.writing == 0, let fd = directDescriptor(context) {
            var bytes: ByteBuffer?
            if case .byteBuffer(let b) = body { bytes = b }
            let range = prepared.fileRange
            // Counted before the send (a client may read the counter as soon as it has the answer),
            // taken back when the send does not finish it.
            fastPath.directAnsweredHere.withLockedValue { $0 += 1 }
            switch DirectSocket.send(fd, head: head, bytes: bytes, file: range == nil ? nil : claim.file.descriptor, offset: fileFrom, count: range?.count ?? 0) {
            case .all:
                fastPath.finished(claim, prepared)
                if !claim.keepAlive { context.close(promise: nil) }
                return
            case .failed:
                fastPath.directAnsweredHere.withLockedValue { $0 -= 1 }
                fastPath.finished(claim, prepared)
                context.close(promise: nil)
                return
            case .part(var headSent, let bodySent):
                fastPath.directAnsweredHere.withLockedValue { $0 -= 1 }
                let inHead = min(headSent, head.readableBytes)
                head.moveReaderIndex(forwardBy: inHead)
                headSent -= inHead
                if var rest = bytes {
                    rest.moveReaderIndex(forwardBy: headSent)  // what of the sealed range's bytes went
                    body = rest.readableBytes > 0 ? .byteBuffer(rest) : nil
                }
                fileFrom += bodySent
            }
        }
        if prepared.fileRange != nil, let range = prepared.fileRange, fileFrom < range.upperBound {
            body = prepared.region(claim, from: fileFrom)
        }
        let cork = body != nil && AudioFastPath.corks ? context.channel.syncOptions : nil
        try? cork?.setOption(AudioFastPath.tcpCork, value: 1)
        inFlight.started()
        let done = context.eventLoop.makePromise(of: Void.self)
        if let body {
            if head.readableBytes > 0 { context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(body), promise: done)
        } else {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(head)), promise: done)
        }
        try? cork?.setOption(AudioFastPath.tcpCork, value: 0)
        let keepAlive = claim.keepAlive
        done.futureResult.assumeIsolated().whenComplete { [self, prepared] result in
            fastPath.finished(claim, prepared)
            let held = inFlight.ended()
            if !keepAlive || (try? result.get()) == nil {
                context.close(promise: nil)
            } else {
                if let held { context.fireUserInboundEventTriggered(held) }
                leaveIfDone(context)
            }
        }
    }

    /// This connection's socket descriptor for direct sends (`DirectSocket`), looked up once; nil
    /// where it cannot be trusted or with `CALLREC_DIRECT_SEND=off`.
    private func directDescriptor(_ context: ChannelHandlerContext) -> Int32? {
        if let known = direct { return known }
        let fd = DirectSocket.enabled ? DirectSocket.descriptor(of: context.channel) : nil
        direct = .some(fd)
        return fd
    }
    private var direct: Int32??

    /// The head of a `.simple` answer, byte for byte as `head` writes the plan's for the same
    /// request: the status line, the open file's rendered fields (`OpenAudio.fields`), then
    /// Content-Range and Content-Length, Date, Server, Connection.
    static func simpleHead(
        _ claim: AudioFastPath.Claim, _ range: ClosedRange<Int>?, serverName: String, close: Bool, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var b = allocator.buffer(capacity: 384)
        var fixed = claim.file.fields(claim.audio)
        let size = claim.audio.size
        if let range {
            b.writeStaticString("HTTP/1.1 206 Partial Content\r\n")
            b.writeBuffer(&fixed)
            b.writeStaticString("Content-Range: bytes ")
            b.writeString(String(range.lowerBound))
            b.writeStaticString("-")
            b.writeString(String(range.upperBound))
            b.writeStaticString("/")
            b.writeString(String(size))
            b.writeStaticString("\r\nContent-Length: ")
            b.writeString(String(range.count))
        } else {
            b.writeStaticString("HTTP/1.1 200 OK\r\n")
            b.writeBuffer(&fixed)
            b.writeStaticString("Content-Length: ")
            b.writeString(String(size))
        }
        b.writeStaticString("\r\n")
        writeEnd(&b, serverName: serverName, close: close)
        return b
    }

    /// Date, Server and Connection, as the encoder ends every answer, then the empty line.
    private static func writeEnd(_ b: inout ByteBuffer, serverName: String, close: Bool) {
        b.writeStaticString("Date: ")
        b.writeString(HTTPDateCache.now())
        b.writeStaticString("\r\nServer: ")
        b.writeString(serverName)
        b.writeStaticString(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
    }

    /// The status line and header fields, byte for byte as NIO's HTTPResponseEncoder writes the
    /// fast path's `HTTPResponseHead` (the plan's fields in order, then Date, Server, Connection).
    static func head(_ prepared: AudioFastPath.Prepared, serverName: String, close: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: 384)
        b.writeStaticString("HTTP/1.1 ")
        b.writeString(String(prepared.status.code))
        b.writeStaticString(" ")
        b.writeString(prepared.status.reasonPhrase)
        b.writeStaticString("\r\n")
        // The encoder drops framing fields from answers that cannot have a body (304).
        let bodiless = !prepared.status.mayHaveResponseBody
        for field in prepared.fields {
            if bodiless && (field.name == .contentLength || field.name == .transferEncoding) { continue }
            b.writeString(field.name.rawName)
            b.writeStaticString(": ")
            b.writeString(field.value)
            b.writeStaticString("\r\n")
        }
        writeEnd(&b, serverName: serverName, close: close)
        return b
    }
}

/// A request head as `RawAudioFastPath` reads it from bytes: only the plain heads it may claim.
struct RawRequestHead {
    /// The method and the range and conditional fields, as the router reads them.
    var ask: AudioAsk
    var target: String
    var keepAlive = true
    var authorization: String?
    /// Bytes of the head, its final empty line included.
    var length = 0

    enum Parsed {
        /// Too few bytes to decide yet.
        case incomplete
        /// Not a head this path answers: the codec's.
        case unclaimable
        case complete(RawRequestHead)
    }

    /// The fields a claimed head may carry: those read, and those a plain player request may
    /// carry that change nothing in the answer (from `.userAgent` on). Any other is not claimed.
    enum Known: Int, CaseIterable {
        case host, range, ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince, ifRange, authorization, connection
        case userAgent, accept, acceptEncoding, acceptLanguage, referer, cacheControl, pragma, dnt, secFetchSite, secFetchMode, secFetchDest

        var name: String {
            switch self {
            case .host: return "host"
            case .range: return "range"
            case .ifMatch: return "if-match"
            case .ifNoneMatch: return "if-none-match"
            case .ifModifiedSince: return "if-modified-since"
            case .ifUnmodifiedSince: return "if-unmodified-since"
            case .ifRange: return "if-range"
            case .authorization: return "authorization"
            case .connection: return "connection"
            case .userAgent: return "user-agent"
            case .accept: return "accept"
            case .acceptEncoding: return "accept-encoding"
            case .acceptLanguage: return "accept-language"
            case .referer: return "referer"
            case .cacheControl: return "cache-control"
            case .pragma: return "pragma"
            case .dnt: return "dnt"
            case .secFetchSite: return "sec-fetch-site"
            case .secFetchMode: return "sec-fetch-mode"
            case .secFetchDest: return "sec-fetch-dest"
            }
        }

        private static let names: [(Known, [UInt8])] = allCases.map { ($0, Array($0.name.utf8)) }

        /// The field a name (as sent, any case) is, if it is one of these.
        static func match(_ name: UnsafeRawBufferPointer) -> Known? {
            for (k, n) in names where n.count == name.count && equalsLowercased(name, n) { return k }
            return nil
        }

        /// ASCII case-insensitive equality with a lowercase text.
        static func equalsLowercased(_ b: UnsafeRawBufferPointer, _ lower: some Collection<UInt8>) -> Bool {
            guard b.count == lower.count else { return false }
            var i = 0
            for c in lower {
                let x = b[i]
                guard (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) == c else { return false }
                i += 1
            }
            return true
        }
        static func equalsLowercased(_ b: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
            equalsLowercased(b, UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount))
        }
    }

    static func parse(_ bytes: ByteBufferView) -> Parsed {
        bytes.withContiguousStorageIfAvailable { parse(UnsafeRawBufferPointer($0)) } ?? .unclaimable
    }

    static func parse(_ p: UnsafeRawBufferPointer) -> Parsed {
        let n = p.count
        // The method, as soon as its bytes are here: anything else goes on at once.
        let isHead: Bool
        if startsWith(p, "GET ") {
            isHead = false
        } else if startsWith(p, "HEAD ") {
            isHead = true
        } else {
            return startsWith(p, "GET ", partial: true) || startsWith(p, "HEAD ", partial: true) ? .incomplete : .unclaimable
        }
        // The head's end: the first CRLF CRLF. A CR or LF alone before it is not claimed.
        var end = -1
        var i = 0
        let limit = min(n, RawAudioFastPath.maxHead)
        while i < limit {
            let c = p[i]
            if c == 0x0A { return .unclaimable }  // LF not after CR
            if c == 0x0D {
                guard i + 1 < n else { break }
                guard p[i + 1] == 0x0A else { return .unclaimable }
                if i + 3 < n, p[i + 2] == 0x0D, p[i + 3] == 0x0A {
                    end = i + 4
                    break
                }
                if i + 2 < n, p[i + 2] == 0x0D, i + 3 >= n { break }  // CR LF CR: wait for the LF
                i += 2
                continue
            }
            i += 1
        }
        if end < 0 {
            return n >= RawAudioFastPath.maxHead ? .unclaimable : .incomplete
        }
        if end > RawAudioFastPath.maxHead { return .unclaimable }
        // Request line.
        let targetStart = isHead ? 5 : 4
        var j = targetStart
        while j < end, p[j] != 0x20, p[j] != 0x0D {
            guard p[j] > 0x20 && p[j] < 0x7F else { return .unclaimable }
            j += 1
        }
        let prefix = "/recordings/".utf8
        guard j - targetStart > prefix.count, p[j] == 0x20,
            zip(prefix, UnsafeRawBufferPointer(rebasing: p[targetStart..<(targetStart + prefix.count)])).allSatisfy({ $0 == $1 })
        else { return .unclaimable }
        var head = RawRequestHead(ask: AudioAsk(isHead: isHead), target: String(decoding: UnsafeRawBufferPointer(rebasing: p[targetStart..<j]), as: UTF8.self))
        guard startsWith(UnsafeRawBufferPointer(rebasing: p[(j + 1)..<end]), "HTTP/1.1\r\n") else { return .unclaimable }
        var line = j + 1 + 10
        // Header fields, one per line, up to the empty line. Names are matched as bytes
        // (`Known`); only the values read become strings.
        var hosts = 0
        var seen: UInt32 = 0
        while line < end - 2 {
            var eol = line
            while p[eol] != 0x0D { eol += 1 }
            // Name: a token, straight up to the colon (no obs-fold, no white space before the colon).
            var colon = line
            while colon < eol, tchar[Int(p[colon])] { colon += 1 }
            guard colon > line, colon < eol, p[colon] == 0x3A else { return .unclaimable }
            var v = colon + 1
            while v < eol, p[v] == 0x20 || p[v] == 0x09 { v += 1 }
            guard v < eol, p[eol - 1] != 0x20, p[eol - 1] != 0x09 else { return .unclaimable }  // empty, or trailing white space
            for k in v..<eol where !(p[k] >= 0x20 && p[k] < 0x7F || p[k] == 0x09) { return .unclaimable }
            guard let known = Known.match(UnsafeRawBufferPointer(rebasing: p[line..<colon])) else { return .unclaimable }
            let bit: UInt32 = 1 << known.rawValue
            guard seen & bit == 0 else { return .unclaimable }
            seen |= bit
            let value = { String(decoding: UnsafeRawBufferPointer(rebasing: p[v..<eol]), as: UTF8.self) }
            switch known {
            case .host: hosts += 1
            case .range: head.ask.range = value()
            case .ifMatch: head.ask.ifMatch = value()
            case .ifNoneMatch: head.ask.ifNoneMatch = value()
            case .ifModifiedSince: head.ask.ifModifiedSince = value()
            case .ifUnmodifiedSince: head.ask.ifUnmodifiedSince = value()
            case .ifRange: head.ask.ifRange = value()
            case .authorization: head.authorization = value()
            case .connection:
                let c = UnsafeRawBufferPointer(rebasing: p[v..<eol])
                if Known.equalsLowercased(c, "keep-alive") {
                    head.keepAlive = true
                } else if Known.equalsLowercased(c, "close") {
                    head.keepAlive = false
                } else {
                    return .unclaimable
                }
            default: break  // `.userAgent` and after: changes nothing in the answer
            }
            line = eol + 2
        }
        guard hosts == 1 else { return .unclaimable }
        head.length = end
        return .complete(head)
    }

    private static func startsWith(_ p: UnsafeRawBufferPointer, _ s: StaticString, partial: Bool = false) -> Bool {
        let count = s.utf8CodeUnitCount
        if p.count < count {
            return partial && (0..<p.count).allSatisfy { p[$0] == s.utf8Start[$0] }
        }
        return !partial && (0..<count).allSatisfy { p[$0] == s.utf8Start[$0] }
    }

    /// RFC 9110 token characters.
    private static let tchar: [Bool] = (0..<256).map { b in
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || "!#$%&'*+-.^_`|~".utf8.contains(UInt8(b))
    }
}
