import Foundation

/// A file being written: buffered appends, in-place patches, fsync. Errors carry the path.
/// With `sealing`, the bytes reach the disk sealed (Sealed.swift): offsets stay the plaintext's,
/// and only the first 64 KiB segment and the one being filled can still be patched.
final class FileOutput {
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var offset = 0
    private static let bufferSize = 1 << 16
    private let sealer: SegmentSealer?

    /// Creates `path`, which must not exist (`O_EXCL`), mode 0640 (recordings are personal data).
    init(creating path: String, sealing: SealContext? = nil) throws {
        self.path = path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw MediaError.posix("cannot create", path) }
        self.fd = fd
        do {
            sealer = try sealing.map { try SegmentSealer(fd: fd, name: path, context: $0) }
        } catch {
            close(fd)
            throw error
        }
        buffer.reserveCapacity(Self.bufferSize)
    }

    deinit { close(fd) }

    func write(_ bytes: UnsafePointer<UInt8>, _ count: Int) throws {
        if let sealer {
            offset += count
            return try sealer.append(UnsafeRawBufferPointer(start: bytes, count: count))
        }
        buffer.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
        offset += count
        if buffer.count >= Self.bufferSize { try flush() }
    }

    func flush() throws {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw MediaError.posix("cannot write", path)
            }
            done += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Overwrites bytes already flushed.
    func pwrite(_ bytes: [UInt8], at position: Int) throws {
        if let sealer { return try sealer.patch(bytes, at: position) }
        try flush()
        let n = bytes.withUnsafeBytes { Foundation.pwrite(fd, $0.baseAddress!, $0.count, off_t(position)) }
        guard n == bytes.count else { throw MediaError.posix("cannot write", path) }
    }

    func sync() throws {
        try sealer?.finish()
        try flush()
        guard fsync(fd) == 0 else { throw MediaError.posix("cannot fsync", path) }
    }
}
