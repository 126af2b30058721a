import COgg
import COpus
import Foundation

/// A stored Ogg Opus recording seen as a 16-bit PCM WAV file, for `GET /recordings/<id>.wav`:
/// exact length (44 + samples × 2 × channels), sample-aligned with the source (pre-skip and end
/// trimming applied), and any byte range decoded without starting from the beginning.
///
/// The audio is decoded in blocks of `blockSeconds`. A block is decoded from an Ogg page at least
/// 80 ms (RFC 7845 §4.6 pre-roll) before its start, found in an index of the file's pages, with a
/// fresh decoder; the first block from the stream's start. Because every request decodes a block
/// the same way, the bytes of any range equal the same bytes of the whole file: a strong ETag holds.
public final class WavView: @unchecked Sendable {
    public let path: String
    public let sampleRate: Int
    public let channels: Int
    /// Samples per channel after trimming.
    public let samples: Int
    public let preSkip48: Int
    public static let headerSize = 44
    public static let blockSeconds = 10
    private struct Page { var offset: Int; var length: Int; var granule: Int64; var continued: Bool }
    private let pages: [Page]  // audio pages only, in order
    private let serial: Int32

    public var contentLength: Int { Self.headerSize + samples * 2 * channels }

    /// Indexes the pages of an Ogg Opus file (one sequential read through `OggPageReader`).
    public init(path: String) throws {
        self.path = path
        let reader = OggPageReader(file: try StoredFile(path: path))
        var found: [Page] = []
        var head: OpusHead?
        var serial: Int32 = 0
        var pageIndex = 0
        var og = ogg_page()
        while let (offset, length) = try reader.next(&og) {
            guard reader.skipped == 0 else { throw MediaError(.corrupt, "\(path): not an Ogg page before byte \(offset)") }
            var granule = ogg_page_granulepos(&og)
            if pageIndex == 0 {
                serial = ogg_page_serialno(&og)
                head = OpusHead(UnsafeBufferPointer(start: og.body, count: og.body_len))  // alone on its page (RFC 7845 §3)
            } else {
                // -1: no packet ends on this page; it ends where the previous one did.
                if granule < 0 { granule = found.last?.granule ?? 0 }
                found.append(Page(offset: offset, length: length, granule: granule, continued: ogg_page_continued(&og) != 0))
            }
            pageIndex += 1
        }
        guard let head else { throw MediaError(.corrupt, "\(path): no OpusHead") }
        // OpusTags (one page or several) has granule 0 and no audio: drop it from the front.
        while let first = found.first, first.granule == 0 { found.removeFirst() }
        channels = head.channels
        preSkip48 = head.preSkip
        sampleRate = Transcoder.encoderRate(for: head.inputSampleRate)
        guard let last = found.last else { throw MediaError(.corrupt, "\(path): no audio pages") }
        samples = max(0, Int(last.granule) - preSkip48) * sampleRate / 48000
        pages = found
        self.serial = serial
    }

    /// The 44-byte RIFF header.
    public var header: [UInt8] {
        var h = Array("RIFF".utf8)
        let data = samples * 2 * channels
        h.appendLE(UInt32(truncatingIfNeeded: 36 + data))
        h += Array("WAVEfmt ".utf8)
        h.appendLE(UInt32(16))
        h.appendLE(UInt16(1))
        h.appendLE(UInt16(channels))
        h.appendLE(UInt32(sampleRate))
        h.appendLE(UInt32(sampleRate * 2 * channels))
        h.appendLE(UInt16(2 * channels))
        h.appendLE(UInt16(16))
        h += Array("data".utf8)
        h.appendLE(UInt32(truncatingIfNeeded: data))
        return h
    }

    public var blockSamples: Int { sampleRate * Self.blockSeconds }

    /// The bytes `range` of the WAV file (clamped to its length).
    public func bytes(_ range: Range<Int>) throws -> [UInt8] {
        let range = range.clamped(to: 0..<contentLength)
        guard !range.isEmpty else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        if range.lowerBound < Self.headerSize {
            out += header[range.lowerBound..<min(range.upperBound, Self.headerSize)]
        }
        let frameBytes = 2 * channels
        let dataStart = max(range.lowerBound, Self.headerSize) - Self.headerSize
        let dataEnd = range.upperBound - Self.headerSize
        guard dataEnd > dataStart else { return out }
        let firstBlock = dataStart / frameBytes / blockSamples
        let lastBlock = (dataEnd - 1) / frameBytes / blockSamples
        for b in firstBlock...lastBlock {
            let pcm = try block(b)
            let blockByteStart = b * blockSamples * frameBytes
            let lo = max(dataStart, blockByteStart) - blockByteStart
            let hi = min(dataEnd, blockByteStart + pcm.count * 2) - blockByteStart
            pcm.withUnsafeBytes { raw in out += raw[lo..<hi] }
        }
        return out
    }

    /// Decodes block `b`: samples [b·L, min((b+1)·L, samples)), interleaved, little-endian.
    public func block(_ b: Int) throws -> [Int16] {
        let start = b * blockSamples
        let end = min(start + blockSamples, samples)
        guard start < end else { return [] }
        // Where decoding starts: the first audio page for block 0; else the page after the last
        // page ending ≥ 80 ms before the block (and not starting with a continued packet).
        var first = 0
        let startGranule = Int64(preSkip48 + start * 48000 / sampleRate - 3840)
        if b > 0 {
            var lo = 0, hi = pages.count - 1
            while lo < hi {  // the last page whose granule ≤ startGranule
                let mid = (lo + hi + 1) / 2
                if pages[mid].granule <= startGranule { lo = mid } else { hi = mid - 1 }
            }
            first = pages[lo].granule <= startGranule ? lo + 1 : 0
            while first > 0 && first < pages.count && pages[first].continued { first -= 1 }
            if first >= pages.count { first = 0 }
        }
        // The 48 kHz position of the first sample the first decoded packet yields.
        var position48 = first == 0 ? 0 : Int(pages[first - 1].granule)
        let file = try StoredFile(path: path)
        var err: Int32 = 0
        guard let decoder = opus_decoder_create(Int32(sampleRate), Int32(channels), &err), err == OPUS_OK else {
            throw MediaError(.encoder, "opus_decoder_create failed")
        }
        defer { opus_decoder_destroy(decoder) }
        var stream = ogg_stream_state()
        ogg_stream_init(&stream, serial)
        defer { ogg_stream_clear(&stream) }
        let scale = 48000 / sampleRate
        var out = [Int16](repeating: 0, count: (end - start) * channels)
        var pcm = [Int16](repeating: 0, count: 5760 * channels)
        var buffer: [UInt8] = []
        var p = first
        while p < pages.count {
            let page = pages[p]
            buffer = [UInt8](repeating: 0, count: page.length)
            let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: page.length, at: page.offset) }
            guard n == page.length else { throw MediaError(.io, "\(path): short read") }
            var og = ogg_page()
            var done = false
            try buffer.withUnsafeMutableBufferPointer { buf in
                let segments = Int(buf[26])
                og.header = buf.baseAddress
                og.header_len = 27 + segments
                og.body = buf.baseAddress! + 27 + segments
                og.body_len = page.length - 27 - segments
                guard ogg_stream_pagein(&stream, &og) == 0 else { throw MediaError(.corrupt, "\(path): page rejected") }
                var packet = ogg_packet()
                while true {
                    let r = ogg_stream_packetout(&stream, &packet)
                    if r == 0 { break }
                    if r < 0 { continue }
                    let got = pcm.withUnsafeMutableBufferPointer {
                        opus_decode(decoder, packet.packet, Int32(packet.bytes), $0.baseAddress!, 5760, 0)
                    }
                    guard got > 0 else { throw MediaError(.corrupt, "\(path): packet does not decode") }
                    // Source-relative sample index of this packet's first sample.
                    let packetStart = (position48 - preSkip48) / scale
                    let count = Int(got)
                    position48 += count * scale
                    let lo = max(packetStart, start), hi = min(packetStart + count, end)
                    if lo < hi {
                        for i in lo..<hi {
                            for c in 0..<channels { out[(i - start) * channels + c] = pcm[(i - packetStart) * channels + c] }
                        }
                    }
                    if packetStart + count >= end {
                        done = true
                        break
                    }
                }
            }
            if done { break }
            p += 1
        }
        return out  // little-endian already on every platform Swift on Linux runs on
    }
}
