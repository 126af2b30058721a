import COpus
import Foundation
import CallrecSupport

/// Where the encoder's input goes: the serial `OggOpusWriter`, or a `ParallelEncoder` in front of it.
protocol EncoderSink: AnyObject {
    /// Interleaved samples at the encoder's rate, in order.
    func write(_ samples: UnsafeBufferPointer<Int16>) throws
}

extension OggOpusWriter: EncoderSink {}

/// How a long call is cut into pieces for the parallel encoder.
struct PieceOptions: Sendable, Equatable {
    /// A piece's target length; its cut is the quietest 20 ms frame boundary within
    /// ± `searchSeconds` of it, found in the audio already read (a look-ahead of `searchSeconds`).
    var pieceSeconds: Double = 30
    var searchSeconds: Double = 5
    /// How much of the audio before its cut each piece's encoder is fed first (its packets are
    /// dropped), so the fresh encoder's state has settled on the same sound when its kept packets
    /// start. 1 s: a two-channel encoder still leaves an artefact after 0.5 s of a steady tone
    /// (its stereo prediction settles slowly), none after 1 s (ParallelEncodeTests).
    var primingFrames: Int = 50
    /// A piece holds at most this much PCM, so memory stays flat whatever the format: 8 kHz mono
    /// keeps 30 s pieces, 8 kHz stereo gets 16 s ones, 48 kHz stereo 2.7 s ones. (At 2 MiB the
    /// stereo ingest of a 2-hour call as two legs peaked at 67.7–69.1 MiB against the 64 MiB
    /// target, ~5 MiB over the serial encode's, with up to `threads` + 3 pieces held at once.)
    var maxPieceBytes: Int = 512 << 10
}

/// Encodes a long call on several threads and muxes the result into one continuous Ogg Opus
/// stream, identical in form to the serial encoder's: one serial, one OpusHead (pre-skip only at
/// the start), one packet per 20 ms with continuous granule positions, the same packet count and
/// the same end trimming, so it decodes to exactly the source's samples.
///
/// The audio is cut on the 20 ms frame grid into pieces of about `pieceSeconds`, each at the
/// quietest frame boundary near its target (energy of the mono mix over 200 ms around the seam),
/// chosen from a look-ahead window as the samples stream in: one pass, no second read, memory
/// bounded by the pieces in flight. Each piece gets a fresh libopus encoder with the recording's
/// settings, primed with the `primingFrames` frames before its cut; the packets that cover the
/// priming are dropped. A fresh encoder's packet *m* decodes to its input shifted by the encoder's
/// lookahead, so priming on the frame grid makes the kept packets start exactly where the previous
/// piece's stop: packet *k* of the file always covers source samples [(k−1)·F − L, k·F − L).
/// The first piece has no priming: it is the serial encoder's output, byte for byte, and a call
/// shorter than one piece plus the look-ahead is one piece — the serial encode.
///
/// Used by one thread (the transcoder's encoding thread); the encoders run on `threads` threads.
final class ParallelEncoder: EncoderSink {
    let writer: OggOpusWriter
    let channels: Int
    let frameSize: Int
    let pieceFrames: Int
    let searchFrames: Int
    let primingFrames: Int  // in samples
    private let rate: Int
    private let options: EncoderOptions
    private let threads: Int

    private var buffer: [Int16] = []  // interleaved, from `bufferStart`
    private var bufferStart = 0  // samples per channel before buffer[0]
    private var pieceStart = 0  // where the current piece's kept packets start (a frame boundary)
    private(set) var total = 0  // samples per channel written
    /// Where each piece after the first starts (samples, on the frame grid).
    private(set) var cuts: [Int] = []
    private let jobs: BoundedQueue<PieceJob>
    private var workers: [Worker<Void>] = []
    private var inFlight: [PieceJob] = []
    private var lastPacket: [UInt8]?
    private var closed = false

    init(writer: OggOpusWriter, options: EncoderOptions, pieces: PieceOptions = PieceOptions()) {
        self.writer = writer
        self.rate = writer.encoderRate
        self.channels = writer.channels
        self.frameSize = writer.frameSize
        self.options = options
        self.threads = max(1, options.threads)
        let F = writer.frameSize
        let bytesPerSample = 2 * writer.channels
        let byBytes = pieces.maxPieceBytes / bytesPerSample
        let piece = max(20 * F, min(Int(pieces.pieceSeconds * Double(rate)), byBytes)) / F * F
        self.pieceFrames = piece
        self.searchFrames = min(Int(pieces.searchSeconds * Double(rate)) / F * F, piece / 3 / F * F)
        self.primingFrames = min(pieces.primingFrames * F, piece / 2 / F * F)
        jobs = BoundedQueue(capacity: threads + 2)
        buffer.reserveCapacity(bufferCapacity)
        let (rate, channels, options, jobs) = (rate, channels, options, jobs)
        for i in 0..<threads {
            workers.append(Worker(name: "callrec-enc\(i)") {
                while let job = try jobs.pop() { job.encode(rate: rate, channels: channels, options: options) }
            })
        }
    }

    deinit { close() }

    /// The samples a cut needs beyond the piece's target: the search window and the scoring window after it.
    private var lookAhead: Int { searchFrames + 8 * frameSize }
    /// What the buffer can hold before a cut (a whole block may arrive at once): reserved once,
    /// so the buffer never grows by doubling.
    private var bufferCapacity: Int { (primingFrames + pieceFrames + lookAhead + 2 * Transcoder.blockFrames) * channels }

    func write(_ samples: UnsafeBufferPointer<Int16>) throws {
        buffer.append(contentsOf: samples)
        total += samples.count / channels
        while total - pieceStart >= pieceFrames + lookAhead { try cut() }
    }

    /// Ends the input: encodes the last piece and muxes every packet but the very last one, which
    /// `finish` writes with the final granule position.
    func endOfInput() throws {
        try submit(end: total, last: true)
        while !inFlight.isEmpty { try muxHead() }
    }

    /// Writes the last packet (trimming the stream to exactly the samples given) and patches the tags.
    func finish(patch: [String: String] = [:]) throws -> Int {
        guard let lastPacket else { throw MediaError(.encoder, "the parallel encoder was not given the end of its input") }
        let n = try lastPacket.withUnsafeBufferPointer { try writer.finishEncoded(lastPacket: $0, samples: total, patch: patch) }
        close()
        return n
    }

    /// Stops the encoding threads (after a failure: without waiting for them to finish their piece).
    func close() {
        guard !closed else { return }
        closed = true
        if lastPacket == nil { jobs.fail(MediaError(.encoder, "parallel encode stopped")) } else { jobs.finish() }
        for w in workers { _ = try? w.join() }
    }

    /// Chooses the cut of the current piece, hands it to an encoder and starts the next one there.
    private func cut() throws {
        let F = frameSize
        let target = pieceStart + pieceFrames
        let lo = target - searchFrames, hi = target + searchFrames
        // Energy of each frame from 4 frames before `lo` to 6 after `hi`; the score of a cut at S
        // is the energy of the 10 frames around its seam (which lies at S − lookahead, in the
        // frame before S): the 80 ms before it and the 120 ms after, where a fresh encoder's
        // state differs from the decoder's.
        let firstFrame = lo / F - 4
        let count = (hi - lo) / F + 10
        var energy = [Int64](repeating: 0, count: count)
        buffer.withUnsafeBufferPointer { b in
            for j in 0..<count {
                let from = ((firstFrame + j) * F - bufferStart) * channels
                var e: Int64 = 0
                for i in from..<from + F * channels {
                    let s = Int64(b[i])
                    e += s * s
                }
                energy[j] = e
            }
        }
        var best = target
        var bestScore = Int64.max
        var window = energy[0..<10].reduce(0, +)
        var s = lo
        var j = 0
        while true {
            if window < bestScore || (window == bestScore && abs(s - target) < abs(best - target)) {
                bestScore = window
                best = s
            }
            if s == hi { break }
            window += energy[j + 10] - energy[j]
            j += 1
            s += F
        }
        try submit(end: best, last: false)
        pieceStart = best
        cuts.append(best)
        // The next piece's priming and what was read past the cut move to a fresh buffer.
        let keepFrom = max(0, best - primingFrames)
        var next = [Int16]()
        next.reserveCapacity(bufferCapacity)
        next.append(contentsOf: buffer[((keepFrom - bufferStart) * channels)...])
        buffer = next
        bufferStart = keepFrom
    }

    /// Hands [pieceStart − priming, end) to the encoders, muxing finished pieces first so that at
    /// most `threads` + 1 pieces are in flight.
    private func submit(end: Int, last: Bool) throws {
        while inFlight.count > threads { try muxHead() }
        let from = max(0, pieceStart - primingFrames)
        let pcm = Array(buffer[(from - bufferStart) * channels..<(end - bufferStart) * channels])
        let job = PieceJob(pcm: pcm, drop: (pieceStart - from) / frameSize, last: last)
        inFlight.append(job)
        guard jobs.push(job) else { throw jobs.failure ?? MediaError(.encoder, "parallel encode stopped") }
        while let head = inFlight.first, head.isDone { try muxHead() }
    }

    /// Waits for the oldest piece in flight and muxes its packets.
    private func muxHead() throws {
        let job = inFlight.removeFirst()
        let (packets, sizes) = try job.result()
        try packets.withUnsafeBufferPointer { p in
            var at = 0
            for (i, n) in sizes.enumerated() {
                if job.last && i == sizes.count - 1 {
                    lastPacket = Array(p[at..<at + n])
                } else {
                    try writer.writeEncoded(UnsafeBufferPointer(rebasing: p[at..<at + n]))
                }
                at += n
            }
        }
    }
}

/// One piece: its PCM (priming included), and once encoded, its kept packets.
final class PieceJob: @unchecked Sendable {
    private var pcm: [Int16]
    let drop: Int
    let last: Bool
    private let lock = NSCondition()
    private var outcome: Result<([UInt8], [Int]), any Error>?

    init(pcm: [Int16], drop: Int, last: Bool) {
        self.pcm = pcm
        self.drop = drop
        self.last = last
    }

    var isDone: Bool {
        lock.lock()
        defer { lock.unlock() }
        return outcome != nil
    }

    func result() throws -> ([UInt8], [Int]) {
        lock.lock()
        defer { lock.unlock() }
        while outcome == nil { lock.wait() }
        return try outcome!.get()
    }

    /// Encodes the piece with a fresh encoder. Every packet covers a whole 20 ms frame; the last
    /// piece is padded with zeros until its last sample has come out of the encoder's lookahead
    /// (as `OggOpusWriter.finish` does).
    func encode(rate: Int, channels: Int, options: EncoderOptions) {
        let r = Result { () throws -> ([UInt8], [Int]) in
            let (enc, lookahead) = try OggOpusWriter.makeEncoder(rate: rate, channels: channels, options: options)
            defer { opus_encoder_destroy(enc) }
            let F = rate / 50
            let frames = pcm.count / channels
            let count = last ? (frames + lookahead + F - 1) / F : frames / F
            var packets: [UInt8] = []
            var sizes: [Int] = []
            packets.reserveCapacity((count - drop) * 80)
            sizes.reserveCapacity(count - drop)
            var packet = [UInt8](repeating: 0, count: 4000)
            var padded = [Int16](repeating: 0, count: F * channels)
            try pcm.withUnsafeBufferPointer { src in
                for m in 0..<count {
                    let n: Int32
                    if (m + 1) * F <= frames {
                        n = packet.withUnsafeMutableBufferPointer {
                            opus_encode(enc, src.baseAddress! + m * F * channels, Int32(F), $0.baseAddress!, Int32($0.count))
                        }
                    } else {
                        let have = max(0, frames - m * F) * channels
                        for i in 0..<F * channels { padded[i] = i < have ? src[m * F * channels + i] : 0 }
                        n = packet.withUnsafeMutableBufferPointer {
                            opus_encode(enc, padded, Int32(F), $0.baseAddress!, Int32($0.count))
                        }
                    }
                    guard n > 0 else { throw MediaError(.encoder, "opus_encode failed: \(String(cString: opus_strerror(n)))") }
                    if m >= drop {
                        packets.append(contentsOf: packet[0..<Int(n)])
                        sizes.append(Int(n))
                    }
                }
            }
            return (packets, sizes)
        }
        lock.lock()
        pcm = []  // the piece's PCM is no longer needed: memory stays flat
        outcome = r
        lock.broadcast()
        lock.unlock()
    }
}
