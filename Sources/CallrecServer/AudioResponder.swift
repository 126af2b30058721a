import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Range and conditional requests for an audio representation, done by the book (RFC 9110
/// §13–§15), because Hummingbird's FileMiddleware gets suffix ranges, ranges past the end,
/// If-None-Match lists and If-Range wrong. `body(range)` produces the bytes of a range.
enum AudioResponder {
    static func respond(
        _ request: Request, size: Int, etag: String, lastModified: Date, contentType: String,
        body: (ClosedRange<Int>) async throws -> ResponseBody
    ) async throws -> Response {
        var headers: HTTPFields = [
            .acceptRanges: "bytes", .eTag: etag, .lastModified: HTTPDate.string(lastModified), .contentType: contentType,
            .cacheControl: "private, max-age=3600",
        ]
        let outcome = Preconditions.evaluate(
            ifMatch: request.headers[.ifMatch], ifNoneMatch: request.headers[.ifNoneMatch],
            ifModifiedSince: request.headers[.ifModifiedSince], ifUnmodifiedSince: request.headers[.ifUnmodifiedSince],
            ifRange: request.headers[.ifRange], etag: etag, lastModified: lastModified)
        switch outcome {
        case .failed:
            return Response(status: .preconditionFailed, headers: [.eTag: etag])
        case .notModified:
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        case .proceed(let honourRange):
            let ranges = honourRange ? ByteRanges.parse(request.headers[.range], size: size) : .none
            let head = request.method == .head
            switch ranges {
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                headers[.contentType] = "application/json"
                let err = #"{"error":{"code":"range_not_satisfiable","message":"the range lies past the end of \#(size) bytes"}}"#
                headers[.contentLength] = String(err.utf8.count)
                return Response(status: .rangeNotSatisfiable, headers: headers, body: head ? ResponseBody() : .init(byteBuffer: ByteBuffer(string: err)))
            case .ranges(let list) where list.count == 1:
                let r = list[0]
                headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)"
                headers[.contentLength] = String(r.count)
                return Response(status: .partialContent, headers: headers, body: head ? ResponseBody() : try await body(r))
            case .ranges(let list):
                return try await multipart(list, size: size, contentType: contentType, headers: headers, head: head, body: body)
            case .none:
                headers[.contentLength] = String(size)
                if size == 0 || head { return Response(status: .ok, headers: headers, body: ResponseBody()) }
                return Response(status: .ok, headers: headers, body: try await body(0...(size - 1)))
            }
        }
    }

    /// Several ranges: `multipart/byteranges` (§14.6), each part with its Content-Range.
    static func multipart(
        _ ranges: [ClosedRange<Int>], size: Int, contentType: String, headers: HTTPFields, head: Bool,
        body: (ClosedRange<Int>) async throws -> ResponseBody
    ) async throws -> Response {
        let boundary = "callrec-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
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
