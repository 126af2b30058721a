import COgg
import COpus
import Foundation

/// How to encode.
public struct EncoderOptions: Sendable, Equatable {
    /// Target bitrate in bits per second (`CALLREC_OPUS_BITRATE`).
    public var bitrate: Int = 16000
    /// libopus complexity 0…10 (`CALLREC_OPUS_COMPLEXITY`); see README for how the default was chosen.
    public var complexity: Int = EncoderOptions.defaultComplexity
    public static let defaultComplexity = 5
    /// Encoder threads for a long call (`CALLREC_OPUS_THREADS`, default the cores, at most 4): its
    /// pieces are encoded side by side (ParallelEncoder). 1 encodes on one thread, as one piece.
    public var threads: Int = EncoderOptions.defaultThreads
    public static var defaultThreads: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4) }

    public init(bitrate: Int = 16000, complexity: Int = EncoderOptions.defaultComplexity, threads: Int = EncoderOptions.defaultThreads) {
        self.bitrate = bitrate
        self.complexity = complexity
        self.threads = threads
    }

    /// Options from `CALLREC_OPUS_BITRATE` and `CALLREC_OPUS_COMPLEXITY`, with the defaults when unset.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> EncoderOptions {
        var o = EncoderOptions()
        if let s = env["CALLREC_OPUS_BITRATE"], !s.isEmpty {
            guard let v = Int(s), (6000...510_000).contains(v) else {
                throw MediaError(.unsupported, "CALLREC_OPUS_BITRATE must be 6000…510000 bits/s, not '\(s)'")
            }
            o.bitrate = v
        }
        if let s = env["CALLREC_OPUS_COMPLEXITY"], !s.isEmpty {
            guard let v = Int(s), (0...10).contains(v) else {
                throw MediaError(.unsupported, "CALLREC_OPUS_COMPLEXITY must be 0…10, not '\(s)'")
            }
            o.complexity = v
        }
        if let s = env["CALLREC_OPUS_THREADS"], !s.isEmpty {
            guard let v = Int(s), (1...64).contains(v) else {
                throw MediaError(.unsupported, "CALLREC_OPUS_THREADS must be 1…64, not '\(s)'")
            }
            o.threads = v
        }
        return o
    }
}

/// Encodes 16-bit PCM with libopus and muxes it with libogg into an Ogg Opus stream (RFC 7845):
/// 20 ms VoIP frames, OpusHead with the real encoder lookahead as pre-skip and the source's rate,
/// OpusTags, and a final granule position that trims the stream to exactly the samples given.
///
/// Tag values that are only known at the end (the source's SHA-256, a start time computed from the
/// duration) are written as fixed-width placeholders and patched in place by `finish`.
final class OggOpusWriter {
    let encoderRate: Int
    let channels: Int
    let frameSize: Int
    let preSkip: Int  // at 48 kHz
    private let encoder: OpaquePointer
    private var stream = ogg_stream_state()
    private let output: FileOutput
    private var pending: [Int16]  // samples of the frame being filled (interleaved)
    private var pendingFrames = 0
    private var packetCount: Int64 = 0
    private var packetBuffer = [UInt8](repeating: 0, count: 4000)
    private var tagsPage: (offset: Int, header: [UInt8], body: [UInt8])?
    private(set) var samplesIn = 0  // per channel, at the encoder's rate

    /// The vendor string written in OpusTags.
    static let vendor = "callrec (\(String(cString: opus_get_version_string())))"

    init(output: FileOutput, encoderRate: Int, inputRate: Int, channels: Int, options: EncoderOptions, tags: [(String, String)], serial: Int32) throws {
        self.output = output
        self.encoderRate = encoderRate
        self.channels = channels
        self.frameSize = encoderRate / 50
        let (enc, lookahead) = try Self.makeEncoder(rate: encoderRate, channels: channels, options: options)
        encoder = enc
        self.lookahead = lookahead
        self.preSkip = lookahead * (48000 / encoderRate)
        pending = []
        pending.reserveCapacity(frameSize * channels)
        ogg_stream_init(&stream, serial)

        // RFC 7845 §5.1: OpusHead, alone on the first page.
        var head = Array("OpusHead".utf8)
        head.append(1)
        head.append(UInt8(channels))
        head.appendLE(UInt16(preSkip))
        head.appendLE(UInt32(inputRate))
        head.appendLE(UInt16(0))  // output gain
        head.append(0)  // channel mapping family 0: mono or stereo
        try packet(head, bos: true, granule: 0)
        try flushPages(force: true)

        // §5.2: OpusTags, on its own page(s).
        let tagsPacket = Self.tagsPacket(tags)
        try packet(tagsPacket, bos: false, granule: 0)
        let tagsOffset = output.offset
        var page = ogg_page()
        var pages = 0
        while ogg_stream_flush(&stream, &page) != 0 {
            if pages == 0 {
                tagsPage = (tagsOffset, Array(UnsafeBufferPointer(start: page.header, count: page.header_len)),
                            Array(UnsafeBufferPointer(start: page.body, count: page.body_len)))
            }
            try output.write(page.header, page.header_len)
            try output.write(page.body, page.body_len)
            pages += 1
        }
        if pages > 1 { tagsPage = nil }  // tags too large for one page: nothing deferred can be patched
    }

    let lookahead: Int  // at the encoder's rate

    /// A libopus encoder with callrec's settings, and its lookahead (samples at `rate`). Every
    /// encoder of a recording (the serial one, each piece's) is made here, so they all agree.
    /// An OpusTags packet (RFC 7845 §5.2): callrec's vendor string and `KEY=value` comments.
    static func tagsPacket(_ tags: [(String, String)]) -> [UInt8] {
        var packet = Array("OpusTags".utf8)
        let vendor = Array(Self.vendor.utf8)
        packet.appendLE(UInt32(vendor.count))
        packet += vendor
        packet.appendLE(UInt32(tags.count))
        for (k, v) in tags {
            let c = Array("\(k)=\(v)".utf8)
            packet.appendLE(UInt32(c.count))
            packet += c
        }
        return packet
    }

    static func makeEncoder(rate: Int, channels: Int, options: EncoderOptions) throws -> (OpaquePointer, Int) {
        var err: Int32 = 0
        guard let enc = opus_encoder_create(Int32(rate), Int32(channels), OPUS_APPLICATION_VOIP, &err), err == OPUS_OK else {
            throw MediaError(.encoder, "opus_encoder_create failed: \(String(cString: opus_strerror(err)))")
        }
        var lookahead: Int32 = 0
        guard callrec_opus_set_bitrate(enc, Int32(options.bitrate)) == OPUS_OK,
            callrec_opus_set_complexity(enc, Int32(options.complexity)) == OPUS_OK,
            callrec_opus_set_signal_voice(enc) == OPUS_OK,
            callrec_opus_get_lookahead(enc, &lookahead) == OPUS_OK,
            // Two channels are two speakers: never let the encoder fold them into one (libopus
            // codes stereo voice as mono below ~19 kb/s unless told).
            channels == 1 || callrec_opus_set_force_channels(enc, Int32(channels)) == OPUS_OK
        else {
            opus_encoder_destroy(enc)
            throw MediaError(.encoder, "opus_encoder_ctl refused bitrate \(options.bitrate) / complexity \(options.complexity)")
        }
        return (enc, Int(lookahead))
    }

    deinit {
        opus_encoder_destroy(encoder)
        ogg_stream_clear(&stream)
    }

    /// Encodes interleaved samples at the encoder's rate.
    func write(_ samples: UnsafeBufferPointer<Int16>) throws {
        samplesIn += samples.count / channels
        try Self.frames(of: samples, perFrame: frameSize * channels, pending: &pending) { try encodeFrame($0) }
    }

    /// Cuts interleaved samples into whole frames of `perFrame` values for `encode`: straight from
    /// the caller's buffer while nothing is pending, the rest through `pending` (which keeps a
    /// partial frame for the next call). Shared by this writer and `OggOpusAppender`.
    static func frames(
        of samples: UnsafeBufferPointer<Int16>, perFrame: Int, pending: inout [Int16], _ encode: (UnsafePointer<Int16>) throws -> Void
    ) rethrows {
        var i = 0
        while i < samples.count {
            if pending.isEmpty && samples.count - i >= perFrame {
                try encode(samples.baseAddress! + i)
                i += perFrame
            } else {
                let n = min(perFrame - pending.count, samples.count - i)
                pending.append(contentsOf: UnsafeBufferPointer(rebasing: samples[i..<i + n]))
                i += n
                if pending.count == perFrame {
                    try pending.withUnsafeBufferPointer { try encode($0.baseAddress!) }
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
    }

    private func encodeFrame(_ pcm: UnsafePointer<Int16>, last: Bool = false, granule: Int64? = nil) throws {
        let n = packetBuffer.withUnsafeMutableBufferPointer {
            opus_encode(encoder, pcm, Int32(frameSize), $0.baseAddress!, Int32($0.count))
        }
        guard n > 0 else { throw MediaError(.encoder, "opus_encode failed: \(String(cString: opus_strerror(n)))") }
        try packetBuffer.withUnsafeBufferPointer { try mux(UnsafeBufferPointer(rebasing: $0[0..<Int(n)]), last: last, granule: granule) }
    }

    /// Puts the next 20 ms audio packet into the stream: granule position = packets so far × 960
    /// (48 kHz), or `granule` for the last one.
    private func mux(_ data: UnsafeBufferPointer<UInt8>, last: Bool, granule: Int64?) throws {
        packetCount += 1
        var op = ogg_packet()
        op.packet = UnsafeMutablePointer(mutating: data.baseAddress)
        op.bytes = data.count
        op.b_o_s = 0
        op.e_o_s = last ? 1 : 0
        op.granulepos = granule ?? packetCount * 960
        op.packetno = packetCount + 1
        guard ogg_stream_packetin(&stream, &op) == 0 else { throw MediaError(.encoder, "ogg_stream_packetin failed") }
        try flushPages(force: last)
    }

    /// Muxes a 20 ms packet encoded elsewhere (ParallelEncoder's pieces), next in order; this
    /// writer's own encoder is then left unused.
    func writeEncoded(_ packet: UnsafeBufferPointer<UInt8>) throws {
        try mux(packet, last: false, granule: nil)
    }

    /// Ends a stream of packets encoded elsewhere with `lastPacket`, whose granule position trims
    /// the stream to exactly `total` samples (encoder rate), as `finish` does for its own.
    func finishEncoded(lastPacket: UnsafeBufferPointer<UInt8>, samples total: Int, patch: [String: String] = [:]) throws -> Int {
        guard (Int(packetCount) + 1) * frameSize >= total + lookahead, Int(packetCount) * frameSize < total + lookahead else {
            throw MediaError(.encoder, "\(packetCount + 1) packets do not hold \(total) samples")
        }
        try mux(lastPacket, last: true, granule: Int64(preSkip + total * (48000 / encoderRate)))
        try output.flush()
        if !patch.isEmpty { try patchTags(patch) }
        return total
    }

    private func packet(_ bytes: [UInt8], bos: Bool, granule: Int64) throws {
        var bytes = bytes
        try bytes.withUnsafeMutableBufferPointer {
            var op = ogg_packet()
            op.packet = $0.baseAddress
            op.bytes = $0.count
            op.b_o_s = bos ? 1 : 0
            op.e_o_s = 0
            op.granulepos = granule
            op.packetno = bos ? 0 : 1
            guard ogg_stream_packetin(&stream, &op) == 0 else { throw MediaError(.encoder, "ogg_stream_packetin failed") }
        }
    }

    private func flushPages(force: Bool) throws {
        var page = ogg_page()
        while (force ? ogg_stream_flush(&stream, &page) : ogg_stream_pageout(&stream, &page)) != 0 {
            try output.write(page.header, page.header_len)
            try output.write(page.body, page.body_len)
        }
    }

    /// Encodes the lookahead's worth of padding, ends the stream with a granule position of exactly
    /// pre-skip + samples, and patches deferred tags. Returns the samples written (encoder rate).
    func finish(patch: [String: String] = [:]) throws -> Int {
        let total = samplesIn
        // Feed zeros until every real sample has come out of the encoder's lookahead; the final
        // granule position then trims the padding (less than one frame) at the end.
        let perFrame = frameSize * channels
        let finalGranule = Int64(preSkip + total * (48000 / encoderRate))
        var last = false
        repeat {
            pending.append(contentsOf: repeatElement(0, count: perFrame - pending.count))
            last = (Int(packetCount) + 1) * frameSize >= total + lookahead
            try pending.withUnsafeBufferPointer {
                try encodeFrame($0.baseAddress!, last: last, granule: last ? finalGranule : nil)
            }
            pending.removeAll(keepingCapacity: true)
        } while !last
        try output.flush()
        if !patch.isEmpty { try patchTags(patch) }
        return total
    }

    /// Rewrites placeholder comments (`KEY=placeholder` → `KEY=value`, same length) in the OpusTags page, with a new CRC.
    private func patchTags(_ values: [String: String]) throws {
        guard case (let offset, var header, var body)? = tagsPage as (Int, [UInt8], [UInt8])? else {
            throw MediaError(.encoder, "OpusTags spans pages; cannot patch deferred tags")
        }
        for (placeholder, value) in values {
            let needle = Array(placeholder.utf8)
            let v = Array(value.utf8)
            guard v.count == needle.count else { throw MediaError(.encoder, "tag \(value) does not fit its placeholder") }
            guard let at = body.firstRange(of: needle) else { continue }
            body.replaceSubrange(at, with: v)
        }
        header.withUnsafeMutableBufferPointer { h in
            body.withUnsafeMutableBufferPointer { b in
                var page = ogg_page(header: h.baseAddress, header_len: h.count, body: b.baseAddress, body_len: b.count)
                ogg_page_checksum_set(&page)
            }
        }
        try output.pwrite(header + body, at: offset)
    }
}

extension [UInt8] {
    mutating func appendLE(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    mutating func appendLE(_ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { append(UInt8(v >> UInt32(s) & 0xFF)) }
    }
}
