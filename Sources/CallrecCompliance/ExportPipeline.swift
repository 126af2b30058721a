import CallrecCatalog
import CallrecMedia
import CallrecSupport
import Crypto
import Foundation

// The two halves of an export, one thread each (an export is I/O plus three or four passes of
// crypto over every byte, and a profile of the one-thread version showed them taking turns):
//
//  - `EntryReader`, on a thread of its own: pages through the catalog, fetches each page's data
//    keys in one key-store query, asks the kernel to read the next files ahead, reads each file
//    (a sealed one decrypted segment by segment), hashes it (SHA-256, checked against the catalog)
//    and computes its CRC-32, handing 1 MiB chunks over a bounded queue;
//  - the exporting thread: the ZIP (and age) writer, the manifests, and `ExportOutput`, which
//    hashes what is written, writes it in large pieces and has the kernel write it back as it goes.
//
// Memory is bounded by the chunks in flight (`EntryReader.chunks` of `chunkSize`).

/// One buffer of file bytes on its way from the reader to the writer.
final class ExportChunk: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    var count = 0
    init(size: Int) { buffer = .allocate(byteCount: size, alignment: 64) }
    deinit { buffer.deallocate() }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<count]) }
}

/// What the reader hands the writer, in order: each recording as begin, its chunks, end.
enum ExportItem: @unchecked Sendable {
    case begin(RecordingRow)
    case data(ExportChunk)
    case end(RecordingRow, bytes: Int, sha256: String, crc: UInt32)
}

/// Reads the recordings of a query in start order on a thread of its own (see above).
final class EntryReader: @unchecked Sendable {
    static let chunkSize = 1 << 20
    /// Chunks in flight: the reader may be this far ahead of the writer.
    static let chunks = 6
    /// Files whose reading the kernel is asked to start before they are needed.
    static let readAhead = 4

    let items = BoundedQueue<ExportItem>(capacity: 2 * chunks + 4)
    let free = BoundedQueue<ExportChunk>(capacity: chunks)
    private let catalog: Catalog
    private let query: ListQuery
    private let pageSize: Int
    private var worker: Worker<Void>?

    init(catalog: Catalog, query: ListQuery, pageSize: Int) {
        self.catalog = catalog
        self.query = query
        self.pageSize = pageSize
        for _ in 0..<Self.chunks { free.push(ExportChunk(size: Self.chunkSize)) }
    }

    func start() {
        worker = Worker(name: "callrec-export-r") { [self] in
            do {
                try run()
                items.finish()
            } catch {
                items.fail(error)
            }
        }
    }

    /// Stops the reader (the writer failed) and waits for its thread.
    func stop(_ error: any Error) {
        free.fail(error)
        items.fail(error)
        _ = try? worker?.join()
    }

    /// Waits for the reader's thread (after `items` ended).
    func join() { _ = try? worker?.join() }

    /// A chunk back to the reader, once written.
    func recycle(_ chunk: ExportChunk) {
        chunk.count = 0
        free.push(chunk)
    }

    private func run() throws {
        var q = query
        q.limit = pageSize
        repeat {
            let page = try catalog.list(q)
            // One key-store query for the page (a plaintext file needs none; a sealed file whose
            // key is not among these — moved from another recording — is looked up as anywhere else).
            let keys = try catalog.keys.dataKeys(forRecordings: page.items.map(\.uniqueid))
            for (i, row) in page.items.enumerated() {
                for next in page.items.dropFirst(i + 1).prefix(Self.readAhead) { prefetch(next) }
                try copy(row, keys: keys)
            }
            q.cursor = page.nextCursor
        } while q.cursor != nil
    }

    private var prefetched = Set<String>()

    /// Has the kernel start reading a file the reader will soon need (posix_fadvise WILLNEED):
    /// with the pages cold, the disk works on the next files while this one is decrypted.
    private func prefetch(_ row: RecordingRow) {
        guard prefetched.insert(row.uniqueid).inserted else { return }
        if prefetched.count > 4 * Self.readAhead { prefetched = [row.uniqueid] }
        let fd = open(catalog.data.absolute(row.opusPath), O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED)
        close(fd)
    }

    /// One recording: opened (a sealed file with its key from the page's batch), read in chunks,
    /// hashed; a file that does not match the catalog fails the export.
    private func copy(_ row: RecordingRow, keys: [DataKeyID: SymmetricKey]) throws {
        let path = catalog.data.absolute(row.opusPath)
        let input: StoredFile
        do {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw MediaError.posix("cannot open", path) }
            var head = [UInt8](repeating: 0, count: SealFormat.headerSize)
            let key = pread(fd, &head, head.count, 0) == head.count ? SealFormat.keyID(header: head).flatMap { keys[$0] } : nil
            input = try StoredFile(descriptor: fd, path: path, key: key)
        } catch let e as SealError {
            throw ExportError("\(row.uniqueid): \(e) (run callrec verify)")
        } catch {
            throw ExportError("\(row.uniqueid): its audio file is missing (run callrec verify)")
        }
        guard items.push(.begin(row)) else { throw Stopped() }
        var hasher = SHA256()
        var crc = CRC32()
        var bytes = 0
        while true {
            guard let chunk = try free.pop() else { throw Stopped() }
            let n = try input.read(into: chunk.buffer.baseAddress!, count: chunk.buffer.count, at: bytes)
            if n == 0 {
                recycle(chunk)
                break
            }
            chunk.count = n
            hasher.update(bufferPointer: chunk.bytes)
            crc.update(chunk.bytes)
            bytes += n
            guard items.push(.data(chunk)) else { throw Stopped() }
        }
        let sha = Array(hasher.finalize()).hexString
        guard sha == row.opusSHA256 else { throw ExportError("\(row.uniqueid): its audio file does not match the catalog's SHA-256 (run callrec verify)") }
        guard items.push(.end(row, bytes: bytes, sha256: sha, crc: crc.value)) else { throw Stopped() }
    }

    /// The writer stopped the reader (its own error is the one reported).
    struct Stopped: Error {}
}

/// The export's file: written in pieces of at least `bufferSize` (the ZIP's headers and
/// descriptors and the age writer's chunks are gathered), hashed as it is written (the summary's
/// SHA-256 without reading the file again), and written back to the disk as it goes
/// (`sync_file_range` every `flushEvery` bytes, and those pages then dropped from the page cache:
/// a 10 GB export neither evicts everything else nor leaves gigabytes for the final fsync).
final class ExportOutput {
    static let bufferSize = 1 << 20
    static let flushEvery = 32 << 20
    let fd: Int32
    private var hasher = SHA256()
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
    private var buffered = 0
    private(set) var written = 0
    /// Where the previous write-back started and the one before it.
    private var flushedTo = 0
    private var startedTo = 0

    init(fd: Int32) { self.fd = fd }
    deinit { buffer.deallocate() }

    func write(_ raw: UnsafeRawBufferPointer) throws {
        guard raw.count > 0 else { return }
        hasher.update(bufferPointer: raw)
        if buffered + raw.count <= buffer.count {
            (buffer.baseAddress! + buffered).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            buffered += raw.count
            if buffered == buffer.count { try flush() }
            return
        }
        try flush()
        if raw.count >= buffer.count / 2 {
            try put(raw)
        } else {
            buffer.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            buffered = raw.count
        }
    }

    func flush() throws {
        guard buffered > 0 else { return }
        try put(UnsafeRawBufferPointer(rebasing: buffer[0..<buffered]))
        buffered = 0
    }

    /// All of `raw` to `fd` (retrying short writes and EINTR), or an ExportError.
    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ExportError("cannot write the export: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    private func put(_ raw: UnsafeRawBufferPointer) throws {
        try Self.writeAll(fd, raw)
        written += raw.count
        if written - startedTo >= Self.flushEvery { writeBack() }
    }

    /// Starts writing back what was written since the last call, then waits for the previous
    /// range (started one call ago, so mostly done) and drops it from the page cache.
    private func writeBack() {
        guard let syncRange = Self.syncFileRange else { return }
        _ = syncRange(fd, off_t(startedTo), off_t(written - startedTo), Self.write)
        if startedTo > flushedTo {
            _ = syncRange(fd, off_t(flushedTo), off_t(startedTo - flushedTo), Self.waitBefore | Self.write | Self.waitAfter)
            _ = posix_fadvise(fd, off_t(flushedTo), off_t(startedTo - flushedTo), POSIX_FADV_DONTNEED)
            flushedTo = startedTo
        }
        startedTo = written
    }

    /// Everything out, and fsynced; the SHA-256 of the whole file.
    func finish() throws -> String {
        try flush()
        guard fsync(fd) == 0 else { throw ExportError("cannot write the export: \(String(cString: strerror(errno)))") }
        _ = posix_fadvise(fd, off_t(flushedTo), 0, POSIX_FADV_DONTNEED)
        return Array(hasher.finalize()).hexString
    }

    // sync_file_range(2): glibc has it, Swift's Glibc module does not declare it (_GNU_SOURCE).
    private typealias SyncFileRange = @convention(c) (Int32, off_t, off_t, UInt32) -> Int32
    private static let syncFileRange: SyncFileRange? = dlsym(nil, "sync_file_range").map { unsafeBitCast($0, to: SyncFileRange.self) }
    private static let waitBefore: UInt32 = 1, write: UInt32 = 2, waitAfter: UInt32 = 4
}
