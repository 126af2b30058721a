import CallrecSupport
import Crypto
import Foundation

// Encryption at rest: the sealed-file format (v1) and its random-access reader.
//
// A sealed file is a 64-byte header followed by the plaintext cut into 64 KiB segments, each
// sealed with AES-256-GCM in the STREAM construction (Hoang–Reyhanitabar–Rogaway–Vizár, as in
// Tink's streaming AEAD and age's payload): the nonce of segment i is
// `prefix (7 bytes) ‖ i (4 bytes, big-endian) ‖ last (1 byte: 1 for the final segment, else 0)`,
// so segments cannot be reordered, dropped, repeated or truncated at a boundary unnoticed.
//
//     0  "CRSEAL"                        magic
//     6  0x01                            format version
//     7  0x10                            log2 of the plaintext segment size (64 KiB)
//     8  key id (16 bytes)               which data key (in the key store); never a key
//    24  salt (16 bytes)                 random per file
//    40  nonce prefix (7 bytes)          random per file
//    47  0x00                            reserved
//    48  header MAC (16 bytes)           HMAC-SHA256(HKDF(dk, salt, "callrec seal v1 header"), bytes 0..<48)[0..<16]
//    64  segment 0: ciphertext ‖ tag     each 65,536 + 16 bytes but the last (1…65,536 + 16; 0 + 16 only when the file is empty)
//
// The segment key is HKDF-SHA256(dk, salt, "callrec seal v1 segments") — a fresh key per file
// even when a recording is sealed again under the same data key — and every segment
// authenticates bytes 0..<48 of the header as associated data, so a header moved onto another
// file or edited fails too. The plaintext size follows from the file size alone.

/// Why a sealed file could not be read. Every case fails closed: no byte of a segment that did
/// not authenticate is ever returned.
public struct SealError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The file's data key is not in the key store: destroyed by a removal (crypto-shredded).
        case shredded
        /// The header is malformed, of an unknown version, or fails its MAC (wrong key).
        case header
        /// A segment fails authentication (damaged, moved, from another file).
        case segment
        /// The file's size is not one a sealed file can have (cut short).
        case truncated
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// The id of a recording's data key: 16 random bytes, written in the file's header and keying the
/// key store's row.
public struct DataKeyID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init?(_ bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }
    public static func random() -> DataKeyID {
        var g = SystemRandomNumberGenerator()
        return DataKeyID((0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })!
    }
    public var description: String { bytes.hexString }
}

/// A recording's data key (256 bits) with its id.
public struct DataKey: Sendable {
    public let id: DataKeyID
    public let key: SymmetricKey
    public init(id: DataKeyID, key: SymmetricKey) {
        self.id = id
        self.key = key
    }
}

public enum SealFormat {
    public static let magic: [UInt8] = Array("CRSEAL".utf8)
    public static let version: UInt8 = 1
    public static let headerSize = 64
    public static let segmentSize = 1 << 16
    public static let tagSize = 16
    public static let sealedSegmentSize = segmentSize + tagSize
    /// The header bytes its MAC covers and every segment authenticates.
    static let authenticatedHeader = 48

    /// Whether `bytes` (a file's first bytes) start a sealed file.
    public static func isSealed(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.count >= magic.count && bytes.prefix(magic.count).elementsEqual(magic)
    }

    /// Whether the file at `path` is sealed (false when it cannot be read).
    public static func isSealed(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: magic.count)
        return pread(fd, &head, head.count, 0) == head.count && isSealed(head)
    }

    /// The plaintext size of a sealed file of `sealedSize` bytes; nil for a size no sealed file has.
    public static func plaintextSize(sealedSize: Int) -> Int? {
        let body = sealedSize - headerSize
        guard body >= tagSize else { return nil }
        let segments = (body + sealedSegmentSize - 1) / sealedSegmentSize
        let last = body - (segments - 1) * sealedSegmentSize
        // Only an empty file has an empty last segment.
        guard last > tagSize || segments == 1 else { return nil }
        return body - segments * tagSize
    }

    /// The size of the sealed file of `plaintextSize` bytes.
    public static func sealedSize(plaintextSize n: Int) -> Int {
        let segments = max(1, (n + segmentSize - 1) / segmentSize)
        return headerSize + n + segments * tagSize
    }

    /// The number of segments of a plaintext of `n` bytes (an empty file has one, empty).
    static func segmentCount(plaintextSize n: Int) -> Int { max(1, (n + segmentSize - 1) / segmentSize) }

    /// The data key id a header names, without checking anything else.
    public static func keyID(header: some Collection<UInt8>) -> DataKeyID? {
        let h = Array(header.prefix(headerSize))
        guard h.count == headerSize, isSealed(h) else { return nil }
        return DataKeyID(Array(h[8..<24]))
    }
}

/// The keys and nonces of one sealed file: made for a new file, or from a header and its data key.
public struct SealContext: Sendable {
    public let header: [UInt8]
    public let keyID: DataKeyID
    private let segmentKey: SymmetricKey
    private let prefix: [UInt8]

    /// A new file's: random salt and nonce prefix unless given (known-answer tests give them).
    public init(key: DataKey, salt: [UInt8]? = nil, prefix: [UInt8]? = nil) {
        var g = SystemRandomNumberGenerator()
        let salt = salt ?? (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        let prefix = prefix ?? (0..<7).map { _ in UInt8.random(in: 0...255, using: &g) }
        precondition(salt.count == 16 && prefix.count == 7)
        var h = SealFormat.magic + [SealFormat.version, 16] + key.id.bytes + salt + prefix + [0]
        h += Self.mac(Array(h), key: key.key, salt: salt)
        header = h
        keyID = key.id
        self.prefix = prefix
        segmentKey = Self.segmentKey(key.key, salt: salt)
    }

    /// An existing file's, from its header: checks the version and the header's MAC.
    public init(header h: [UInt8], key: SymmetricKey, name: String) throws {
        guard h.count == SealFormat.headerSize, SealFormat.isSealed(h) else { throw SealError(.header, "\(name): not a sealed file") }
        guard h[6] == SealFormat.version, h[7] == 16, h[47] == 0 else {
            throw SealError(.header, "\(name): sealed file of an unknown version (\(h[6]))")
        }
        let salt = Array(h[24..<40])
        let expected = Self.mac(Array(h[0..<SealFormat.authenticatedHeader]), key: key, salt: salt)
        guard expected.elementsEqual(h[48..<64]) else {
            throw SealError(.header, "\(name): the sealed header does not authenticate (damaged, or not this key)")
        }
        header = h
        keyID = DataKeyID(Array(h[8..<24]))!
        prefix = Array(h[40..<47])
        segmentKey = Self.segmentKey(key, salt: salt)
    }

    static func segmentKey(_ key: SymmetricKey, salt: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: salt, info: Array("callrec seal v1 segments".utf8), outputByteCount: 32)
    }

    static func mac(_ bytes: [UInt8], key: SymmetricKey, salt: [UInt8]) -> [UInt8] {
        let macKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: salt, info: Array("callrec seal v1 header".utf8), outputByteCount: 32)
        return Array(Array(HMAC<SHA256>.authenticationCode(for: bytes, using: macKey)).prefix(16))
    }

    func nonce(_ index: Int, last: Bool) throws -> AES.GCM.Nonce {
        guard index >= 0, index <= Int(UInt32.max) else { throw SealError(.segment, "segment \(index) is past the format's limit") }
        let i = UInt32(index)
        return try AES.GCM.Nonce(data: prefix + [UInt8(i >> 24), UInt8(i >> 16 & 0xFF), UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF), last ? 1 : 0])
    }

    /// Segment `index` sealed: ciphertext ‖ tag.
    public func seal(_ plaintext: UnsafeRawBufferPointer, index: Int, last: Bool) throws -> [UInt8] {
        let box = try AES.GCM.seal(
            plaintext, using: segmentKey, nonce: nonce(index, last: last), authenticating: header[0..<SealFormat.authenticatedHeader])
        return Array(box.ciphertext) + Array(box.tag)
    }

    /// Segment `index` opened, or SealError.segment.
    public func open(_ sealed: UnsafeRawBufferPointer, index: Int, last: Bool, name: String) throws -> Data {
        guard sealed.count >= SealFormat.tagSize else { throw SealError(.truncated, "\(name): segment \(index) is cut short") }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: nonce(index, last: last), ciphertext: UnsafeRawBufferPointer(rebasing: sealed[..<(sealed.count - SealFormat.tagSize)]),
                tag: UnsafeRawBufferPointer(rebasing: sealed[(sealed.count - SealFormat.tagSize)...]))
            return try AES.GCM.open(box, using: segmentKey, authenticating: header[0..<SealFormat.authenticatedHeader])
        } catch {
            throw SealError(.segment, "\(name): segment \(index) does not authenticate (damaged, moved or from another file)")
        }
    }
}

/// Writes a sealed file through a descriptor it does not own, at fixed offsets: the header at 0,
/// segment i at 64 + i·65,552. Segment 0 stays in memory, unsealed, until `finish`, so that a
/// writer may still patch its first bytes (OggOpusWriter rewrites the OpusTags page at the end);
/// the segment being filled may be patched too. Nothing else can be: it is sealed already.
final class SegmentSealer {
    let context: SealContext
    private let fd: Int32
    private let name: String
    private var first: [UInt8]?
    private var current: [UInt8] = []
    private var index = 0
    private var finished = false

    init(fd: Int32, name: String, context: SealContext) throws {
        self.fd = fd
        self.name = name
        self.context = context
        current.reserveCapacity(SealFormat.segmentSize)
        try put(context.header, at: 0)
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            if current.count == SealFormat.segmentSize {
                // Full, and more follows: it is not the last.
                if index == 0 { first = current } else { try emit(current, index: index, last: false) }
                current.removeAll(keepingCapacity: true)
                index += 1
            }
            let n = min(rest.count, SealFormat.segmentSize - current.count)
            current.append(contentsOf: rest.prefix(n))
            rest = rest.dropFirst(n)
        }
    }

    /// Overwrites plaintext bytes at `position` (in segment 0, or in the segment being filled).
    func patch(_ bytes: [UInt8], at position: Int) throws {
        guard !bytes.isEmpty else { return }
        let seg = position / SealFormat.segmentSize
        guard (position + bytes.count - 1) / SealFormat.segmentSize == seg else {
            throw MediaError(.encoder, "\(name): a patch across sealed segments")
        }
        let at = position - seg * SealFormat.segmentSize
        if seg == index, at + bytes.count <= current.count {
            current.replaceSubrange(at..<(at + bytes.count), with: bytes)
        } else if seg == 0, var f = first, at + bytes.count <= f.count {
            f.replaceSubrange(at..<(at + bytes.count), with: bytes)
            first = f
        } else {
            throw MediaError(.encoder, "\(name): cannot patch a segment already sealed")
        }
    }

    /// Seals the last segment (and segment 0). Idempotent.
    func finish() throws {
        guard !finished else { return }
        try emit(current, index: index, last: true)
        if index > 0, let f = first { try emit(f, index: 0, last: false) }
        first = nil
        finished = true
    }

    private func emit(_ plaintext: [UInt8], index: Int, last: Bool) throws {
        let sealed = try plaintext.withUnsafeBytes { try context.seal($0, index: index, last: last) }
        try put(sealed, at: SealFormat.headerSize + index * SealFormat.sealedSegmentSize)
    }

    private func put(_ bytes: [UInt8], at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw MediaError.posix("cannot write", name)
            }
            done += n
        }
    }
}

/// Where readers find data keys: every key store open in this process registers here (weakly),
/// and a sealed file's key id is looked up in each (ids are random 128-bit values, so no two
/// stores share one). `cachedKey` never blocks: for an event loop.
public protocol DataKeySource: AnyObject, Sendable {
    func dataKey(_ id: DataKeyID) throws -> SymmetricKey?
    func cachedDataKey(_ id: DataKeyID) -> SymmetricKey?
}

public enum DataKeys {
    private final class Registry: @unchecked Sendable {
        let lock = NSLock()
        var sources: [Weak] = []
    }
    private struct Weak { weak var source: (any DataKeySource)? }
    private static let registry = Registry()

    public static func register(_ source: any DataKeySource) {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        registry.sources.removeAll { $0.source == nil }
        registry.sources.append(Weak(source: source))
    }

    private static var sources: [any DataKeySource] {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        return registry.sources.compactMap(\.source)
    }

    /// The key from whichever store has it; a store that fails (its database unreadable) is
    /// skipped, and its error thrown only when no store has the key.
    public static func key(_ id: DataKeyID) throws -> SymmetricKey? {
        var failure: Error?
        for s in sources {
            do { if let k = try s.dataKey(id) { return k } } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
        return nil
    }

    public static func cachedKey(_ id: DataKeyID) -> SymmetricKey? {
        for s in sources { if let k = s.cachedDataKey(id) { return k } }
        return nil
    }
}

/// A stored audio file opened for reading, plaintext or sealed alike: `size` is the plaintext's,
/// and `read(into:count:at:)` is pread(2) over the plaintext. A sealed file is checked when it is
/// opened (its key, its header's MAC, its size, its last segment, so a file cut short at a segment
/// boundary is refused at once); a range decrypts only the segments it covers, each authenticated
/// before any of its bytes is returned. Not for use by two threads at once.
public final class StoredFile {
    public let path: String
    public let descriptor: Int32
    /// Plaintext bytes.
    public let size: Int
    /// The sealed file's context; nil for a plaintext file.
    public let seal: SealContext?
    private let segments: Int
    private var cached: (index: Int, bytes: Data)?
    private var buffer: [UInt8] = []

    /// Opens `path`. `key` overrides the registered key stores (tests, `callrec decrypt`);
    /// `cachedKeysOnly` never asks a key store's database (for an event loop: nil when the key is
    /// not in memory).
    public convenience init(path: String, key: SymmetricKey? = nil) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MediaError.posix("cannot open", path) }
        try self.init(descriptor: fd, path: path, key: key)
    }

    /// Takes ownership of `fd` (closed on failure too). `checkLast: false` skips authenticating
    /// the last segment at open, for a caller that checks the size against the catalog's instead
    /// (a file cut short at a segment boundary has another size): the fast path.
    public init(descriptor fd: Int32, path: String, key: SymmetricKey? = nil, cachedKeysOnly: Bool = false, checkLast: Bool = true) throws {
        self.path = path
        descriptor = fd
        var ok = false
        defer { if !ok { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw MediaError.posix("cannot stat", path) }
        let fileSize = Int(st.st_size)
        var head = [UInt8](repeating: 0, count: SealFormat.headerSize)
        let got = fileSize >= SealFormat.magic.count ? pread(fd, &head, head.count, 0) : 0
        guard got >= SealFormat.magic.count, SealFormat.isSealed(head) else {
            size = fileSize
            seal = nil
            segments = 0
            ok = true
            return
        }
        guard got == SealFormat.headerSize, let id = SealFormat.keyID(header: head) else {
            throw SealError(.truncated, "\(path): the sealed header is cut short")
        }
        let found: SymmetricKey? = try key ?? (cachedKeysOnly ? DataKeys.cachedKey(id) : DataKeys.key(id))
        guard let found else {
            throw SealError(.shredded, "\(path): its data key \(id) is not in the key store (destroyed by a removal: the file is noise)")
        }
        seal = try SealContext(header: head, key: found, name: path)
        guard let plain = SealFormat.plaintextSize(sealedSize: fileSize) else {
            throw SealError(.truncated, "\(path): \(fileSize) bytes is not the size of a whole sealed file (cut short)")
        }
        size = plain
        segments = SealFormat.segmentCount(plaintextSize: plain)
        ok = true
        if checkLast { _ = try segment(segments - 1) }  // the last one must say it is the last
    }

    deinit { close(descriptor) }

    public var isSealed: Bool { seal != nil }

    /// The plaintext of segment `i`, authenticated.
    func segment(_ i: Int) throws -> Data {
        if let c = cached, c.index == i { return c.bytes }
        guard let seal else { throw MediaError(.io, "\(path): not sealed") }
        let last = i == segments - 1
        let start = SealFormat.headerSize + i * SealFormat.sealedSegmentSize
        let length = last ? SealFormat.sealedSize(plaintextSize: size) - start : SealFormat.sealedSegmentSize
        if buffer.count < length { buffer = [UInt8](repeating: 0, count: SealFormat.sealedSegmentSize) }
        var done = 0
        while done < length {
            let n = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, length - done, off_t(start + done)) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw MediaError.posix("cannot read", path) }
            if n == 0 { throw SealError(.truncated, "\(path): segment \(i) is cut short") }
            done += n
        }
        let plain = try buffer.withUnsafeBytes { try seal.open(UnsafeRawBufferPointer(rebasing: $0[0..<length]), index: i, last: last, name: path) }
        cached = (i, plain)
        return plain
    }

    /// Like pread(2) over the plaintext: up to `count` bytes at `offset`, 0 at the end.
    public func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: Int) throws -> Int {
        guard seal != nil else {
            while true {
                let n = pread(descriptor, destination, count, off_t(offset))
                if n < 0, errno == EINTR { continue }
                if n < 0 { throw MediaError.posix("cannot read", path) }
                return n
            }
        }
        guard offset < size, count > 0 else { return 0 }
        let end = min(size, offset + count)
        var at = offset
        while at < end {
            let i = at / SealFormat.segmentSize
            let plain = try segment(i)
            let from = at - i * SealFormat.segmentSize
            let n = min(end - at, plain.count - from)
            guard n > 0 else { throw SealError(.truncated, "\(path): segment \(i) is short") }
            plain.withUnsafeBytes { src in (destination + (at - offset)).copyMemory(from: src.baseAddress! + from, byteCount: n) }
            at += n
        }
        return end - offset
    }

    /// The plaintext bytes of `range` (clamped to the file).
    public func bytes(_ range: Range<Int>) throws -> [UInt8] {
        let r = range.clamped(to: 0..<size)
        var out = [UInt8](repeating: 0, count: r.count)
        var done = 0
        while done < r.count {
            let n = try out.withUnsafeMutableBytes { try read(into: $0.baseAddress! + done, count: r.count - done, at: r.lowerBound + done) }
            if n == 0 { throw MediaError(.io, "\(path): changed while read") }
            done += n
        }
        return out
    }

    /// SHA-256 of the plaintext, hex (of a stored file, plaintext or sealed: what the catalog holds).
    public func sha256() throws -> String {
        var hasher = SHA256()
        let chunk = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buf.deallocate() }
        var at = 0
        while true {
            let n = try read(into: buf, count: chunk, at: at)
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buf, count: n))
            at += n
        }
        return Array(hasher.finalize()).hexString
    }

    /// The plaintext SHA-256 of the stored file at `path`.
    public static func sha256(of path: String) throws -> String { try StoredFile(path: path).sha256() }
}

/// Writes the plaintext of `input` (a plaintext or sealed file) into `output` (created, must not
/// exist; mode 0640), sealed under `context` when given, fsynced. For `callrec encrypt`/`decrypt`
/// and tests; the ingest seals as it writes (FileOutput).
public func copyFile(_ input: StoredFile, to output: String, sealing context: SealContext? = nil) throws {
    let file = try FileOutput(creating: output, sealing: context)
    let chunk = 1 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
    defer { buf.deallocate() }
    var at = 0
    while true {
        let n = try input.read(into: buf, count: chunk, at: at)
        if n == 0 { break }
        try file.write(buf.assumingMemoryBound(to: UInt8.self), n)
        at += n
    }
    try file.sync()
}
