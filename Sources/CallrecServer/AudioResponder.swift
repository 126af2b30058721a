import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What an audio request asks, beyond its path: the method and the headers RFC 9110's range and
/// conditional logic reads. Built from Hummingbird's request or from NIO's request head (the fast
/// path in `AudioFastPath`), so both answer alike.
struct AudioAsk: Sendable {
    var isHead: Bool
    var range: String?
    var ifMatch: String?
    var ifNoneMatch: String?
    var ifModifiedSince: String?
    var ifUnmodifiedSince: String?
    var ifRange: String?

    init(_ request: Request) {
        isHead = request.method == .head
        range = request.headers[.range]
        ifMatch = request.headers[.ifMatch]
        ifNoneMatch = request.headers[.ifNoneMatch]
        ifModifiedSince = request.headers[.ifModifiedSince]
        ifUnmodifiedSince = request.headers[.ifUnmodifiedSince]
        ifRange = request.headers[.ifRange]
    }

    /// A request with none of those fields yet (`RawRequestHead` fills them as it reads them).
    init(isHead: Bool) { self.isHead = isHead }

    init(isHead: Bool, header: (HTTPField.Name) -> String?) {
        self.isHead = isHead
        range = header(.range)
        ifMatch = header(.ifMatch)
        ifNoneMatch = header(.ifNoneMatch)
        ifModifiedSince = header(.ifModifiedSince)
        ifUnmodifiedSince = header(.ifUnmodifiedSince)
        ifRange = header(.ifRange)
    }
}

/// The answer to an audio request, decided before any byte of the body is read.
enum AudioPlan: Sendable {
    case preconditionFailed(HTTPFields)
    case notModified(HTTPFields)
    /// 416, with the contract's JSON error as the body.
    case unsatisfiable(HTTPFields, body: String)
    /// 206 with one range (`headers` carry Content-Range and Content-Length).
    case partial(ClosedRange<Int>, HTTPFields)
    /// 206 `multipart/byteranges`; headers as for the whole representation.
    case multipart([ClosedRange<Int>], HTTPFields)
    /// 200 with the whole representation of `size` bytes.
    case whole(size: Int, HTTPFields)

    var status: HTTPResponse.Status {
        switch self {
        case .preconditionFailed: return .preconditionFailed
        case .notModified: return .notModified
        case .unsatisfiable: return .rangeNotSatisfiable
        case .partial, .multipart: return .partialContent
        case .whole: return .ok
        }
    }
}

/// Range and conditional requests for an audio representation, done by the book (RFC 9110
/// §13–§15), because Hummingbird's FileMiddleware gets suffix ranges, ranges past the end,
/// If-None-Match lists and If-Range wrong.
enum AudioResponder {
    /// Audio may be kept by the browser that fetched it (private: behind a sign-in or a signed URL).
    static let cacheControl = "private, max-age=3600"

    static func plan(_ ask: AudioAsk, size: Int, etag: String, lastModified: Date, contentType: String) -> AudioPlan {
        var headers: HTTPFields = [
            .acceptRanges: "bytes", .eTag: etag, .lastModified: HTTPDate.string(lastModified), .contentType: contentType,
            .cacheControl: cacheControl,
        ]
        let outcome = Preconditions.evaluate(
            ifMatch: ask.ifMatch, ifNoneMatch: ask.ifNoneMatch, ifModifiedSince: ask.ifModifiedSince,
            ifUnmodifiedSince: ask.ifUnmodifiedSince, ifRange: ask.ifRange, etag: etag, lastModified: lastModified)
        switch outcome {
        case .failed:
            return .preconditionFailed([.eTag: etag])
        case .notModified:
            headers[.contentType] = nil
            return .notModified(headers)
        case .proceed(let honourRange):
            switch honourRange ? ByteRanges.parse(ask.range, size: size) : .none {
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                headers[.contentType] = "application/json"
                let err = #"{"error":{"code":"range_not_satisfiable","message":"the range lies past the end of \#(size) bytes"}}"#
                headers[.contentLength] = String(err.utf8.count)
                return .unsatisfiable(headers, body: err)
            case .ranges(let list) where list.count == 1:
                let r = list[0]
                headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)"
                headers[.contentLength] = String(r.count)
                return .partial(r, headers)
            case .ranges(let list):
                return .multipart(list, headers)
            case .none:
                headers[.contentLength] = String(size)
                return .whole(size: size, headers)
            }
        }
    }

    /// The plan as a Hummingbird response; `body(range)` produces the bytes of a range.
    static func respond(
        _ request: Request, size: Int, etag: String, lastModified: Date, contentType: String,
        body: (ClosedRange<Int>) async throws -> ResponseBody
    ) async throws -> Response {
        let ask = AudioAsk(request)
        let plan = plan(ask, size: size, etag: etag, lastModified: lastModified, contentType: contentType)
        switch plan {
        case .preconditionFailed(let headers), .notModified(let headers):
            return Response(status: plan.status, headers: headers)
        case .unsatisfiable(let headers, let err):
            return Response(status: plan.status, headers: headers, body: ask.isHead ? ResponseBody() : .init(byteBuffer: ByteBuffer(string: err)))
        case .partial(let r, let headers):
            return Response(status: plan.status, headers: headers, body: ask.isHead ? ResponseBody() : try await body(r))
        case .multipart(let list, let headers):
            return try await multipart(list, size: size, contentType: contentType, headers: headers, head: ask.isHead, body: body)
        case .whole(let size, let headers):
            if size == 0 || ask.isHead { return Response(status: .ok, headers: headers, body: ResponseBody()) }
            return Response(status: .ok, headers: headers, body: try await body(0...(size - 1)))
        }
    }

    /// Several ranges: `multipart/byteranges` (§14.6), each part with its Content-Range.
    static func multipart(
        _ ranges: [ClosedRange<Int>], size: Int, contentType: String, headers: HTTPFields, head: Bool,
        body: (ClosedRange<Int>) async throws -> ResponseBody
    ) async throws -> Response {
        // Fixed width, so that HEAD and GET give the same Content-Length.
        let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let boundary = "callrec-" + String(repeating: "0", count: 16 - hex.count) + hex
        var headers = headers
        headers[.contentType] = "multipart/byteranges; boundary=\(boundary)"
        let preambles = ranges.enumerated().map { i, r in
            (i == 0 ? "" : "\r\n") + "--\(boundary)\r\nContent-Type: \(contentType)\r\nContent-Range: bytes \(r.lowerBound)-\(r.upperBound)/\(size)\r\n\r\n"
        }
        let closing = "\r\n--\(boundary)--\r\n"
        let length = preambles.reduce(0) { $0 + $1.utf8.count } + ranges.reduce(0) { $0 + $1.count } + closing.utf8.count
        headers[.contentLength] = String(length)
        if head { return Response(status: .partialContent, headers: headers, body: ResponseBody()) }
        var parts: [ResponseBody] = []
        for r in ranges { parts.append(try await body(r)) }
        let bodies = parts
        return Response(
            status: .partialContent, headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                for (i, part) in bodies.enumerated() {
                    try await writer.write(ByteBuffer(string: preambles[i]))
                    try await part.write(PartWriter(parent: writer))
                }
                try await writer.write(ByteBuffer(string: closing))
                try await writer.finish(nil)
            })
    }
}

/// Forwards a part's bytes to the enclosing body, ignoring the part's own finish.
struct PartWriter: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    mutating func write(_ buffer: ByteBuffer) async throws { try await parent.write(buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
