import CallrecMedia
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// A recording's audio file held open for `AudioFastPath`, with what was read from it when it
/// was opened: its identity (device, inode, size, times), whether it is sealed, and for a sealed
/// file its authenticated header's context (the derived segment key: no key store read, no
/// header MAC per request). Closed when the last response using it ends after it left the cache.
final class OpenAudio: @unchecked Sendable {
    let uniqueid: String
    let path: String
    let descriptor: Int32
    /// What `stat(path)` must still say for this descriptor to be the recording's file.
    let identity: FileIdentity
    let stat: stat
    /// A sealed file's reader (nil: plaintext, served with sendfile).
    let sealed: SealedRanges?
    /// Uptime of the last use (for the cache's sweep of unused entries).
    var usedAt: UInt64
    /// Its directory is watched (`FileChanges`): a change drops the entry, no `stat` per use.
    let watched: Bool

    init(uniqueid: String, path: String, descriptor: Int32, stat st: stat, sealed: SealedRanges?, watched: Bool = false) {
        self.uniqueid = uniqueid
        self.path = path
        self.descriptor = descriptor
        self.watched = watched
        identity = FileIdentity(st)
        stat = st
        self.sealed = sealed
        usedAt = DispatchTime.now().uptimeNanoseconds
    }

    deinit { close(descriptor) }

    /// The answer's fields that do not depend on the range (Accept-Ranges, ETag, Last-Modified,
    /// Content-Type, Cache-Control, in `AudioResponder.plan`'s order), rendered once per file and
    /// catalog row (the ETag is the row's: kept with the row's SHA-256 it was rendered for).
    func fields(_ audio: StoredAudio) -> ByteBuffer {
        fieldsLock.withLock {
            if let f = rendered, f.sha256 == audio.row.opusSHA256 { return f.bytes }
            var b = ByteBuffer()
            b.writeString(
                "Accept-Ranges: bytes\r\nETag: \(audio.opusETag)\r\nLast-Modified: \(HTTPDate.string(audio.modified))\r\n"
                    + "Content-Type: \(StoredAudio.opusType)\r\nCache-Control: \(AudioResponder.cacheControl)\r\n")
            rendered = (audio.row.opusSHA256, b)
            return b
        }
    }
    private let fieldsLock = NIOLock()
    private var rendered: (sha256: String, bytes: ByteBuffer)?

    /// A `NIOFileHandle` for one response's `FileRegion` that does not own the descriptor: NIO's
    /// handle is single-user (marked in use during each syscall), so each response gets its own;
    /// `release` gives the descriptor back without closing it.
    func handle() -> NIOFileHandle { NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor) }
    static func release(_ handle: NIOFileHandle) { _ = try? handle.takeDescriptorOwnership() }
}

/// What identifies a file's content for the cache: a rename over the path (append, encrypt,
/// decrypt), a removal (delete, purge, erasure, quarantine) or a change in place all change it.
struct FileIdentity: Equatable {
    let dev: UInt
    let ino: UInt
    let size: Int
    let mtime: timespec
    let ctime: timespec

    init(_ st: stat) {
        dev = UInt(st.st_dev)
        ino = UInt(st.st_ino)
        size = Int(st.st_size)
        mtime = st.st_mtim
        ctime = st.st_ctim
    }

    static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec
            && a.ctime.tv_sec == b.ctime.tv_sec && a.ctime.tv_nsec == b.ctime.tv_nsec
    }
}

/// Ranges of a sealed file's plaintext, decrypted on the calling thread from a descriptor kept
/// open: the header was authenticated once, when the file was opened; each segment a range covers
/// is read and authenticated before any of its bytes is returned (a damaged one throws, and
/// nothing of it is returned). Thread-safe: the context is immutable, and the last segments
/// opened are kept (`recent`) behind a lock.
///
/// Why keep them: a range that does not start on a segment boundary covers two segments, and a
/// player's next range starts where its last one ended, so without them every boundary segment
/// was read and authenticated twice (AES-GCM was most of a sealed range's cost). They are the
/// plaintext of segments that authenticated, held in memory only as long as the open file itself:
/// the entry, and with it these, is dropped on any change to the file (its identity is compared
/// on every request) and on every catalog change to the recording, crypto-shredding included.
struct SealedRanges: Sendable {
    let context: SealContext
    /// Plaintext bytes.
    let size: Int
    let segments: Int
    /// The last `Recent.capacity` segments opened, newest last.
    let recent = Recent()

    final class Recent: @unchecked Sendable {
        static let capacity = 2
        private let lock = NIOLock()
        private var items: [(index: Int, plain: Data)] = []
        func get(_ i: Int) -> Data? { lock.withLock { items.first { $0.index == i }?.plain } }
        func put(_ i: Int, _ plain: Data) {
            lock.withLock {
                items.removeAll { $0.index == i }
                if items.count == Self.capacity { items.removeFirst() }
                items.append((i, plain))
            }
        }
    }

    /// The sealed file behind `fd`, when its data key is in memory (never a key store read: for
    /// an event loop); nil otherwise, or when the header does not authenticate or the size is not
    /// a whole sealed file's.
    static func open(_ fd: Int32, fileSize: Int) -> SealedRanges? {
        var head = [UInt8](repeating: 0, count: SealFormat.headerSize)
        guard pread(fd, &head, head.count, 0) == head.count, let id = SealFormat.keyID(header: head), let key = DataKeys.cachedKey(id),
            let context = try? SealContext(header: head, key: key, name: ""), let size = SealFormat.plaintextSize(sealedSize: fileSize)
        else { return nil }
        return SealedRanges(context: context, size: size, segments: max(1, (size + SealFormat.segmentSize - 1) / SealFormat.segmentSize))
    }

    /// Decrypts `range` of the plaintext into `out`, reading through `scratch` (reused by the
    /// caller: one per event loop).
    func read(_ fd: Int32, _ range: Range<Int>, into out: inout ByteBuffer, scratch: inout [UInt8], path: String) throws {
        guard range.lowerBound >= 0, range.upperBound <= size else { throw SealError(.truncated, "\(path): range past the end") }
        if scratch.count < SealFormat.sealedSegmentSize { scratch = [UInt8](repeating: 0, count: SealFormat.sealedSegmentSize) }
        var at = range.lowerBound
        while at < range.upperBound {
            let i = at / SealFormat.segmentSize
            let from = at - i * SealFormat.segmentSize
            if let plain = recent.get(i) {
                let n = min(range.upperBound - at, plain.count - from)
                guard n > 0 else { throw SealError(.truncated, "\(path): segment \(i) is short") }
                _ = plain.withUnsafeBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[from..<(from + n)])) }
                at += n
                continue
            }
            let last = i == segments - 1
            let start = SealFormat.headerSize + i * SealFormat.sealedSegmentSize
            let length = last ? SealFormat.sealedSize(plaintextSize: size) - start : SealFormat.sealedSegmentSize
            var done = 0
            while done < length {
                let n = scratch.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(start + done)) }
                if n < 0, errno == EINTR { continue }
                if n < 0 { throw SealError(.truncated, "\(path): cannot read segment \(i): \(String(cString: strerror(errno)))") }
                if n == 0 { throw SealError(.truncated, "\(path): segment \(i) is cut short") }
                done += n
            }
            let plain = try scratch.withUnsafeBytes {
                try context.open(UnsafeRawBufferPointer(rebasing: $0[0..<length]), index: i, last: last, name: path)
            }
            recent.put(i, plain)
            let n = min(range.upperBound - at, plain.count - from)
            guard n > 0 else { throw SealError(.truncated, "\(path): segment \(i) is short") }
            _ = plain.withUnsafeBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[from..<(from + n)])) }
            at += n
        }
    }
}

/// Recordings' files held open for the fast path, by uniqueid (each entry knows its path and
/// inode). Why: opening, stat-ing, sniffing and closing the file was a fifth of a signed range's
/// cost under wrk, and a sealed file's header MAC and key derivation were paid per request too.
///
/// Never serves a removed or replaced file: the recording service drops a recording's entry on
/// every catalog change to it in this process (ingest and append, encryption, delete, purge,
/// erasure, quarantine), before the file itself is touched; and a change to the path by any
/// process — a rename over it, a removal, a write or attribute change in place (the CLI's
/// `encrypt`, `delete`, `purge`) — drops it when the kernel reports it (`FileChanges`, inotify on
/// the file's directory, watched before the file is opened). Where the directory cannot be
/// watched, every use compares `stat(path)` with the entry's device, inode, size and times.
/// Bounded: `capacity` entries (the least recently used leaves first; the descriptors kept back
/// from the connection cap are 256), and every 10 s a sweep closes entries unused for `idle` and
/// those whose file has been unlinked (a purge by the CLI while nobody plays): a removed file's
/// space is not held for long.
final class OpenAudioCache: @unchecked Sendable {
    private let lock = NIOLock()
    private var entries: [String: OpenAudio] = [:]
    /// Bumped by every invalidation: an entry opened before one is not stored after it.
    private var epoch: UInt64 = 0
    let capacity: Int
    let idleNanoseconds: UInt64

    /// Where changes to the entries' paths come from (nil: `stat` on every use).
    let changes: FileChanges?

    init(capacity: Int = 64, idle: Double = 60, changes: FileChanges? = FileChanges.shared) {
        self.capacity = capacity
        idleNanoseconds = UInt64(idle * 1e9)
        self.changes = changes
        changes?.register(self)
        scheduleSweep()
    }

    private func scheduleSweep() {
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + 10) { [weak self] in
            guard let self else { return }
            self.sweep()
            self.scheduleSweep()
        }
    }

    /// Closes entries unused for `idle`, and those whose file is unlinked (its last link gone).
    func sweep() {
        let now = DispatchTime.now().uptimeNanoseconds
        let dropped: [OpenAudio] = lock.withLock {
            var gone: [OpenAudio] = []
            for (id, e) in entries {
                var st = stat()
                if now &- e.usedAt > idleNanoseconds || fstat(e.descriptor, &st) != 0 || st.st_nlink == 0 {
                    gone.append(e)
                    entries[id] = nil
                }
            }
            return gone
        }
        _ = dropped  // released outside the lock (their deinit closes the descriptors)
    }

    /// The open file of `uniqueid` at `path`, if the cached one is still what the path names;
    /// else opened now (plaintext, or sealed with its key in memory) and cached. Nil when the
    /// file cannot be opened or its sealed key is not in memory: the router answers.
    func open(_ uniqueid: String, path: String) -> OpenAudio? {
        let now = DispatchTime.now().uptimeNanoseconds
        // Watched: any change to the path has dropped the entry already.
        let hit: OpenAudio? = lock.withLock {
            guard let e = entries[uniqueid], e.watched, e.path == path else { return nil }
            e.usedAt = now
            return e
        }
        if let hit { return hit }
        // Watched before the file is opened and before the epoch is read: a change from here on
        // is reported, and one reported before the entry is stored keeps it from being stored.
        let directory = (path as NSString).deletingLastPathComponent
        let watched = changes?.watch(directory: directory) ?? false
        var st = stat()
        guard stat(path, &st) == 0 else {
            invalidate(uniqueid)
            return nil
        }
        let (cached, seen): (OpenAudio?, UInt64) = lock.withLock {
            guard let e = entries[uniqueid] else { return (nil, epoch) }
            if e.path == path && e.identity == FileIdentity(st) {
                e.usedAt = now
                return (e, epoch)
            }
            entries[uniqueid] = nil  // replaced or moved: closed once its responses end
            return (nil, epoch)
        }
        if let cached { return cached }
        let fd = Foundation.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard fstat(fd, &st) == 0 else {
            close(fd)
            return nil
        }
        var magic = [UInt8](repeating: 0, count: SealFormat.magic.count)
        var sealed: SealedRanges?
        if pread(fd, &magic, magic.count, 0) == magic.count && SealFormat.isSealed(magic) {
            sealed = SealedRanges.open(fd, fileSize: Int(st.st_size))
            if sealed == nil {
                close(fd)
                return nil
            }
        }
        let entry = OpenAudio(uniqueid: uniqueid, path: path, descriptor: fd, stat: st, sealed: sealed, watched: watched)
        lock.withLock {
            guard seen == epoch else { return }
            if entries.count >= capacity, let oldest = entries.min(by: { $0.value.usedAt < $1.value.usedAt }) {
                entries[oldest.key] = nil
            }
            entries[uniqueid] = entry
        }
        return entry
    }

    /// Paths changed (`FileChanges`; a path ending in "/" is a directory: everything under it).
    func changed(_ paths: [String]) {
        let dropped: [OpenAudio] = lock.withLock {
            var gone: [OpenAudio] = []
            for (id, e) in entries where paths.contains(where: { $0.hasSuffix("/") ? e.path.hasPrefix($0) : e.path == $0 }) {
                gone.append(e)
                entries[id] = nil
            }
            if !gone.isEmpty { epoch &+= 1 }
            return gone
        }
        _ = dropped  // released outside the lock (their deinit closes the descriptors)
    }

    /// Everything (the kernel's event queue overflowed: some change may be unknown).
    func invalidateAll() {
        let dropped: [String: OpenAudio] = lock.withLock {
            epoch &+= 1
            defer { entries.removeAll() }
            return entries
        }
        _ = dropped
    }

    /// Drops a recording's open file (responses already using it finish with it).
    func invalidate(_ uniqueid: String) {
        let dropped: OpenAudio? = lock.withLock {
            epoch &+= 1
            return entries.removeValue(forKey: uniqueid)
        }
        _ = dropped  // released outside the lock (its deinit closes the descriptor)
    }

    var count: Int { lock.withLock { entries.count } }
    func isOpen(_ uniqueid: String) -> Bool { lock.withLock { entries[uniqueid] != nil } }
}
