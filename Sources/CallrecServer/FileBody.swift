import Foundation
import Hummingbird
import NIOCore
import NIOPosix

/// A byte range of a file as a response body (the router's path; signed `.opus` requests are
/// answered by `AudioFastPath` with sendfile). Ranges up to 1 MiB are read with pread(2) on the
/// task that writes them: Hummingbird's FileIO hops to the NIO thread pool for the open and for
/// every read, and for the short ranges a player asks for those thread switches cost more than the
/// read (measured with perf under wrk: futex waits and wake-ups on top, 3,400 req/s). Longer ones
/// (an export's ZIP, a whole recording), which may not be in the page cache, are read on the
/// blocking pool, since tasks run on the event loops; all are streamed in 256 KiB chunks with the
/// writer's backpressure between them.
enum FileBody {
    static let chunk = 256 * 1024
    static let longBody = 1 << 20

    /// The file is opened now, so that a missing file is an error before the headers go out.
    static func make(path: String, range: ClosedRange<Int>) throws -> ResponseBody {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw APIError(.serviceUnavailable, "audio_unavailable", "the audio file cannot be opened") }
        let descriptor = FileDescriptorBox(fd)
        return ResponseBody(contentLength: range.count) { writer in
            defer { descriptor.close() }
            var offset = range.lowerBound
            let allocator = ByteBufferAllocator()
            // Long bodies (an export's ZIP, a whole recording) may not be in the page cache: their
            // reads go to the blocking pool, since tasks run on the event loops in `serve`.
            let long = range.count > longBody
            while offset <= range.upperBound {
                let n = min(chunk, range.upperBound + 1 - offset)
                var buffer = allocator.buffer(capacity: n)
                let at = offset
                let read: @Sendable (UnsafeMutableRawBufferPointer) -> Int = { raw in max(0, pread(descriptor.fd, raw.baseAddress!, n, off_t(at))) }
                let got: Int
                if long {
                    let filled = try await NIOThreadPool.singleton.runIfActive { () -> ByteBuffer in
                        var b = allocator.buffer(capacity: n)
                        _ = b.writeWithUnsafeMutableBytes(minimumWritableBytes: n, read)
                        return b
                    }
                    got = filled.readableBytes
                    buffer = filled
                } else {
                    got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: n, read)
                }
                guard got > 0 else { throw APIError(.internalServerError, "read_failed", "the audio file changed while it was read") }
                offset += got
                try await writer.write(buffer)
            }
            try await writer.finish(nil)
        }
    }
}

/// Closes a descriptor once, whoever gets there (the body, or its deinit if it never ran).
final class FileDescriptorBox: @unchecked Sendable {
    let fd: Int32
    private var closed = false
    private let lock = NSLock()
    init(_ fd: Int32) { self.fd = fd }
    func close() {
        lock.lock()
        defer { lock.unlock() }
        if !closed {
            closed = true
            _ = Foundation.close(fd)
        }
    }
    deinit { close() }
}
