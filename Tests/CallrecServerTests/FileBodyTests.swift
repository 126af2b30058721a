import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import CallrecServer

/// Collects what a response body writes.
final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
    var bytes: [UInt8] = []
    var finished = false
    func write(_ buffer: ByteBuffer) async throws { bytes += Array(buffer.readableBytesView) }
    func finish(_ trailingHeaders: HTTPFields?) async throws { finished = true }
}

struct FileBodyTests {
    /// Short ranges are read on the task, long ones on the blocking pool: the same bytes either way.
    @Test func shortAndLongRangesAreTheFilesBytes() async throws {
        let dir = TempDir()
        let path = dir.file("blob")
        let data = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try Data(data).write(to: URL(fileURLWithPath: path))
        for range in [0...0, 100...70_000, 0...(FileBody.longBody - 1), 5...(FileBody.longBody + 5), 1...(data.count - 1)] {
            let body = try FileBody.make(path: path, range: range)
            let writer = CollectingWriter()
            try await body.write(writer)
            #expect(writer.finished)
            #expect(writer.bytes == Array(data[range]), "\(range)")
        }
    }
}
