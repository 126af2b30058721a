import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// Every range and conditional case on the wire, for `.opus` and `.wav`.
struct AudioRouteTests {
    @Test func opusRangesAndConditionals() async throws {
        let h = try await Harness()
        let row = try h.add("speech.wav", as: "1732467600.42")
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: h.data.absolute(row.opusPath))))
        let size = file.count
        let token = try await h.token(.admin)
        try await h.test { client in
            let uri = "/recordings/1732467600.42.opus"
            func get(_ headers: HTTPFields, method: HTTPRequest.Method = .get) async throws -> TestResponse {
                var all = h.bearer(token)
                for f in headers { all.append(f) }
                return try await client.execute(uri: uri, method: method, headers: all)
            }
            let full = try await get([:])
            #expect(full.status == .ok)
            #expect(full.bytes == file)
            #expect(full.headers[.contentType] == "audio/ogg; codecs=opus")
            #expect(full.headers[.acceptRanges] == "bytes")
            let etag = try #require(full.headers[.eTag])
            #expect(etag.hasPrefix("\"") && !etag.hasPrefix("W/"))
            let lastModified = try #require(full.headers[.lastModified])

            let head = try await get([:], method: .head)
            #expect(head.status == .ok && head.bytes.isEmpty)
            #expect(head.headers[.contentLength] == String(size))
            #expect(head.headers[.eTag] == etag)

            for (spec, range) in [("bytes=0-99", 0...99), ("bytes=100-", 100...(size - 1)), ("bytes=-100", (size - 100)...(size - 1)),
                                  ("bytes=-999999", 0...(size - 1)), ("bytes=5-999999", 5...(size - 1)), ("bytes=\(size - 1)-", (size - 1)...(size - 1))] {
                let r = try await get([.range: spec])
                #expect(r.status == .partialContent, "\(spec)")
                #expect(r.headers[.contentRange] == "bytes \(range.lowerBound)-\(range.upperBound)/\(size)", "\(spec)")
                #expect(r.headers[.contentLength] == String(range.count))
                #expect(r.bytes == Array(file[range]), "\(spec)")
                let hr = try await get([.range: spec], method: .head)
                #expect(hr.status == .partialContent && hr.bytes.isEmpty && hr.headers[.contentRange] == r.headers[.contentRange])
            }
            let past = try await get([.range: "bytes=\(size)-"])
            #expect(past.status == .rangeNotSatisfiable)
            #expect(past.headers[.contentRange] == "bytes */\(size)")
            #expect(past.errorCode == "range_not_satisfiable")
            for malformed in ["bytes=abc", "items=0-5", "bytes=9-1", "bytes"] {
                let r = try await get([.range: malformed])
                #expect(r.status == .ok && r.bytes == file, "\(malformed)")
            }
            // Several ranges: multipart/byteranges with each part's Content-Range.
            let multi = try await get([.range: "bytes=0-9,-10"])
            #expect(multi.status == .partialContent)
            let ct = try #require(multi.headers[.contentType])
            #expect(ct.hasPrefix("multipart/byteranges; boundary="))
            #expect(multi.headers[.contentLength] == String(multi.bytes.count))
            // Each part, parsed out of the body: its headers, and exactly the file's bytes of its range.
            let boundary = String(ct.dropFirst("multipart/byteranges; boundary=".count))
            let parts = try multipartParts(multi.bytes, boundary: boundary)
            try #require(parts.count == 2, "\(parts.count) parts")
            for (part, range) in zip(parts, [0...9, (size - 10)...(size - 1)]) {
                #expect(part.headers["content-range"] == "bytes \(range.lowerBound)-\(range.upperBound)/\(size)")
                #expect(part.headers["content-type"] == "audio/ogg; codecs=opus")
                #expect(part.body == Array(file[range]), "bytes of \(range)")
            }

            // Conditionals.
            #expect(try await get([.ifNoneMatch: etag]).status == .notModified)
            #expect(try await get([.ifNoneMatch: "\"zzz\", \(etag)"]).status == .notModified)
            #expect(try await get([.ifNoneMatch: "*"]).status == .notModified)
            #expect(try await get([.ifNoneMatch: "W/\(etag)"]).status == .notModified)
            #expect(try await get([.ifNoneMatch: "\"zzz\""]).status == .ok)
            let notModified = try await get([.ifNoneMatch: etag])
            #expect(notModified.headers[.eTag] == etag && notModified.bytes.isEmpty)
            #expect(try await get([.ifModifiedSince: lastModified]).status == .notModified)
            #expect(try await get([.ifModifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"]).status == .ok)
            #expect(try await get([.ifMatch: "\"zzz\""]).status == .preconditionFailed)
            #expect(try await get([.ifUnmodifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"]).status == .preconditionFailed)
            // If-Range: the range only if the representation is the one the client has.
            #expect(try await get([.range: "bytes=0-9", .ifRange: etag]).status == .partialContent)
            #expect(try await get([.range: "bytes=0-9", .ifRange: "\"old\""]).status == .ok)
            #expect(try await get([.range: "bytes=0-9", .ifRange: "W/\(etag)"]).status == .ok)
            #expect(try await get([.range: "bytes=0-9", .ifRange: lastModified]).status == .partialContent)
            #expect(try await get([.range: "bytes=0-9", .ifRange: "Mon, 01 Jan 2001 00:00:00 GMT"]).status == .ok)
        }
    }

    /// The `.wav` the CRM stores: exact length, the source's samples in place (no pre-skip shift),
    /// and any range byte-identical to the same bytes of the whole, across decoding blocks.
    @Test func wavIsExactAndSeekable() async throws {
        let h = try await Harness()
        let source = try h.longWAV(seconds: 75)
        let row = try h.add(source, as: "1732467600.77")
        let token = try await h.token(.viewer, company: "42")
        try await h.test { client in
            let full = try await client.execute(uri: "/recordings/1732467600.77.wav", method: .get, headers: h.bearer(token))
            #expect(full.status == .ok)
            #expect(full.bytes.count == 44 + 75 * 8000 * 2)
            #expect(full.headers[.contentLength] == String(44 + row.samples * 2))
            #expect(full.headers[.contentType] == "audio/wav")
            #expect(Array(full.bytes[0..<4]) == Array("RIFF".utf8))
            // sox reads it as 8 kHz mono of exactly the source's samples.
            let wavPath = h.dir.file("got.wav")
            try Data(full.bytes).write(to: URL(fileURLWithPath: wavPath))
            #expect(try run("soxi", ["-s", wavPath]).out == Data("600000\n".utf8))

            // Aligned with the source: the decoded speech correlates best at lag 0.
            let src = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source))).dropFirst(44)
            func samples(_ b: ArraySlice<UInt8>) -> [Double] {
                stride(from: b.startIndex, to: b.endIndex - 1, by: 2).map { Double(Int16(bitPattern: UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8)) }
            }
            let a = samples(src[(44 + 160_000)..<(44 + 200_000)])
            let b = samples(full.bytes[(44 + 160_000 - 80)..<(44 + 200_000 + 80)])
            func corr(_ lag: Int) -> Double { (0..<a.count).reduce(0) { $0 + a[$1] * b[$1 + 40 + lag] } }
            #expect((-40...40).max { corr($0) < corr($1) } == 0)

            // Ranges anywhere (across the 10 s blocks, deep in the file) equal the whole's bytes.
            let size = full.bytes.count
            var rng = SystemRandomNumberGenerator()
            var specs = ["bytes=0-43", "bytes=40-47", "bytes=\(44 + 160_000 - 3)-\(44 + 160_000 + 3)", "bytes=-1001", "bytes=\(size - 2)-"]
            for _ in 0..<10 {
                let a = Int.random(in: 0..<size, using: &rng)
                specs.append("bytes=\(a)-\(min(size - 1, a + Int.random(in: 0..<300_000, using: &rng)))")
            }
            for spec in specs {
                let r = try await client.execute(uri: "/recordings/1732467600.77.wav", method: .get, headers: h.bearer(token) + [.range: spec])
                #expect(r.status == .partialContent, "\(spec)")
                guard case .ranges(let list) = ByteRanges.parse(spec, size: size) else { continue }
                #expect(r.bytes == Array(full.bytes[list[0]]), "\(spec)")
            }
            let head = try await client.execute(uri: "/recordings/1732467600.77.wav", method: .head, headers: h.bearer(token))
            #expect(head.headers[.contentLength] == String(size) && head.bytes.isEmpty)
        }
    }
}

/// The parts of a `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1.1): each part's
/// headers (names lowercased) and body bytes. Throws when the body is not that shape.
func multipartParts(_ body: [UInt8], boundary: String) throws -> [(headers: [String: String], body: [UInt8])] {
    func find(_ needle: [UInt8], from: Int) -> Int? {
        guard needle.count <= body.count else { return nil }
        var i = from
        while i + needle.count <= body.count {
            if body[i] == needle[0], Array(body[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
    let delimiter = Array("--\(boundary)".utf8)
    let bad = DecodeError(message: "not multipart/byteranges with boundary \(boundary)")
    guard var at = find(delimiter, from: 0), at == 0 else { throw bad }
    var parts: [(headers: [String: String], body: [UInt8])] = []
    while true {
        at += delimiter.count
        if Array(body[at..<min(at + 2, body.count)]) == Array("--".utf8) { break }  // the close delimiter
        guard Array(body[at..<min(at + 2, body.count)]) == [13, 10], let blank = find([13, 10, 13, 10], from: at) else { throw bad }
        var headers: [String: String] = [:]
        for line in String(decoding: body[(at + 2)..<blank], as: UTF8.self).components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { throw bad }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        // A part's body runs to the CRLF that precedes the next delimiter.
        guard let next = find([13, 10] + delimiter, from: blank + 4) else { throw bad }
        parts.append((headers, Array(body[(blank + 4)..<next])))
        at = next + 2
    }
    return parts
}

extension HTTPFields {
    static func + (a: HTTPFields, b: HTTPFields) -> HTTPFields {
        var out = a
        for f in b { out.append(f) }
        return out
    }
}
