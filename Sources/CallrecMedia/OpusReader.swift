import COgg
import COpus
import Foundation

/// Something that yields interleaved 16-bit PCM frames in order.
protocol PCMReader: AnyObject {
    var sampleRate: Int { get }
    var channels: Int { get }
    /// Reads up to `frames` frames; 0 at the end.
    func read(into buffer: UnsafeMutablePointer<Int16>, frames: Int) throws -> Int
}

extension SourceReader: PCMReader {
    var sampleRate: Int { info.sampleRate }
    var channels: Int { info.channels }
}

/// Decodes a stored Ogg Opus file back to PCM at an Opus rate, with pre-skip and end trimming
/// applied, so that it yields exactly the samples that were encoded. Used to append a later part
/// of a call (MixMonitor's `a` option) and to measure a file that lost its catalog row.
final class OpusReader: PCMReader {
    let sampleRate: Int
    private(set) var channels = 1
    private let file: StoredFile
    private let path: String
    private let pages: OggPageReader
    private var stream = ogg_stream_state()
    private var streamReady = false
    private var decoder: OpaquePointer?
    private var packetIndex = 0
    private var preSkipLeft = 0  // at sampleRate
    private var produced = 0  // frames handed out or queued, after pre-skip
    private var limit: Int?  // total frames, once the last page is seen
    private var pending: [Int16] = []
    private var pendingStart = 0
    private var atEnd = false
    private var decodeBuffer = [Int16](repeating: 0, count: 5760 * 2)
    private(set) var inputSampleRate = 0
    /// Shown every audio packet, in order, before it is decoded (the append copies the stored
    /// packets this way while measuring their audio, in one pass).
    private let onPacket: ((UnsafeBufferPointer<UInt8>) throws -> Void)?
    /// Audio packets decoded so far.
    private(set) var audioPackets = 0

    init(path: String, rate: Int, onPacket: ((UnsafeBufferPointer<UInt8>) throws -> Void)? = nil) throws {
        self.onPacket = onPacket
        guard [8000, 12000, 16000, 24000, 48000].contains(rate) else {
            throw MediaError(.unsupported, "cannot decode Opus at \(rate) Hz")
        }
        self.sampleRate = rate
        self.path = path
        file = try StoredFile(path: path)
        pages = OggPageReader(file: file)
        // Read the headers now, so that channels and rates are known.
        while packetIndex < 2 && !atEnd { try pump() }
        guard decoder != nil, packetIndex >= 2 else {
            throw MediaError(.corrupt, "\(path) is not an Ogg Opus file")
        }
    }

    deinit {
        if let decoder { opus_decoder_destroy(decoder) }
        if streamReady { ogg_stream_clear(&stream) }
    }

    func read(into buffer: UnsafeMutablePointer<Int16>, frames: Int) throws -> Int {
        while pending.count - pendingStart < frames * channels && !atEnd { try pump() }
        let n = min(frames, (pending.count - pendingStart) / channels)
        pending.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress! + pendingStart, count: n * channels) }
        pendingStart += n * channels
        if pendingStart > 1 << 16 {
            pending.removeFirst(pendingStart)
            pendingStart = 0
        }
        return n
    }

    /// Reads one more page (or the file's end) and decodes its packets into `pending`.
    private func pump() throws {
        var page = ogg_page()
        guard try pages.next(&page) != nil else {
            atEnd = true
            return
        }
        if !streamReady {
            ogg_stream_init(&stream, ogg_page_serialno(&page))
            streamReady = true
        }
        guard ogg_stream_pagein(&stream, &page) == 0 else { throw MediaError(.corrupt, "\(path): damaged Ogg page") }
        if ogg_page_eos(&page) != 0, packetIndex >= 2 || ogg_page_granulepos(&page) > 0 {
            limit = max(0, (Int(ogg_page_granulepos(&page)) - preSkip48) * sampleRate / 48000)
        }
        var packet = ogg_packet()
        while ogg_stream_packetout(&stream, &packet) == 1 {
            defer { packetIndex += 1 }
            let data = UnsafeBufferPointer(start: packet.packet, count: packet.bytes)
            if packetIndex == 0 {
                guard let head = OpusHead(data) else { throw MediaError(.corrupt, "\(path) is not an Ogg Opus file") }
                guard head.isSupported else { throw MediaError(.unsupported, "\(path): channel mapping") }
                channels = head.channels
                preSkip48 = head.preSkip
                preSkipLeft = preSkip48 * sampleRate / 48000
                inputSampleRate = head.inputSampleRate
                var err: Int32 = 0
                decoder = opus_decoder_create(Int32(sampleRate), Int32(channels), &err)
                guard err == OPUS_OK else { throw MediaError(.encoder, "opus_decoder_create failed") }
                continue
            }
            if packetIndex == 1 { continue }  // OpusTags
            try onPacket?(data)
            audioPackets += 1
            let got = decodeBuffer.withUnsafeMutableBufferPointer {
                opus_decode(decoder!, packet.packet, Int32(packet.bytes), $0.baseAddress!, 5760, 0)
            }
            guard got > 0 else { throw MediaError(.corrupt, "\(path): packet does not decode") }
            var start = 0
            var count = Int(got)
            if preSkipLeft > 0 {
                let skip = min(preSkipLeft, count)
                preSkipLeft -= skip
                start = skip
                count -= skip
            }
            if let limit { count = max(0, min(count, limit - produced)) }
            if count > 0 {
                pending.append(contentsOf: decodeBuffer[start * channels..<(start + count) * channels])
                produced += count
            }
        }
        if limit != nil && ogg_page_eos(&page) != 0 { atEnd = true }
    }

    private var preSkip48 = 0
}

/// Several readers of the same shape, one after the other.
final class ConcatReader: PCMReader {
    let sampleRate: Int
    let channels: Int
    private var readers: [any PCMReader]

    init(_ readers: [any PCMReader]) throws {
        precondition(!readers.isEmpty)
        sampleRate = readers[0].sampleRate
        channels = readers[0].channels
        for r in readers where r.sampleRate != sampleRate || r.channels != channels {
            throw MediaError(.unsupported, "cannot append \(r.channels) ch at \(r.sampleRate) Hz to \(channels) ch at \(sampleRate) Hz")
        }
        self.readers = readers
    }

    func read(into buffer: UnsafeMutablePointer<Int16>, frames: Int) throws -> Int {
        while let first = readers.first {
            let n = try first.read(into: buffer, frames: frames)
            if n > 0 { return n }
            readers.removeFirst()
        }
        return 0
    }
}
