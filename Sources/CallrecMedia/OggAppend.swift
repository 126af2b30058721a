import COgg
import COpus
import CallrecSupport
import Foundation

// Appending a later part of a call (MixMonitor's `a` option) without a second generation.
//
// The stored Ogg Opus stream is 20 ms packets on a fixed grid: audio packet j decodes to the
// decoder's output samples [jF, (j+1)F) (F = one frame at the encoder rate), which are the
// recording's samples [jF − S, (j+1)F − S) once the pre-skip S is dropped; the final granule
// position trims the last packet to the recording's N samples. A decoder's output for packet j
// depends on packets 0…j only, so the stored packets can be copied unchanged into the new file as
// long as the packets that follow continue the same grid:
//
// - kept: packets 0 ..< k, k = ⌊N / F⌋ (capped so that at least one packet follows): their audio is
//   real (never the zeros that padded the stored stream's end, which the final granule trimmed and
//   which a continuation must not play), and the encoder that wrote them had real samples in its
//   look-ahead too, so they are exactly what a serial encode of the whole call would have written;
// - re-encoded: the stored tail [kF − S, N), less than one frame and a pre-skip, then the new part;
// - a fresh encoder delays its input by its look-ahead L, so it is started P frames before the
//   seam on the stored audio (input from sample (k − P)F + L − S): its packets then fall on the
//   stream's grid, the first P (the priming, already stored) are dropped, and its state (LPC, pitch,
//   gains, noise shaping) has settled on this very audio by the time its packets are kept.
//
// The result is one logical stream (the stored serial and OpusHead, pre-skip only at the start),
// granule positions continuing, ending at pre-skip + N + M: it decodes to exactly N + M samples.
// Measurements are taken as before, over the decoded stored part then the new part's samples.

/// How a later part of a call is joined to the stored recording.
public enum AppendMethod: Sendable, Equatable {
    /// The stored Opus packets are copied as they are; only the new part (with the stored tail at
    /// the seam, under one frame) goes through the encoder.
    case copyingPackets
    /// The stored recording is decoded and encoded again together with the new part (a second
    /// generation): what callrec did before, kept for streams that are not on callrec's 20 ms grid
    /// and as the reference of `scripts/bench-append`.
    case reencoding
}

/// What the append needs to know about a stored stream, from one pass over its pages (no decoding).
struct StoredOpusLayout {
    var head: OpusHead
    var headPacket: [UInt8]
    var serial: Int32
    /// Audio packets.
    var packets: Int
    /// Every audio packet is one 20 ms frame (callrec's grid).
    var twentyMs: Bool
    /// The last page's granule position (pre-skip + samples, at 48 kHz).
    var finalGranule: Int64
    var tags: [String: String]

    static func scan(path: String) throws -> StoredOpusLayout {
        func fail(_ why: String) -> MediaError { MediaError(.corrupt, "\(path): \(why)") }
        let pages = OggPageReader(file: try StoredFile(path: path))
        var stream = ogg_stream_state()
        var serial: Int32?
        defer { if serial != nil { ogg_stream_clear(&stream) } }
        var head: OpusHead?
        var headPacket: [UInt8] = []
        var tags: [String: String] = [:]
        var index = 0
        var twentyMs = true
        var granule: Int64 = -1
        var eos = false
        var page = ogg_page()
        while try pages.next(&page) != nil {
            if serial == nil {
                serial = ogg_page_serialno(&page)
                ogg_stream_init(&stream, serial!)
            }
            guard ogg_page_serialno(&page) == serial, !eos else { throw fail("more than one logical stream") }
            guard ogg_stream_pagein(&stream, &page) == 0 else { throw fail("damaged Ogg page") }
            var packet = ogg_packet()
            while true {
                let r = ogg_stream_packetout(&stream, &packet)
                if r == 0 { break }
                guard r > 0 else { throw fail("missing or damaged page") }
                let data = UnsafeBufferPointer(start: packet.packet, count: packet.bytes)
                switch index {
                case 0:
                    guard let h = OpusHead(data), h.isSupported else { throw fail("not a mono or stereo Ogg Opus file") }
                    head = h
                    headPacket = Array(data)
                case 1:
                    tags = try OpusVerifier.parseTags(data, fail: fail).1
                default:
                    if opus_packet_get_nb_samples(packet.packet, Int32(packet.bytes), 48000) != 960 { twentyMs = false }
                }
                index += 1
            }
            let g = ogg_page_granulepos(&page)
            if index > 2, g >= 0 { granule = g }
            if ogg_page_eos(&page) != 0 { eos = true }
        }
        guard let head, let serial, index >= 2 else { throw fail("not an Ogg Opus file") }
        guard eos, granule >= Int64(head.preSkip) else { throw fail("the stream does not end properly") }
        return StoredOpusLayout(
            head: head, headPacket: headPacket, serial: serial, packets: index - 2, twentyMs: twentyMs, finalGranule: granule, tags: tags)
    }
}

/// Writes a stream that continues a stored one: its OpusHead (the stored pre-skip), new OpusTags,
/// the stored packets copied (`copy`), then packets from a fresh encoder (`write`) whose first
/// `discard` packets (the priming) are dropped, and an end at exactly the samples given.
/// Configures its encoder as `OggOpusWriter` does (VoIP, voice, forced channels), so the packets
/// after the seam are of the same kind as the ones before.
final class OggOpusAppender {
    let encoderRate: Int
    let channels: Int
    let frameSize: Int
    let preSkip48: Int
    /// The encoder's look-ahead, at the encoder rate.
    let lookahead: Int
    private let encoder: OpaquePointer
    private var stream = ogg_stream_state()
    private let output: FileOutput
    private var pending: [Int16] = []
    private var packetBuffer = [UInt8](repeating: 0, count: 4000)
    private var discard: Int
    /// Audio packets in the stream so far (copied and encoded).
    private(set) var streamPackets = 0
    /// Packets the encoder produced (kept or not).
    private(set) var encodedPackets = 0

    init(
        output: FileOutput, headPacket: [UInt8], preSkip48: Int, serial: Int32, tags: [(String, String)], encoderRate: Int, channels: Int,
        options: EncoderOptions, discard: Int
    ) throws {
        self.output = output
        self.encoderRate = encoderRate
        self.channels = channels
        self.frameSize = encoderRate / 50
        self.preSkip48 = preSkip48
        self.discard = discard
        // The same encoder settings as every other encode (OggOpusWriter.makeEncoder).
        (encoder, lookahead) = try OggOpusWriter.makeEncoder(rate: encoderRate, channels: channels, options: options)
        pending.reserveCapacity(frameSize * channels)
        ogg_stream_init(&stream, serial)

        try packet(headPacket, bos: true, eos: false, granule: 0, number: 0)
        try flushPages(force: true)
        let tagsPacket = OggOpusWriter.tagsPacket(tags)
        try packet(tagsPacket, bos: false, eos: false, granule: 0, number: 1)
        try flushPages(force: true)
    }

    deinit {
        opus_encoder_destroy(encoder)
        ogg_stream_clear(&stream)
    }

    /// The next stored packet, copied as it is.
    func copy(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        streamPackets += 1
        try packet(bytes, bos: false, eos: false, granule: Int64(streamPackets * 960), number: streamPackets + 1)
        try flushPages(force: false)
    }

    /// Interleaved samples at the encoder rate, for the encoder: the priming, then the new part.
    func write(_ samples: UnsafeBufferPointer<Int16>) throws {
        try OggOpusWriter.frames(of: samples, perFrame: frameSize * channels, pending: &pending) { try encodeFrame($0) }
    }

    /// Pads with zeros until the stream covers `samples` (after pre-skip, at the encoder rate),
    /// and ends it with a granule position of exactly pre-skip + samples.
    func finish(samples: Int) throws {
        let per = 48000 / encoderRate
        let finalGranule = Int64(preSkip48 + samples * per)
        let needed = (Int(finalGranule) + 959) / 960
        guard streamPackets < needed else {
            throw MediaError(.encoder, "the appended stream already holds \(streamPackets) packets of the \(needed) it needs")
        }
        var last = false
        repeat {
            pending.append(contentsOf: repeatElement(0, count: frameSize * channels - pending.count))
            last = discard == 0 && streamPackets + 1 >= needed
            try pending.withUnsafeBufferPointer { try encodeFrame($0.baseAddress!, last: last, granule: last ? finalGranule : nil) }
            pending.removeAll(keepingCapacity: true)
        } while !last
        try output.flush()
    }

    private func encodeFrame(_ pcm: UnsafePointer<Int16>, last: Bool = false, granule: Int64? = nil) throws {
        let n = packetBuffer.withUnsafeMutableBufferPointer {
            opus_encode(encoder, pcm, Int32(frameSize), $0.baseAddress!, Int32($0.count))
        }
        guard n > 0 else { throw MediaError(.encoder, "opus_encode failed: \(String(cString: opus_strerror(n)))") }
        encodedPackets += 1
        if discard > 0 {
            discard -= 1
            return
        }
        streamPackets += 1
        try packetBuffer.withUnsafeBufferPointer {
            try packet(UnsafeBufferPointer(rebasing: $0[0..<Int(n)]), bos: false, eos: last, granule: granule ?? Int64(streamPackets * 960),
                       number: streamPackets + 1)
        }
        try flushPages(force: last)
    }

    private func packet(_ bytes: [UInt8], bos: Bool, eos: Bool, granule: Int64, number: Int) throws {
        try bytes.withUnsafeBufferPointer { try packet($0, bos: bos, eos: eos, granule: granule, number: number) }
    }

    private func packet(_ bytes: UnsafeBufferPointer<UInt8>, bos: Bool, eos: Bool, granule: Int64, number: Int) throws {
        var op = ogg_packet()
        op.packet = UnsafeMutablePointer(mutating: bytes.baseAddress)
        op.bytes = bytes.count
        op.b_o_s = bos ? 1 : 0
        op.e_o_s = eos ? 1 : 0
        op.granulepos = granule
        op.packetno = Int64(number)
        guard ogg_stream_packetin(&stream, &op) == 0 else { throw MediaError(.encoder, "ogg_stream_packetin failed") }
    }

    private func flushPages(force: Bool) throws {
        var page = ogg_page()
        while (force ? ogg_stream_flush(&stream, &page) : ogg_stream_pageout(&stream, &page)) != 0 {
            try output.write(page.header, page.header_len)
            try output.write(page.body, page.body_len)
        }
    }
}

extension Transcoder {
    /// Frames a fresh encoder is run on the stored audio before the seam, its packets dropped
    /// (see the top of this file; README, "Appending", for how the figure was chosen).
    static let appendPrimingFrames = 4

    /// The append by packet copy; nil when the stored stream is not one it can continue (not on
    /// callrec's 20 ms grid, another encoder rate, no known start), before anything is written:
    /// the caller then encodes both parts again.
    func appendByCopying(
        source: SourceReader, previous: PreviousRecording, hashing: Worker<String>, input: String, output: String, tags: RecordingTags
    ) throws -> TranscodeResult? {
        let info = source.info
        let rate = Self.encoderRate(for: info.sampleRate)
        let layout = try StoredOpusLayout.scan(path: previous.path)
        guard layout.head.channels == info.channels else {
            throw MediaError(
                .unsupported, "cannot append \(info.channels) ch at \(info.sampleRate) Hz to \(layout.head.channels) ch at \(rate) Hz")
        }
        let per = 48000 / rate
        let storedStart = layout.tags["STARTED_AT"].flatMap { ISO8601DateFormatter().date(from: $0) }
        guard let knownStart = tags.startedAt ?? RecordingTags.epoch(ofUniqueID: tags.uniqueid) ?? storedStart,
            layout.twentyMs, Self.encoderRate(for: layout.head.inputSampleRate) == rate,
            layout.head.preSkip % per == 0, (Int(layout.finalGranule) - layout.head.preSkip) % per == 0
        else { return nil }

        let F = rate / 50
        let S = layout.head.preSkip / per
        let N = (Int(layout.finalGranule) - layout.head.preSkip) / per
        let K = layout.packets
        // Kept: whole frames of real audio, and at least one packet left to follow them.
        let k = max(0, min(K, N / F, (N + S + F - 1) / F - 1))
        let P = Self.appendPrimingFrames

        let sha = try hashing.join()
        let allSources = previous.sourceSHA256s + [sha]
        let temp = Self.temporaryPath(for: output)
        var keep = false
        defer { if !keep { unlink(temp) } }
        let file = try FileOutput(creating: temp, sealing: try sealing.map { SealContext(key: try $0(tags.uniqueid)) })
        chmod(temp, 0o640)

        var tagList: [(String, String)] = [("UNIQUEID", tags.uniqueid), ("STARTED_AT", RecordingTags.iso(knownStart))]
        for s in allSources { tagList.append(("SOURCE_SHA256", s)) }
        let encoder = encoder(for: info, tagging: &tagList, tags)

        // OpusHead as stored (its pre-skip is the stream's), with the new part's input rate, as a
        // re-encode would write it.
        var head = layout.headPacket
        for i in 0..<4 { head[12 + i] = UInt8(truncatingIfNeeded: info.sampleRate >> (8 * i)) }
        let appender = try OggOpusAppender(
            output: file, headPacket: head, preSkip48: layout.head.preSkip, serial: layout.serial, tags: tagList, encoderRate: rate,
            channels: info.channels, options: encoder, discard: P)
        let L = appender.lookahead
        // The encoder's input starts here (recording samples; before 0, zeros).
        let primingStart = (k - P) * F + L - S

        // The stored part: packets before the seam copied while the audio is decoded and measured;
        // the audio from `primingStart` kept for the encoder.
        var analyzer = Analyzer(sampleRate: rate, channels: info.channels, options: analysis)
        var copied = 0
        let stored = try OpusReader(path: previous.path, rate: rate) { packet in
            if copied < k {
                try appender.copy(packet)
                copied += 1
            }
        }
        var priming = [Int16](repeating: 0, count: max(0, -primingStart) * info.channels)
        var position = 0
        var block = [Int16](repeating: 0, count: Self.blockFrames * info.channels)
        while true {
            let n = try block.withUnsafeMutableBufferPointer { try stored.read(into: $0.baseAddress!, frames: Self.blockFrames) }
            if n == 0 { break }
            block.withUnsafeBufferPointer { analyzer.consume(UnsafeBufferPointer(rebasing: $0[0..<n * info.channels])) }
            let from = max(position, primingStart)
            if from < position + n {
                priming.append(contentsOf: block[(from - position) * info.channels..<n * info.channels])
            }
            position += n
        }
        guard position == N, stored.audioPackets == K, copied == k else {
            throw MediaError(.verification, "\(previous.path) changed while being appended to (\(position) samples, \(stored.audioPackets) packets)")
        }

        // The new part: measured here, encoded on a thread of its own after the priming.
        let queue = BoundedQueue<[Int16]>(capacity: 8)
        let box = UncheckedBox(appender)
        let encoding = Worker(name: "callrec-encode") {
            do {
                while let block = try queue.pop() {
                    try block.withUnsafeBufferPointer { try box.value.write($0) }
                }
            } catch {
                queue.fail(error)
                throw error
            }
        }
        queue.push(priming)
        Self.pump(source, channels: info.channels, measuring: &analyzer, into: queue)
        let encodeResult = Result { try encoding.join() }
        if let failure = queue.failure { throw failure }
        try encodeResult.get()

        var (measurements, waveform) = analyzer.finish()
        measurements.speakers = measurements.speakers?.withRecordedRole(recordedRole)
        let total = measurements.samples
        guard total > 0 else { throw MediaError(.corrupt, "\(input) holds no audio") }
        try appender.finish(samples: total)
        try file.sync()

        // Verify: read the file on disk back in full (every page's CRC, granules, tags, length) and
        // decode it from a little before the seam: the packets before it are the bytes decoded
        // above from the stored file (the tap sees each one before it is decoded and copied), and
        // the pages' CRCs show they reached the disk unchanged.
        let opus = try OpusVerifier.inspect(path: temp, decodeRate: rate, decodingFrom: max(0, k - P))
        try Self.install(temp, as: output, checked: opus, samples48k: total * per, channels: info.channels, sources: allSources, uniqueid: tags.uniqueid)
        keep = true

        var finalTags = tags
        finalTags.startedAt = knownStart
        return TranscodeResult(
            source: info, sourceSHA256: sha, measurements: measurements, waveform: waveform, opus: opus, bitrate: encoder.bitrate,
            startedAt: knownStart, tags: finalTags, previousSamples: N)
    }
}
