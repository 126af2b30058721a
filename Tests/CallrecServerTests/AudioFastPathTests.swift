import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import CallrecServer

/// The signed-audio fast path answers exactly as the router does, and hands everything else on.
struct AudioFastPathTests {
    /// Every range and conditional case, once through the fast path (a signed URL, then a bearer
    /// token verified before) and once through the router (a bearer token it has not seen): the
    /// same status, headers (but Date) and bytes.
    @Test func answersAsTheRouterDoes() async throws {
        let h = try await Harness()
        let row = try h.add("speech.wav", as: "1732467600.42")
        let size = try FileManager.default.attributesOfItem(atPath: h.data.absolute(row.opusPath))[.size] as! Int
        let token = try await h.token(.admin)
        let path = "/recordings/1732467600.42.opus"
        try await h.test { client in
            var fresh = 0
            // The router verifies `token` once; from then on the fast path answers it.
            _ = try await client.execute(uri: path, method: .head, headers: h.bearer(token))
            let first = try await client.execute(uri: h.signed(path), method: .get, headers: [:])
            let etag = try #require(first.headers[.eTag])
            let modified = try #require(first.headers[.lastModified])
            let cases: [HTTPFields] = [
                [:], [.range: "bytes=0-99"], [.range: "bytes=100-"], [.range: "bytes=-100"], [.range: "bytes=-999999"],
                [.range: " bytes=5-999999 "], [.range: "BYTES=1-2"], [.range: "bytes=\(size - 1)-"], [.range: "bytes=\(size)-"],
                [.range: "bytes=abc"], [.range: "items=0-5"], [.range: "bytes=9-1"], [.range: "bytes"], [.range: "bytes=0-1,"],
                [.range: "bytes=0-9,-10"], [.ifNoneMatch: etag], [.ifNoneMatch: "\"other\", \(etag)"], [.ifNoneMatch: "*"],
                [.ifNoneMatch: "\"other\""], [.ifModifiedSince: modified], [.ifModifiedSince: "Sun, 06 Nov 1994 08:49:37 GMT"],
                [.ifMatch: "\"other\""], [.ifMatch: etag, .range: "bytes=0-0"], [.ifUnmodifiedSince: "Sun, 06 Nov 1994 08:49:37 GMT"],
                [.ifRange: etag, .range: "bytes=0-9"], [.ifRange: "\"other\"", .range: "bytes=0-9"], [.ifRange: "W/\(etag)", .range: "bytes=0-9"],
                [.ifRange: modified, .range: "bytes=0-9"], [.ifRange: "Sun, 06 Nov 1994 08:49:37 GMT", .range: "bytes=0-9"],
            ]
            for method in [HTTPRequest.Method.get, .head] {
                for fields in cases {
                    let label = "\(method) \(fields)"
                    // Several ranges are the router's (multipart); every other case the fast path's.
                    let routersOnly = fields[.range] == "bytes=0-9,-10"
                    var fast: TestResponse, byToken: TestResponse, routed: TestResponse
                    var byFastPath = false
                    var tries = 0
                    repeat {
                        // A token never seen goes through the router (its JWT verified there), whose
                        // lookup fills the row cache (kept 1 s) that the fast path answers from.
                        fresh += 1
                        let unseen = try await h.token(.admin, expires: 3600 + Double(fresh))
                        routed = try await client.execute(uri: path, method: method, headers: h.bearer(unseen) + fields)
                        let before = AudioFastPath.answers(data: h.data.root)
                        fast = try await client.execute(uri: h.signed(path), method: method, headers: fields)
                        byToken = try await client.execute(uri: path, method: method, headers: h.bearer(token) + fields)
                        byFastPath = AudioFastPath.answers(data: h.data.root) == before + 2
                        tries += 1
                    } while !byFastPath && !routersOnly && tries < 5  // a loaded machine may outlast the cache
                    #expect(byFastPath == !routersOnly, "\(label): the \(byFastPath ? "fast path" : "router") answered")
                    for (how, answer) in [("signed URL", fast), ("remembered token", byToken)] {
                        #expect(answer.status == routed.status, "\(label) \(how)")
                        #expect(answer.bytes == routed.bytes || fields[.range] == "bytes=0-9,-10", "\(label) \(how)")  // multipart boundaries differ
                        #expect(Self.comparable(answer.headers) == Self.comparable(routed.headers), "\(label) \(how)")
                        #expect(answer.headers[.date] != nil && answer.headers[.server] == "callrec", "\(label) \(how)")
                    }
                }
            }
        }
    }

    static func comparable(_ fields: HTTPFields) -> [String] {
        fields.filter { $0.name != .date }.map { field in
            field.value.hasPrefix("multipart/byteranges") ? "\(field.name.canonicalName): multipart" : "\(field.name.canonicalName): \(field.value)"
        }.sorted()
    }

    /// The handler's decisions, on an embedded channel: what it answers, what it hands on, and
    /// that responses keep request order while the router owes one.
    @Test func claimsOnlyWhatItCanAnswer() async throws {
        let h = try await Harness()
        let row = try h.add("speech.wav", as: "1732467600.42")
        let size = try FileManager.default.attributesOfItem(atPath: h.data.absolute(row.opusPath))[.size] as! Int
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let audit = AuditWriter(catalog: h.catalog, logger: logger)
        let service = RecordingService(catalog: h.catalog, audit: audit)
        let routes = RecordingRoutes(
            service: service, auth: Authenticator(signer: h.signer, tokens: h.tokens), wavCache: WavViewCache(), zone: TimeZone(identifier: "UTC")!)
        // The fast path answers from the row cache only (no catalog call on an event loop): the
        // router's first lookup fills it.
        _ = try await service.cachedFind("1732467600.42", for: .signedURL)
        let channel = EmbeddedChannel(handler: AudioFastPath(routes: routes, serverName: "callrec"))
        // An embedded loop runs callbacks only when told to: never await its futures here.
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)

        func send(_ uri: String, method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, headers: HTTPHeaders = [:]) throws {
            try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
        }
        /// The parts handed on to the router (head URIs).
        func handedOn() throws -> [String] {
            var uris: [String] = []
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                if case .head(let head) = part { uris.append(head.uri) }
            }
            return uris
        }
        /// The fast path's answer: status, headers, body length.
        func answered() throws -> (HTTPResponseStatus, HTTPHeaders, Int)? {
            guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
            var length = 0
            while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
                if case .body(let data) = part { length += data.readableBytes }
                if case .end = part { break }
            }
            return (head.status, head.headers, length)
        }
        let signed = h.signed("/recordings/1732467600.42.opus")

        try send(signed, headers: ["Range": "bytes=10-19"])
        let ranged = try #require(try answered())
        #expect(ranged.0 == .partialContent && ranged.2 == 10 && ranged.1["Content-Range"] == ["bytes 10-19/\(size)"])
        #expect(try handedOn().isEmpty)

        try send(signed, method: .HEAD)
        let head = try #require(try answered())
        #expect(head.0 == .ok && head.2 == 0 && head.1["Content-Length"] == [String(size)])

        // Everything the router must decide goes to the router, untouched.
        let query = signed[signed.firstIndex(of: "?")!...]
        let exp = query.split(separator: "&")[0]
        let others = [
            "/recordings/1732467600.42.opus",  // no signature: a bearer token, or a 401
            "/recordings/1732467600.42.wav" + query,  // decoded audio
            "/recordings/1732467600.4%32.opus" + query,  // percent-encoded
            signed + "&x=1", signed + "&sig=again",  // other or repeated parameters
            "/recordings/1732467600.42.opus\(exp)&sig=AAAA",  // a wrong signature
            h.signed("/recordings/1732467600.99.opus"),  // no such recording
            h.signed("/recordings/1732467600.42.opus", ttl: -10),  // expired
            h.signed("/recordings/..opus"),  // not a uniqueid
        ]
        for uri in others { try send(uri) }
        try send(signed, headers: ["Range": "bytes=0-1,5-6"])  // multipart
        try send(signed, method: .POST)
        #expect(try handedOn() == others + [signed, signed])
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)

        // The router owes responses now: a signed request waits its turn through the router.
        try send(signed)
        #expect(try handedOn() == [signed])
        for _ in 0..<(others.count + 3) {
            try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
            try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        }
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}
        try send(signed)
        #expect(try handedOn().isEmpty)
        #expect(try answered()?.0 == .ok)

        // With the socket's send buffer full, requests wait their turn in the router.
        channel.isWritable = false
        try send(signed)
        #expect(try handedOn() == [signed])
        channel.isWritable = true
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}

        // A client that asks to close gets its answer, then the connection closes.
        try send(signed, headers: ["Connection": "close"])
        let last = try #require(try answered())
        #expect(last.1["Connection"] == ["close"] && last.2 == size)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        audit.flush()
        let audited = try h.catalog.auditLog(from: nil, to: nil).filter { $0.action == "audio.opus" }
        #expect(audited.count == 3)
        #expect(audited.first?.detail == "bytes=10-19")
        #expect(audited.allSatisfy { $0.actor == "signed-url" && $0.client == "127.0.0.1" })
    }

    /// After a request that closes the connection, nothing more is processed (RFC 9112 §9.6):
    /// not a signed request, not one for the router.
    @Test func nothingAfterConnectionClose() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.42")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = RecordingService(catalog: h.catalog, audit: AuditWriter(catalog: h.catalog, logger: logger))
        let routes = RecordingRoutes(
            service: service, auth: Authenticator(signer: h.signer, tokens: h.tokens), wavCache: WavViewCache(), zone: TimeZone(identifier: "UTC")!)
        _ = try await service.cachedFind("1732467600.42", for: .signedURL)
        let channel = EmbeddedChannel(handler: AudioFastPath(routes: routes, serverName: "callrec"))
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        let signed = h.signed("/recordings/1732467600.42.opus")
        let requests: [(String, HTTPHeaders)] = [("/recordings/1732467600.42", ["Connection": "close"]), (signed, [:]), ("/recordings", [:])]
        for (uri, headers) in requests {
            try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
        }
        var forwarded: [String] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            if case .head(let head) = part { forwarded.append(head.uri) }
        }
        #expect(forwarded == ["/recordings/1732467600.42"])
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
    }
}
