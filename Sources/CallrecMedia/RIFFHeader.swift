import Foundation

/// What a RIFF/WAVE header says, and what the file really holds.
///
/// Asterisk writes the RIFF and `data` sizes only when it closes the file, so a recording from a
/// crashed or killed Asterisk has sizes of 0 (or of an earlier moment) while all of its audio is on
/// disk. `RIFFHeader` walks the chunks, finds `data`, and decides its real length from the file's
/// size: a declared size is believed only when it is non-zero, fits in the file, and is followed by
/// another well-formed chunk (a LIST or id3 chunk after the audio); otherwise the audio runs to the
/// end of the file, cut down to whole blocks.
struct RIFFHeader: Sendable {
    var formatTag: UInt16
    var channels: Int
    var sampleRate: Int
    var blockAlign: Int
    var bitsPerSample: Int
    /// Where the audio starts.
    var dataOffset: Int
    /// How many bytes of audio the file really holds (whole blocks).
    var dataLength: Int
    /// Whether the header's sizes had to be corrected.
    var recovered: Bool
    /// The `fact` chunk's sample count as the file says it (nil when absent or 0: unclosed).
    var factSamples: Int?
    /// The samples the audio's whole blocks hold, for block codecs (GSM in WAV: 320 per block).
    var blockSamples: Int?
    /// The header bytes `0..<dataOffset`, with the RIFF, `data` and `fact` sizes corrected.
    var patchedHeader: [UInt8]

    /// The header of the bytes `prefix` (the start of a file of `fileSize` bytes), or nil when they
    /// are not RIFF/WAVE. Throws when they are RIFF but cannot be audio.
    /// `peek(offset, count)` reads bytes further into the file (to look for a chunk after `data`).
    static func parse(prefix: [UInt8], fileSize: Int, peek: (Int, Int) -> [UInt8]) throws -> RIFFHeader? {
        guard prefix.count >= 12, prefix[0..<4] == Array("RIFF".utf8)[...],
            prefix[8..<12] == Array("WAVE".utf8)[...]
        else { return nil }

        var pos = 12
        var fmt: (tag: UInt16, channels: Int, rate: Int, blockAlign: Int, bits: Int)?
        var factSizeOffset: Int?
        var factSamples: Int?
        while pos + 8 <= prefix.count {
            let id = String(decoding: prefix[pos..<pos + 4], as: UTF8.self)
            let size = Int(prefix.u32(at: pos + 4))
            let body = pos + 8
            switch id {
            case "fmt ":
                guard size >= 16, body + 16 <= prefix.count else {
                    throw MediaError(.corrupt, "WAV fmt chunk is truncated")
                }
                fmt = (
                    prefix.u16(at: body), Int(prefix.u16(at: body + 2)), Int(prefix.u32(at: body + 4)),
                    Int(prefix.u16(at: body + 12)), Int(prefix.u16(at: body + 14))
                )
            case "fact":
                if size >= 4 {
                    factSizeOffset = body
                    if body + 4 <= prefix.count, prefix.u32(at: body) > 0 { factSamples = Int(prefix.u32(at: body)) }
                }
            case "data":
                guard let fmt else { throw MediaError(.corrupt, "WAV data chunk comes before its fmt chunk") }
                try validate(fmt)
                let available = fileSize - body
                var length = size
                var recovered = false
                if size == 0 || size > available || !followedByChunk(end: body + size, fileSize: fileSize, peek: peek) && size < available {
                    length = available
                    recovered = length != size
                }
                if fmt.blockAlign > 0 { length -= length % fmt.blockAlign }
                guard length > 0 else { throw MediaError(.corrupt, "WAV file holds no audio") }
                guard length <= Int(UInt32.max) - body else {
                    throw MediaError(.unsupported, "WAV audio larger than 4 GiB")
                }
                var header = Array(prefix[0..<body])
                header.setU32(UInt32(body - 8 + length), at: 4)
                header.setU32(UInt32(length), at: pos + 4)
                if let factSizeOffset, factSizeOffset + 4 <= body, fmt.tag == 0x31, fmt.blockAlign > 0 {
                    // GSM in WAV (WAV49): 320 samples per 65-byte block.
                    header.setU32(UInt32(length / fmt.blockAlign * 320), at: factSizeOffset)
                }
                return RIFFHeader(
                    formatTag: fmt.tag, channels: fmt.channels, sampleRate: fmt.rate,
                    blockAlign: fmt.blockAlign, bitsPerSample: fmt.bits, dataOffset: body,
                    dataLength: length, recovered: recovered, factSamples: factSamples,
                    blockSamples: fmt.tag == 0x31 ? length / fmt.blockAlign * 320 : nil, patchedHeader: header)
            default:
                break
            }
            guard size <= fileSize else { throw MediaError(.corrupt, "WAV chunk '\(printable(id))' is larger than the file") }
            pos = body + size + (size & 1)
        }
        if fmt == nil { throw MediaError(.corrupt, "WAV header has no fmt chunk") }
        throw MediaError(.corrupt, "WAV header has no data chunk")
    }

    private static func validate(_ fmt: (tag: UInt16, channels: Int, rate: Int, blockAlign: Int, bits: Int)) throws {
        guard fmt.channels > 0 else { throw MediaError(.corrupt, "WAV header says 0 channels") }
        guard fmt.channels <= 2 else {
            throw MediaError(.unsupported, "WAV header says \(fmt.channels) channels; callrec stores mono or stereo calls")
        }
        guard fmt.rate > 0 else { throw MediaError(.corrupt, "WAV header says a sample rate of 0 Hz") }
        guard (MediaLimits.minSampleRate...MediaLimits.maxSampleRate).contains(fmt.rate) else {
            throw MediaError(.unsupported, "sample rate \(fmt.rate) Hz is outside \(MediaLimits.minSampleRate)–\(MediaLimits.maxSampleRate) Hz")
        }
        guard fmt.blockAlign > 0 else { throw MediaError(.corrupt, "WAV header says a block size of 0") }
    }

    /// Whether a well-formed chunk header starts at `end` (rounded to even), inside the file.
    private static func followedByChunk(end: Int, fileSize: Int, peek: (Int, Int) -> [UInt8]) -> Bool {
        let next = end + (end & 1)
        guard next + 8 <= fileSize else { return false }
        let bytes = peek(next, 8)
        guard bytes.count == 8 else { return false }
        let size = Int(bytes.u32(at: 4))
        return bytes[0..<4].allSatisfy { $0 > 0x20 && $0 < 0x7F || $0 == 0x20 } && bytes[0] != 0x20
            && next + 8 + size <= fileSize + 1
    }

    private static func printable(_ s: String) -> String {
        String(s.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }
}

enum MediaLimits {
    static let minSampleRate = 4000
    static let maxSampleRate = 384_000
}

extension [UInt8] {
    func u16(at i: Int) -> UInt16 { UInt16(self[i]) | UInt16(self[i + 1]) << 8 }
    func u32(at i: Int) -> UInt32 {
        UInt32(self[i]) | UInt32(self[i + 1]) << 8 | UInt32(self[i + 2]) << 16 | UInt32(self[i + 3]) << 24
    }
    mutating func setU32(_ v: UInt32, at i: Int) {
        self[i] = UInt8(v & 0xFF)
        self[i + 1] = UInt8(v >> 8 & 0xFF)
        self[i + 2] = UInt8(v >> 16 & 0xFF)
        self[i + 3] = UInt8(v >> 24 & 0xFF)
    }
}
