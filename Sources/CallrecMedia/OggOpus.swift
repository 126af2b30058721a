import COgg
import Foundation

/// The identification header of an Ogg Opus stream (RFC 7845 §5.1), parsed in one place for every
/// reader of stored audio (OpusReader, OpusVerifier, WavView), as opus-tools shares `opus_header`.
struct OpusHead: Sendable, Equatable {
    var version: Int
    var channels: Int
    /// Samples at 48 kHz to drop from the decoder's output.
    var preSkip: Int
    /// The source's rate, informational (RFC 7845): callrec decodes at the Opus rate it encoded at.
    var inputSampleRate: Int
    var outputGain: Int
    var mappingFamily: Int

    /// Nil unless `packet` is an OpusHead of version 1.x (at least 19 bytes).
    init?(_ packet: UnsafeBufferPointer<UInt8>) {
        guard packet.count >= 19, packet.prefix(8).elementsEqual("OpusHead".utf8), packet[8] >> 4 == 0, packet[8] != 0 else { return nil }
        version = Int(packet[8])
        channels = Int(packet[9])
        preSkip = Int(packet[10]) | Int(packet[11]) << 8
        inputSampleRate = Int(packet[12]) | Int(packet[13]) << 8 | Int(packet[14]) << 16 | Int(packet[15]) << 24
        outputGain = Int(Int16(bitPattern: UInt16(packet[16]) | UInt16(packet[17]) << 8))
        mappingFamily = Int(packet[18])
    }

    init?(_ bytes: [UInt8]) {
        guard let head = bytes.withUnsafeBufferPointer({ OpusHead($0) }) else { return nil }
        self = head
    }

    /// What callrec writes and reads: mono or stereo, channel mapping family 0.
    var isSupported: Bool { mappingFamily == 0 && (channels == 1 || channels == 2) }
}

/// The Ogg pages of a file in order, read sequentially through libogg (each page's CRC checked),
/// with each page's byte offset and length. Every bytes read is shown to `onBytes` first (to hash
/// the file in the same pass). Reads through `StoredFile`, so a sealed file reads as its plaintext.
final class OggPageReader {
    let path: String
    private let file: StoredFile
    private var sync = ogg_sync_state()
    private var position = 0
    private var atEnd = false
    private let onBytes: ((UnsafeRawBufferPointer) -> Void)?
    /// Bytes read from the file so far.
    private(set) var bytesRead = 0
    /// Bytes libogg skipped looking for a page (junk, or a damaged page).
    private(set) var skipped = 0

    /// Reads `file` (not closed here) from its first byte.
    init(file: StoredFile, onBytes: ((UnsafeRawBufferPointer) -> Void)? = nil) {
        self.file = file
        self.path = file.path
        self.onBytes = onBytes
        ogg_sync_init(&sync)
    }

    deinit { ogg_sync_clear(&sync) }

    /// The next page into `page` (valid until the next call) with its offset and length; nil at
    /// the end of the file. A gap before a page (lost sync) is counted in `skipped`.
    func next(_ page: inout ogg_page) throws -> (offset: Int, length: Int)? {
        while true {
            let r = ogg_sync_pageseek(&sync, &page)
            if r > 0 {
                defer { position += r }
                return (position, r)
            }
            if r < 0 {
                skipped += -r
                position += -r
                continue
            }
            if atEnd { return nil }
            guard let buf = ogg_sync_buffer(&sync, 1 << 16) else { throw MediaError(.io, "out of memory") }
            let n = try file.read(into: buf, count: 1 << 16, at: bytesRead)
            if n == 0 {
                atEnd = true
            } else {
                onBytes?(UnsafeRawBufferPointer(start: buf, count: n))
                bytesRead += n
            }
            ogg_sync_wrote(&sync, n)
        }
    }
}
