import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CallrecServer

/// The fast path below the HTTP codec (`RawAudioFastPath`): the same requests, sent as bytes over a
/// socket, answered with the same bytes as the router gives them (`CALLREC_FAST_PATH=off`), and
/// everything unusual handed to the codec untouched.
struct AudioFastPathRawTests {
    static let id = "1732467600.42"
    static let path = "/recordings/1732467600.42.opus"

    /// Sends each request alone on a fresh connection to a server in `mode` on `h`'s data, and
    /// returns its answer (Date taken out) and how many of them the raw path answered.
    static func answers(_ h: Harness, _ mode: FastPathMode, _ requests: [(String, isHead: Bool)], warm: String) async throws -> ([String], Int) {
        FastPathMode.set(mode, data: h.data.root)
        defer { FastPathMode.set(nil, data: h.data.root) }
        let out = Box<([String], Int)>(([], 0))
        try await h.test { client in
            let port = try #require(client.port)
            var results: [String] = []
            var raw = 0
            for (request, isHead) in requests {
                var answer = ""
                var claimed = false
                for _ in 0..<5 {  // a loaded machine may outlast the row cache (1 s)
                    let warmer = try HTTPWire(port: port)
                    _ = try warmer.exchange(warm, isHead: warm.hasPrefix("HEAD "))
                    let before = AudioFastPath.rawAnswers(data: h.data.root)
                    let c = try HTTPWire(port: port)
                    answer = try c.exchange(request, isHead: isHead)
                    claimed = AudioFastPath.rawAnswers(data: h.data.root) == before + 1
                    if claimed || mode != .raw { break }
                }
                if claimed { raw += 1 }
                results.append(answer)
            }
            out.value = (results, raw)
        }
        return out.value
    }

    /// Every range and conditional case, by signed URL and by a remembered bearer token: raw path
    /// and router, byte for byte but the Date field (and, the router ordering its fields its own
    /// way, field order).
    @Test func answersAsTheRouterDoes() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let token = try await h.token(.admin)
        let signed = h.signed(Self.path)
        // The router verifies the token once (a HEAD: no audit), and fills the row cache.
        let warm = "HEAD \(Self.path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n"
        let first = try await Self.answers(h, .off, [("GET \(signed) HTTP/1.1\r\nHost: x\r\n\r\n", false)], warm: warm).0[0]
        let etag = try #require(Self.field("ETag", first))
        let modified = try #require(Self.field("Last-Modified", first))
        let cases: [String] = [
            "", "Range: bytes=0-99\r\n", "Range: bytes=100-\r\n", "Range: bytes=-100\r\n", "Range: bytes=-999999\r\n",
            "Range: BYTES=1-2\r\n", "Range: bytes=999999-\r\n", "Range: bytes=abc\r\n", "Range: items=0-5\r\n", "Range: bytes=9-1\r\n",
            "Range: bytes=0-1,\r\n", "If-None-Match: \(etag)\r\n", "If-None-Match: \"other\", \(etag)\r\n", "If-None-Match: *\r\n",
            "If-Modified-Since: \(modified)\r\n", "If-Match: \"other\"\r\n", "If-Match: \(etag)\r\nRange: bytes=0-0\r\n",
            "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", "If-Range: \(etag)\r\nRange: bytes=0-9\r\n",
            "If-Range: \"other\"\r\nRange: bytes=0-9\r\n", "If-Range: \(modified)\r\nRange: bytes=0-9\r\n",
            "Range:bytes=3-5\r\nUser-Agent: curl/8\r\nAccept: */*\r\n", "range: bytes=3-5\r\nconnection: keep-alive\r\n",
        ]
        var requests: [(String, isHead: Bool)] = []
        for method in ["GET", "HEAD"] {
            for fields in cases {
                requests.append(("\(method) \(signed) HTTP/1.1\r\nHost: x\r\n\(fields)\r\n", method == "HEAD"))
                requests.append(("\(method) \(Self.path) HTTP/1.1\r\nAuthorization: Bearer \(token)\r\n\(fields)Host: x\r\n\r\n", method == "HEAD"))
            }
        }
        let (fast, claimed) = try await Self.answers(h, .raw, requests, warm: warm)
        let (routed, _) = try await Self.answers(h, .off, requests, warm: warm)
        #expect(claimed == requests.count)
        for (i, request) in requests.enumerated() {
            #expect(Self.comparable(fast[i]) == Self.comparable(routed[i]), "\(request.0)")
            #expect(fast[i].contains("\r\nDate: ") && fast[i].contains("\r\nServer: callrec\r\n"))
        }
        // The raw path's bytes are the codec fast path's, field order included.
        let (http, _) = try await Self.answers(h, .http, requests, warm: warm)
        for (i, request) in requests.enumerated() {
            #expect(Self.withoutDate(fast[i]) == Self.withoutDate(http[i]), "\(request.0)")
        }
    }

    /// Heads the raw path must not claim go to the codec untouched, and are answered as the
    /// router answers them.
    @Test func unusualHeadsGoToTheRouter() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let signed = h.signed(Self.path)
        let warm = "GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n"
        let requests: [(String, isHead: Bool)] = [
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9,\r\n  20-29\r\n\r\n", false),  // obs-fold
            ("GET \(signed) HTTP/1.1\nHost: x\nRange: bytes=0-9\n\n", false),  // bare LF
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\nRange: bytes=5-6\r\n\r\n", false),  // duplicate Range
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nRange: bytes=0-9\r\n\r\n", false),
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nRange: bytes=0-9\r\n\r\n0\r\n\r\n", false),
            ("GET http://x\(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n", false),  // absolute form
            ("GET \(signed) HTTP/1.0\r\nHost: x\r\nRange: bytes=0-9\r\nConnection: keep-alive\r\n\r\n", false),
            ("GET \(signed) HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n", false),  // no Host
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9 \r\n\r\n", false),  // trailing white space
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nX-Other: 1\r\nRange: bytes=0-9\r\n\r\n", false),  // a field it does not know
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n", false),
            ("GET \(signed) HTTP/1.1\r\nHost : x\r\n\r\n", false),  // white space before the colon
        ]
        let (fast, claimed) = try await Self.answers(h, .raw, requests, warm: warm)
        let (routed, _) = try await Self.answers(h, .off, requests, warm: warm)
        #expect(claimed == 0)
        for (i, request) in requests.enumerated() {
            #expect(!fast[i].isEmpty, "\(request.0)")
            #expect(Self.comparable(fast[i]) == Self.comparable(routed[i]), "\(request.0)")
        }
    }

    /// Pipelined requests, claimed and not, answered in order on one connection: once a request
    /// goes to the codec, the rest of the connection does, from its first byte.
    @Test func pipelinedMixKeepsOrder() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let signed = h.signed(Self.path)
        let warm = "GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n"
        let requests: [(String, isHead: Bool)] = [
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99\r\n\r\n", false),
            ("HEAD \(signed) HTTP/1.1\r\nHost: x\r\n\r\n", true),
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=100-199\r\n\r\n", false),
            ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", false),  // the router's
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=200-299\r\n\r\n", false),
            ("GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=300-\r\nConnection: close\r\n\r\n", false),
        ]
        let (alone, _) = try await Self.answers(h, .off, requests, warm: warm)
        FastPathMode.set(.raw, data: h.data.root)
        defer { FastPathMode.set(nil, data: h.data.root) }
        try await h.test { client in
            let port = try #require(client.port)
            _ = try HTTPWire(port: port).exchange(warm, isHead: false)
            let before = AudioFastPath.rawAnswers(data: h.data.root)
            let c = try HTTPWire(port: port)
            #expect(c.send(requests.map(\.0).joined()))
            for (i, r) in requests.enumerated() {
                let answer = try c.read(isHead: r.isHead)
                #expect(Self.comparable(answer) == Self.comparable(alone[i]), "\(r.0)")
            }
            #expect(c.closed())
            // The three before /healthz; the router (and the codec's fast path) the rest.
            #expect(AudioFastPath.rawAnswers(data: h.data.root) == before + 3)
        }
    }

    /// A request head split across reads at every byte is answered whole, the same bytes.
    @Test func splitAtEveryByte() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let signed = h.signed(Self.path)
        let request = "GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=10-29\r\n\r\n"
        let bytes = Array(request.utf8)
        // Every prefix is a head not yet complete, the whole one is claimed.
        for k in 0..<bytes.count {
            let parsed = bytes[..<k].withUnsafeBytes { RawRequestHead.parse($0) }
            guard case .incomplete = parsed else {
                Issue.record("prefix of \(k) bytes: \(parsed)")
                continue
            }
        }
        guard case .complete(let head) = bytes.withUnsafeBytes({ RawRequestHead.parse($0) }) else {
            Issue.record("not claimed whole")
            return
        }
        #expect(head.length == bytes.count && head.ask.range == "bytes=10-29" && head.target == signed)
        FastPathMode.set(.raw, data: h.data.root)
        defer { FastPathMode.set(nil, data: h.data.root) }
        try await h.test { client in
            let port = try #require(client.port)
            // Fills the row cache, through the router (on a connection of its own: one that has
            // needed the router stays on it).
            let whole = try HTTPWire(port: port).exchange(request, isHead: false)
            let c = try HTTPWire(port: port)
            let before = AudioFastPath.rawAnswers(data: h.data.root)
            for k in 1..<bytes.count {
                #expect(c.send(String(decoding: bytes[..<k], as: UTF8.self)))
                c.pause()  // the server reads the first part on its own
                #expect(c.send(String(decoding: bytes[k...], as: UTF8.self)))
                let answer = try c.read(isHead: false)
                #expect(Self.withoutDate(answer) == Self.withoutDate(whole), "split at \(k)")
            }
            #expect(AudioFastPath.rawAnswers(data: h.data.root) >= before + bytes.count - 1 - 5)  // the row cache may lapse
        }
    }

    /// The row cache keeps a row 1 s: a miss is looked up off the event loop and the request
    /// answered here, so a connection does not fall to the router every second (it did: the first
    /// A/B showed the raw path answering almost nothing after the first second).
    @Test func aRowCacheMissStaysOnTheRawPath() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let signed = h.signed(Self.path)
        let request = "GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n"
        FastPathMode.set(.raw, data: h.data.root)
        defer { FastPathMode.set(nil, data: h.data.root) }
        try await h.test { client in
            let port = try #require(client.port)
            let c = try HTTPWire(port: port)
            let before = AudioFastPath.rawAnswers(data: h.data.root)
            let directBefore = AudioFastPath.directAnswers(data: h.data.root)
            let first = try c.exchange(request, isHead: false)  // never looked up: a miss
            try await Task.sleep(for: .milliseconds(1_300))  // past the row cache's second
            let second = try c.exchange(request, isHead: false)
            #expect(AudioFastPath.rawAnswers(data: h.data.root) == before + 2)
            // Sent straight to the socket (`DirectSocket`): NIO's socket object still reads as it did.
            #expect(AudioFastPath.directAnswers(data: h.data.root) == directBefore + 2, "no direct sends: has NIO's socket changed shape?")
            #expect(Self.withoutDate(first) == Self.withoutDate(second) && first.hasPrefix("HTTP/1.1 206 "))
            // A recording that does not exist: looked up once, then the router's 404, as ever.
            let missing = try c.exchange("GET \(h.signed("/recordings/1732467600.99.opus")) HTTP/1.1\r\nHost: x\r\n\r\n", isHead: false)
            #expect(missing.hasPrefix("HTTP/1.1 404 "))
            #expect(AudioFastPath.rawAnswers(data: h.data.root) == before + 2)
        }
    }

    /// A reader slower than the answers (a small receive buffer, reading only later): what a
    /// direct send could not write goes on through NIO, and the answers after it wait their turn
    /// — every byte, in order; for a plaintext file (sendfile) and a sealed one (its decrypted
    /// range sent with the head in one `sendmsg`).
    @Test func aSlowReaderGetsEveryByteInOrder() async throws {
        let h = try await Harness()
        let plainRow = try h.add(try h.longWAV(seconds: 600), as: Self.id)
        let sealedRow = try SealedAudioTests.addSealed(h, try h.longWAV(seconds: 300), as: "1732467600.43")
        FastPathMode.set(.raw, data: h.data.root)
        defer { FastPathMode.set(nil, data: h.data.root) }
        let token = try await h.token(.admin)
        try await h.test { client in
            let port = try #require(client.port)
            for row in [plainRow, sealedRow] {
                let file = try StoredFile(path: h.data.absolute(row.opusPath)).bytes(0..<row.opusBytes)
                let path = "/recordings/\(row.uniqueid).opus"
                let signed = h.signed(path)
                let whole = "GET \(signed) HTTP/1.1\r\nHost: x\r\n\r\n"
                let range = "GET \(signed) HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1999\r\n\r\n"
                // The router fills the row cache and a sealed file's key; then the raw path answers at once.
                _ = try await client.execute(uri: path, method: .get, headers: h.bearer(token) + [.range: "bytes=0-9"])
                _ = try HTTPWire(port: port).exchange(range, isHead: false)
                let (raw, direct) = (AudioFastPath.rawAnswers(data: h.data.root), AudioFastPath.directAnswers(data: h.data.root))
                let c = try HTTPWire(port: port, receiveBuffer: 4096)
                // More than loopback's socket buffers take at once (a few MB), in one burst.
                let count = max(4, 12_000_000 / file.count)
                #expect(c.send(String(repeating: whole + range, count: count / 2)))
                try await Task.sleep(for: .milliseconds(300))  // the server fills the socket and waits
                for expected in Array(repeating: [file[...], file[1000..<2000]], count: count / 2).joined() {
                    let answer = try c.read(isHead: false)
                    let body = answer.range(of: "\r\n\r\n").map { Array(answer[$0.upperBound...].unicodeScalars.map { UInt8($0.value) }) } ?? []
                    #expect(body.count == expected.count && body == Array(expected), "\(row.uniqueid): \(answer.prefix(40))")
                }
                let answeredRaw = AudioFastPath.rawAnswers(data: h.data.root) - raw
                #expect(answeredRaw >= 1, "\(row.uniqueid)")
                #expect(AudioFastPath.directAnswers(data: h.data.root) - direct < answeredRaw, "\(row.uniqueid): it all fit the socket at once: nothing tested")
            }
        }
    }

    static func field(_ name: String, _ answer: String) -> String? {
        answer.components(separatedBy: "\r\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
    }

    static func withoutDate(_ answer: String) -> String {
        answer.components(separatedBy: "\r\n").filter { !$0.hasPrefix("Date: ") }.joined(separator: "\r\n")
    }

    /// Status line, fields sorted (names case-folded, no Date) and body.
    static func comparable(_ answer: String) -> [String] {
        guard let split = answer.range(of: "\r\n\r\n") else { return [answer] }
        var lines = answer[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = lines.removeFirst()
        let fields = lines.filter { !$0.lowercased().hasPrefix("date:") }.map { line -> String in
            let colon = line.firstIndex(of: ":")!
            return line[..<colon].lowercased() + line[colon...]
        }
        return [status] + fields.sorted() + [String(answer[split.upperBound...])]
    }
}

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// A plain HTTP/1.1 client over a socket: requests as bytes, answers read by their Content-Length.
final class HTTPWire: @unchecked Sendable {
    let socket: RawSocket
    private var buffer: [UInt8] = []

    init(port: Int, receiveBuffer: Int32? = nil) throws {
        socket = try RawSocket(port: port, receiveBuffer: receiveBuffer)
        var one: Int32 = 1
        setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ s: String) -> Bool { socket.send(Array(s.utf8)) }

    func exchange(_ request: String, isHead: Bool) throws -> String {
        guard send(request) else { throw DecodeError(message: "send failed") }
        return try read(isHead: isHead)
    }

    /// Lets the server read what was sent before the next send.
    func pause() { usleep(2_000) }

    /// The peer closed the connection (within 5 s).
    func closed() -> Bool { buffer.isEmpty && socket.isClosed(waitingMilliseconds: 5_000) }

    /// One whole answer: head, then Content-Length bytes of body (none for HEAD and 304).
    func read(isHead: Bool) throws -> String {
        var end: Int?
        while true {
            if let e = Self.headEnd(buffer) {
                end = e
                break
            }
            guard fill() else { break }
        }
        guard let end else { return Self.text(buffer[...]) }
        let head = Self.text(buffer[..<end])
        var length = 0
        if !isHead && !head.hasPrefix("HTTP/1.1 304") {
            for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        while buffer.count < end + length { guard fill() else { break } }
        let total = min(buffer.count, end + length)
        let answer = Self.text(buffer[..<total])
        buffer.removeFirst(total)
        return answer
    }

    /// Bytes as text, one character per byte (lossless, unlike UTF-8 for audio bytes).
    static func text(_ b: ArraySlice<UInt8>) -> String { String(b.map { Character(Unicode.Scalar($0)) }) }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i + 4 }
        return nil
    }

    private func fill() -> Bool {
        var p = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 5_000) > 0 else { return false }
        var b = [UInt8](repeating: 0, count: 65_536)
        let n = recv(socket.fd, &b, b.count, 0)
        guard n > 0 else { return false }
        buffer += b[0..<n]
        return true
    }
}
