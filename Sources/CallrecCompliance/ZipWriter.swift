import Foundation

/// A streaming ZIP writer (APPNOTE 6.3): entries stored as they are (method 0, no recompression
/// of Opus), CRC-32 computed while the bytes go out, a data descriptor after each entry, and ZIP64
/// records wherever a size, an offset or the entry count needs them. Memory stays constant.
final class ZipWriter {
    /// Where the bytes go: a file, or a sealing writer (an age-encrypted export).
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var offset: UInt64 = 0
    private var central: [UInt8] = []
    private var count = 0
    private let dosTime: UInt16
    private let dosDate: UInt16

    /// Straight to a descriptor (tests; the export writes through ExportOutput).
    convenience init(fd: Int32, date: Date) {
        self.init(date: date) { raw in try ExportOutput.writeAll(fd, raw) }
    }

    init(date: Date, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.sink = sink
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        dosTime = UInt16(tm.tm_hour) << 11 | UInt16(tm.tm_min) << 5 | UInt16(tm.tm_sec / 2)
        dosDate = UInt16(max(0, tm.tm_year - 80)) << 9 | UInt16(tm.tm_mon + 1) << 5 | UInt16(tm.tm_mday)
    }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeRaw($0) }
    }

    /// Bytes straight to the sink, outside any entry (an age writer's output).
    func raw(_ bytes: UnsafeRawBufferPointer) throws { try sink(bytes) }

    private func writeRaw(_ raw: UnsafeRawBufferPointer) throws {
        try sink(raw)
        offset += UInt64(raw.count)
    }

    private var entry: (name: [UInt8], offset: UInt64, size: UInt64)?

    /// Starts an entry: its local header. Its bytes follow through `entryBytes`, then `end(crc:)`.
    func begin(name: String) throws {
        precondition(entry == nil, "a ZIP entry is already open")
        let nameBytes = Array(name.utf8)
        entry = (nameBytes, offset, 0)
        // Local header: sizes in the data descriptor (flag 3), names in UTF-8 (flag 11); a ZIP64
        // extra field with zero sizes so readers expect 8-byte sizes in the descriptor.
        var h = [UInt8]()
        h.reserveCapacity(30 + nameBytes.count + 20)
        h.le32(0x0403_4B50); h.le16(45); h.le16(1 << 3 | 1 << 11); h.le16(0); h.le16(dosTime); h.le16(dosDate)
        h.le32(0); h.le32(0xFFFF_FFFF); h.le32(0xFFFF_FFFF); h.le16(UInt16(nameBytes.count)); h.le16(20)
        h += nameBytes
        h.le16(0x0001); h.le16(16); h.le64(0); h.le64(0)
        try write(h)
    }

    /// Bytes of the open entry (whose CRC-32 the caller computes: the export's reader does).
    func entryBytes(_ chunk: UnsafeRawBufferPointer) throws {
        entry!.size += UInt64(chunk.count)
        try writeRaw(chunk)
    }

    /// Ends the open entry: its data descriptor, and its central directory record kept for `finish`.
    func end(crc: UInt32) throws {
        guard let (nameBytes, localOffset, size) = entry else { preconditionFailure("no ZIP entry is open") }
        entry = nil
        var d = [UInt8]()
        d.le32(0x0807_4B50); d.le32(crc); d.le64(size); d.le64(size)
        try write(d)
        // Central directory entry, with ZIP64 sizes and offset.
        var c = [UInt8]()
        c.le32(0x0201_4B50); c.le16(45 | 3 << 8); c.le16(45); c.le16(1 << 3 | 1 << 11); c.le16(0); c.le16(dosTime); c.le16(dosDate)
        c.le32(crc); c.le32(0xFFFF_FFFF); c.le32(0xFFFF_FFFF); c.le16(UInt16(nameBytes.count)); c.le16(28); c.le16(0)
        c.le16(0); c.le16(0); c.le32(0o100644 << 16); c.le32(0xFFFF_FFFF)
        c += nameBytes
        c.le16(0x0001); c.le16(24); c.le64(size); c.le64(size); c.le64(localOffset)
        central += c
        count += 1
    }

    /// Adds an entry whose bytes `produce` writes through the callback it is given.
    func add(name: String, produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try begin(name: name)
        var crc = CRC32()
        try produce { chunk in
            crc.update(chunk)
            try entryBytes(chunk)
        }
        try end(crc: crc.value)
    }

    func add(name: String, data: [UInt8]) throws {
        try add(name: name) { emit in try data.withUnsafeBytes { try emit($0) } }
    }

    /// The central directory, ZIP64 end records and the end record.
    func finish() throws {
        let cdOffset = offset
        try write(central)
        let cdSize = UInt64(central.count)
        let z64Offset = offset
        var z = [UInt8]()
        z.le32(0x0606_4B50); z.le64(44); z.le16(45); z.le16(45); z.le32(0); z.le32(0)
        z.le64(UInt64(count)); z.le64(UInt64(count)); z.le64(cdSize); z.le64(cdOffset)
        z.le32(0x0706_4B50); z.le32(0); z.le64(z64Offset); z.le32(1)
        z.le32(0x0605_4B50); z.le16(0); z.le16(0)
        z.le16(UInt16(min(count, 0xFFFF))); z.le16(UInt16(min(count, 0xFFFF)))
        z.le32(UInt32(min(cdSize, 0xFFFF_FFFF))); z.le32(UInt32(min(cdOffset, 0xFFFF_FFFF))); z.le16(0)
        try write(z)
    }
}

/// CRC-32 (IEEE 802.3), slicing by 16: sixteen table lookups per 16 bytes, read as four
/// little-endian words (the export computes it over every byte, on its reader thread beside
/// SHA-256 and the decryption).
struct CRC32 {
    private(set) var value: UInt32 = 0
    /// 16 tables of 256 entries, table k at k·256 (never freed: one per process).
    nonisolated(unsafe) static let tables: UnsafeMutablePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 16 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<16 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, !bytes.isEmpty else { return }
        var n = bytes.count
        var c = ~value
        let t = Self.tables
        @inline(__always) func lookup(_ table: Int, _ word: UInt32) -> UInt32 {
            t[table * 256 + Int(word & 0xFF)] ^ t[(table - 1) * 256 + Int(word >> 8 & 0xFF)]
                ^ t[(table - 2) * 256 + Int(word >> 16 & 0xFF)] ^ t[(table - 3) * 256 + Int(word >> 24)]
        }
        while n >= 16 {
            let w0 = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) ^ c
            let w1 = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let w2 = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let w3 = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            c = lookup(15, w0) ^ lookup(11, w1) ^ lookup(7, w2) ^ lookup(3, w3)
            p += 16
            n -= 16
        }
        while n > 0 {
            c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
            p += 1
            n -= 1
        }
        value = ~c
    }
}

extension [UInt8] {
    mutating func le16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    mutating func le32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { append(UInt8(v >> UInt32(s) & 0xFF)) } }
    mutating func le64(_ v: UInt64) { for s in stride(from: 0, to: 64, by: 8) { append(UInt8(v >> UInt64(s) & 0xFF)) } }
}

public struct ExportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
