import Foundation

/// The Ogg layer of a file, read independently of callrec's reader (RFC 3533 pages, lacing
/// values joined into packets): every packet's bytes, and each page's serial, flags and granule.
public struct OggLayout {
    public var packets: [[UInt8]] = []
    public var serials: Set<UInt32> = []
    public var bos: [Int] = []  // page indexes
    public var eos: [Int] = []
    public var granules: [Int64] = []

    public init(_ b: [UInt8]) throws {
        var at = 0
        var partial: [UInt8] = []
        var page = 0
        func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[i + $1]) << (8 * $1) } }
        while at < b.count {
            guard at + 27 <= b.count, b[at..<at + 4].elementsEqual("OggS".utf8) else { throw DecodeError(message: "no Ogg page at byte \(at)") }
            let flags = b[at + 5]
            let granule = Int64(bitPattern: UInt64(u32(at + 6)) | UInt64(u32(at + 10)) << 32)
            serials.insert(u32(at + 14))
            let segments = Int(b[at + 26])
            let lacing = b[at + 27..<at + 27 + segments]
            var body = at + 27 + segments
            if flags & 2 != 0 { bos.append(page) }
            if flags & 4 != 0 { eos.append(page) }
            granules.append(granule)
            for l in lacing {
                partial += b[body..<body + Int(l)]
                body += Int(l)
                if l < 255 {
                    packets.append(partial)
                    partial = []
                }
            }
            at = body
            page += 1
        }
    }

    /// The audio packets (after OpusHead and OpusTags).
    public var audio: ArraySlice<[UInt8]> { packets.dropFirst(2) }

    /// A plaintext file's layout.
    public static func file(_ path: String) throws -> OggLayout {
        try OggLayout([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }
}
