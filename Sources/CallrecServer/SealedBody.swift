import CallrecMedia
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOPosix

/// Serving a sealed (encrypted at rest) `.opus`: the file is opened on NIO's thread pool (its key
/// may need the key store's database) and a range decrypts only the segments it covers. A range
/// up to 1 MiB is decrypted before the response starts, so a damaged segment is a JSON error;
/// a longer one is decrypted chunk by chunk as it is written, and a damaged segment there ends
/// the connection. Either way no byte of a segment that fails authentication is ever sent, and
/// the failure is logged and counted (`callrec_decrypt_failures_total`).
enum SealedBody {
    static let logger = Logger(label: "callrec.encryption")
    static let chunk = 256 * 1024

    /// Counts and logs a failure to read sealed audio, and gives the API's error for it.
    static func failed(_ error: Error, path: String) -> Error {
        guard let e = error as? SealError else { return error }
        Counter(label: "callrec_decrypt_failures_total", dimensions: [("reason", e.kind.rawValue)]).increment()
        logger.error("sealed audio refused", metadata: ["path": "\(path)", "reason": "\(e.kind.rawValue)", "error": "\(e)"])
        return e.kind == .shredded
            ? APIError(.serviceUnavailable, "audio_unavailable", "the audio's data key was destroyed (the recording was removed)")
            : APIError(.serviceUnavailable, "audio_unavailable", "the stored audio fails authentication; nothing of it was sent (run callrec verify)")
    }

    /// The file opened (key found, header, size and last segment checked) on the thread pool.
    static func open(_ path: String) async throws -> SealedSource {
        do {
            return try await NIOThreadPool.singleton.runIfActive { SealedSource(try StoredFile(path: path)) }
        } catch {
            throw failed(error, path: path)
        }
    }

    static func make(_ source: SealedSource, range: ClosedRange<Int>) async throws -> ResponseBody {
        let path = source.path
        if range.count <= FileBody.longBody {
            let buffer = try await read(source, range.lowerBound..<(range.upperBound + 1), path: path)
            return ResponseBody(byteBuffer: buffer)
        }
        return ResponseBody(contentLength: range.count) { writer in
            var at = range.lowerBound
            while at <= range.upperBound {
                let end = min(range.upperBound + 1, at + chunk)
                try await writer.write(try await read(source, at..<end, path: path))
                at = end
            }
            try await writer.finish(nil)
        }
    }

    static func read(_ source: SealedSource, _ range: Range<Int>, path: String) async throws -> ByteBuffer {
        do {
            return try await NIOThreadPool.singleton.runIfActive { ByteBuffer(bytes: try source.bytes(range)) }
        } catch {
            throw failed(error, path: path)
        }
    }
}

/// A `StoredFile` shared by a response's chunks, one read at a time.
final class SealedSource: @unchecked Sendable {
    private let file: StoredFile
    private let lock = NSLock()
    let path: String
    let size: Int
    init(_ file: StoredFile) {
        self.file = file
        path = file.path
        size = file.size
    }
    func bytes(_ range: Range<Int>) throws -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return try file.bytes(range)
    }
}
