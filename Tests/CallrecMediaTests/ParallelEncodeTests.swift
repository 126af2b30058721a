import Foundation
import CallrecTestSupport
import Crypto
import Testing

@testable import CallrecMedia

/// A 16-bit PCM WAV (interleaved samples).
func writeWAV(_ path: String, _ pcm: [Int16], rate: Int, channels: Int) throws {
    var d = Data("RIFF".utf8)
    func le32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
    func le16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
    le32(36 + pcm.count * 2)
    d.append(contentsOf: Array("WAVEfmt ".utf8))
    le32(16); le16(1); le16(channels); le32(rate); le32(rate * channels * 2); le16(channels * 2); le16(16)
    d.append(contentsOf: Array("data".utf8))
    le32(pcm.count * 2)
    pcm.withUnsafeBytes { d.append(contentsOf: $0) }
    try d.write(to: URL(fileURLWithPath: path))
}

/// The Ogg pages of a file: serial, flags, granule position, and the audio packets each completes.
struct OggPageSummary {
    var serial: UInt32
    var bos: Bool
    var eos: Bool
    var granule: Int64
    var packetsEnded: Int
}

func oggPages(_ path: String) throws -> (pages: [OggPageSummary], packets: [[UInt8]]) {
    let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var pages: [OggPageSummary] = []
    var packets: [[UInt8]] = []
    var current: [UInt8] = []
    var at = 0
    func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[i + $1]) << (8 * $1) } }
    while at < b.count {
        guard Array(b[at..<at + 4]) == Array("OggS".utf8) else { throw DecodeError(message: "no page at \(at)") }
        let flags = b[at + 5]
        let granule = Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + 6 + $1]) << (8 * $1) })
        let nseg = Int(b[at + 26])
        var body = at + 27 + nseg
        var ended = 0
        for i in 0..<nseg {
            let lace = Int(b[at + 27 + i])
            current += b[body..<body + lace]
            body += lace
            if lace < 255 {
                packets.append(current)
                current = []
                ended += 1
            }
        }
        pages.append(OggPageSummary(serial: u32(at + 14), bos: flags & 2 != 0, eos: flags & 4 != 0, granule: granule, packetsEnded: ended))
        at = body
    }
    return (pages, packets)
}

/// Samples `opusdec` (opus-tools, libopusfile) decodes a file to, at `rate`.
func opusdecSamples(_ path: String, rate: Int) throws -> Int {
    let out = path + ".opusdec.wav"
    let r = try run("opusdec", ["--quiet", "--rate", String(rate), path, out])
    guard r.status == 0 else { throw DecodeError(message: "opusdec: \(r.err)") }
    defer { unlink(out) }
    let s = try run("soxi", ["-s", out])
    return Int(String(decoding: s.out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
}

/// Samples ffmpeg decodes a file to (per channel, at `rate`).
func ffmpegSamples(_ path: String, rate: Int, channels: Int) throws -> Int {
    let r = try run("ffmpeg", ["-v", "error", "-i", path, "-ar", String(rate), "-f", "s16le", "-"])
    guard r.status == 0 else { throw DecodeError(message: "ffmpeg: \(r.err)") }
    return r.out.count / 2 / channels
}

/// A long call in pieces encoded side by side (ParallelEncoder).
@Suite(.offThePool)
struct ParallelEncodeTests {
    /// A call of `repeats` × (speech.wav, 6 s, then a 0.7 s line-noise gap), mono 8 kHz: real
    /// speech with pauses, as a long call has.
    static func speechCall(repeats: Int) throws -> [Int16] {
        let speech = try soxDecode(Paths.fixture("speech.wav"))
        var rng = SystemRandomNumberGenerator()
        var pcm: [Int16] = []
        for _ in 0..<repeats {
            pcm += speech
            pcm += (0..<5600).map { _ in Int16.random(in: -20...20, using: &rng) }
        }
        return pcm
    }

    static func transcoder(threads: Int, pieceSeconds: Double = 10, searchSeconds: Double = 3) -> Transcoder {
        var t = Transcoder(encoder: EncoderOptions(threads: threads))
        t.pieces = PieceOptions(pieceSeconds: pieceSeconds, searchSeconds: searchSeconds)
        return t
    }

    /// 134 s in ~10 s pieces: one continuous stream (one serial, one OpusHead, granule positions
    /// continuous: each page's = 960 × the packets before its end; only the last trims), the
    /// serial encode's packet count and pre-skip, and exactly the source's samples through
    /// libopusfile, opusdec and ffmpeg. The first piece is the serial encoder's output byte for byte.
    @Test func longCallIsOneContinuousStreamOfExactLength() throws {
        let dir = TempDir()
        let pcm = try Self.speechCall(repeats: 20)
        let wav = dir.file("1767225600.1.wav")
        try writeWAV(wav, pcm, rate: 8000, channels: 1)
        let result = try Self.transcoder(threads: 2).transcode(input: wav, output: dir.file("p.opus"), tags: RecordingTags(uniqueid: "1767225600.1"))
        _ = try Self.transcoder(threads: 1).transcode(input: wav, output: dir.file("s.opus"), tags: RecordingTags(uniqueid: "1767225600.1"))
        #expect(result.measurements.samples == pcm.count)
        #expect(result.opus.samples48k == pcm.count * 6)

        let (pages, packets) = try oggPages(dir.file("p.opus"))
        let (_, serialPackets) = try oggPages(dir.file("s.opus"))
        #expect(Set(pages.map(\.serial)).count == 1)
        #expect(pages.filter(\.bos).count == 1 && pages.first!.bos)
        #expect(pages.filter(\.eos).count == 1 && pages.last!.eos)
        #expect(packets.count == serialPackets.count)
        #expect(packets[0] == serialPackets[0])  // the same OpusHead: pre-skip at the start only
        let preSkip = Int(packets[0][10]) | Int(packets[0][11]) << 8
        var audio = -2
        for (i, p) in pages.enumerated() {
            audio += p.packetsEnded
            guard audio > 0, p.granule != -1 else { continue }
            let expected = i == pages.count - 1 ? Int64(preSkip + pcm.count * 6) : Int64(audio * 960)
            #expect(p.granule == expected, "page \(i)")
        }
        // The first piece (≥ 7 s = 350 packets) is the serial encode's; later pieces differ.
        #expect(Array(packets[2..<352]) == Array(serialPackets[2..<352]))
        #expect(packets != serialPackets)

        let opusfile = try opusfileDecode(dir.file("p.opus"))
        #expect(opusfile.total == Int64(pcm.count * 6))
        #expect(opusfile.pcm.count == pcm.count * 6)
        #expect(try opusdecSamples(dir.file("p.opus"), rate: 8000) == pcm.count)
        #expect(try ffmpegSamples(dir.file("p.opus"), rate: 8000, channels: 1) == pcm.count)

        // Against the source, the parallel encode is as close as the serial one (SNR, dB).
        func snr(_ path: String) throws -> Double {
            let r = try OpusReader(path: path, rate: 8000)
            var out = [Int16](repeating: 0, count: pcm.count + 8000)
            let n = try out.withUnsafeMutableBufferPointer { try r.read(into: $0.baseAddress!, frames: $0.count) }
            #expect(n == pcm.count)
            var sig = 0.0, err = 0.0
            for i in 0..<pcm.count {
                sig += Double(pcm[i]) * Double(pcm[i])
                err += (Double(out[i]) - Double(pcm[i])) * (Double(out[i]) - Double(pcm[i]))
            }
            return 10 * log10(sig / err)
        }
        let (p, s) = (try snr(dir.file("p.opus")), try snr(dir.file("s.opus")))
        #expect(abs(p - s) < 0.3, "SNR parallel \(p) dB, serial \(s) dB")
    }

    /// The verification of a long file on two threads finds what the one-thread pass finds, and
    /// a damaged page late in the file (past the first batches) is reported in the same words.
    @Test func twoThreadVerificationAgrees() throws {
        let dir = TempDir()
        let wav = dir.file("1767225600.3.wav")
        try writeWAV(wav, try Self.speechCall(repeats: 10), rate: 8000, channels: 1)
        _ = try Self.transcoder(threads: 2).transcode(input: wav, output: dir.file("p.opus"), tags: RecordingTags(uniqueid: "1767225600.3"))
        let one = try OpusVerifier.inspect(path: dir.file("p.opus"), decodeRate: 8000)
        let two = try OpusVerifier.inspect(path: dir.file("p.opus"), decodeRate: 8000, decodeThreads: 2)
        #expect(one == two && one.packets > 4 * OpusVerifier.batchPackets)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("p.opus"))))
        bytes[bytes.count * 3 / 4] ^= 0x55
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("d.opus")))
        func error(_ threads: Int) -> String {
            do {
                _ = try OpusVerifier.inspect(path: dir.file("d.opus"), decodeRate: 8000, decodeThreads: threads)
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(error(1).contains("damaged Ogg page"))
        #expect(error(2) == error(1))
    }

    /// A call shorter than one piece and its look-ahead is one piece: the serial encode.
    @Test func shortCallIsTheSerialEncode() throws {
        let dir = TempDir()
        let wav = Paths.fixture("speech.wav")
        _ = try Self.transcoder(threads: 2).transcode(input: wav, output: dir.file("p.opus"), tags: RecordingTags(uniqueid: "s"))
        _ = try Self.transcoder(threads: 1).transcode(input: wav, output: dir.file("s.opus"), tags: RecordingTags(uniqueid: "s"))
        #expect(try oggPages(dir.file("p.opus")).packets == (try oggPages(dir.file("s.opus")).packets))
    }

    /// Other rates and channels, resampled ones too (44.1 kHz → 48 kHz), in very short pieces:
    /// the same length and channels as the serial encode, and pieces were cut.
    @Test(arguments: ["music44k.wav", "stereo16k.wav", "hd48k-24bit.wav"]) func otherRatesInPieces(fixture: String) throws {
        let dir = TempDir()
        let input = Paths.fixture(fixture)
        let p = try Self.transcoder(threads: 2, pieceSeconds: 0.4, searchSeconds: 0.1).transcode(
            input: input, output: dir.file("p.opus"), tags: RecordingTags(uniqueid: "r"))
        let s = try Self.transcoder(threads: 1).transcode(input: input, output: dir.file("s.opus"), tags: RecordingTags(uniqueid: "r"))
        #expect(p.opus.samples48k == s.opus.samples48k && p.opus.channels == s.opus.channels)
        #expect(p.measurements == s.measurements)
        let decoded = try opusfileDecode(dir.file("p.opus"))
        #expect(decoded.total == Int64(s.opus.samples48k) && decoded.channels == s.opus.channels)
        let (pp, sp) = (try oggPages(dir.file("p.opus")).packets, try oggPages(dir.file("s.opus")).packets)
        #expect(pp.count == sp.count && pp != sp)
    }

    /// Encodes `pcm` with the parallel encoder alone; returns its cuts and the decoded audio (at `rate`).
    static func encodeDirectly(
        _ pcm: [Int16], rate: Int, channels: Int, pieces: PieceOptions, in dir: TempDir
    ) throws -> (cuts: [Int], decoded: [Int16]) {
        let path = dir.file("direct-\(pieces.primingFrames)-\(channels).opus")
        let file = try FileOutput(creating: path)
        var options = EncoderOptions(threads: 2)
        options.bitrate *= channels
        let writer = try OggOpusWriter(
            output: file, encoderRate: rate, inputRate: rate, channels: channels, options: options, tags: [("UNIQUEID", "t")], serial: 7)
        let encoder = ParallelEncoder(writer: writer, options: options, pieces: pieces)
        try pcm.withUnsafeBufferPointer { b in
            for at in stride(from: 0, to: b.count, by: 8192 * channels) {
                try encoder.write(UnsafeBufferPointer(rebasing: b[at..<min(at + 8192 * channels, b.count)]))
            }
        }
        try encoder.endOfInput()
        #expect(try encoder.finish() == pcm.count / channels)
        try file.sync()
        let info = try OpusVerifier.inspect(path: path, decodeRate: rate)
        #expect(info.samples(at: rate) == pcm.count / channels)
        let reader = try OpusReader(path: path, rate: rate)
        var out = [Int16](repeating: 0, count: pcm.count + rate * channels)
        let n = try out.withUnsafeMutableBufferPointer { try reader.read(into: $0.baseAddress!, frames: $0.count / channels) }
        #expect(n * channels == pcm.count)
        return (encoder.cuts, Array(out[0..<n * channels]))
    }

    /// A steady tone (no silence: the cuts fall at the pieces' targets) decodes without a click at
    /// any cut: the error in the 20 ms frames around a seam is no worse than in the frames away
    /// from the seams. Without priming (a fresh encoder starting at its cut) the same measure
    /// sees the click, so it can fail.
    @Test(arguments: [1, 2]) func toneAcrossCutsHasNoClick(channels: Int) throws {
        let dir = TempDir()
        let rate = 8000, seconds = 24
        var pcm = [Int16](repeating: 0, count: rate * seconds * channels)
        for i in 0..<rate * seconds {
            for c in 0..<channels {
                let f = c == 0 ? 440.0 : 1000.0
                pcm[i * channels + c] = Int16(8000 * sin(2 * Double.pi * f * Double(i) / Double(rate)))
            }
        }
        // What is not the tone in each decoded 20 ms frame (the energy left after a least-squares
        // fit of the channel's sinusoid: a click is broadband, the codec's steady error is small);
        // the worst frame near a seam, and away from the seams.
        func residuals(_ decoded: [Int16], cuts: [Int]) -> (seam: Double, elsewhere: Double) {
            let F = rate / 50
            var seam = 0.0, elsewhere = 0.0
            for k in 10..<(rate * seconds / F - 2) {
                var e = 0.0
                for c in 0..<channels {
                    let w = 2 * Double.pi * (c == 0 ? 440.0 : 1000.0) / Double(rate)
                    var ss = 0.0, cc = 0.0, sc = 0.0, xs = 0.0, xc = 0.0, xx = 0.0
                    for i in k * F..<(k + 1) * F {
                        let (sv, cv, x) = (sin(w * Double(i)), cos(w * Double(i)), Double(decoded[i * channels + c]))
                        ss += sv * sv; cc += cv * cv; sc += sv * cv; xs += x * sv; xc += x * cv; xx += x * x
                    }
                    let det = ss * cc - sc * sc
                    let a = (xs * cc - xc * sc) / det, b = (xc * ss - xs * sc) / det
                    e += xx - a * xs - b * xc
                }
                if cuts.contains(where: { abs($0 / F - k) <= 3 }) { seam = max(seam, e) } else { elsewhere = max(elsewhere, e) }
            }
            return (seam, elsewhere)
        }
        let primed = try Self.encodeDirectly(pcm, rate: rate, channels: channels, pieces: PieceOptions(pieceSeconds: 6, searchSeconds: 1), in: dir)
        #expect(primed.cuts.count == 3)
        let p = residuals(primed.decoded, cuts: primed.cuts)
        #expect(p.seam <= 1.25 * p.elsewhere, "primed: worst frame at a seam \(p.seam), elsewhere \(p.elsewhere)")

        let unprimed = try Self.encodeDirectly(
            pcm, rate: rate, channels: channels, pieces: PieceOptions(pieceSeconds: 6, searchSeconds: 1, primingFrames: 0), in: dir)
        #expect(unprimed.cuts == primed.cuts)
        let u = residuals(unprimed.decoded, cuts: unprimed.cuts)
        #expect(u.seam > 4 * u.elsewhere, "unprimed: worst frame at a seam \(u.seam), elsewhere \(u.elsewhere)")
    }

    /// Cuts fall in the pauses: in the speech call every cut's seam is in a line-noise gap.
    @Test func cutsFallInPauses() throws {
        let dir = TempDir()
        let pcm = try Self.speechCall(repeats: 12)
        let (cuts, _) = try Self.encodeDirectly(pcm, rate: 8000, channels: 1, pieces: PieceOptions(pieceSeconds: 10, searchSeconds: 3), in: dir)
        #expect(cuts.count >= 6)
        for cut in cuts {
            // The 200 ms scored around the seam are silence as the contract measures it (< −40 dBFS).
            let rms = sqrt(pcm[cut - 640..<cut + 960].reduce(0.0) { $0 + Double($1) * Double($1) } / 1600)
            #expect(rms < 327, "the cut at \(cut) is not in a pause: \(rms) RMS")
        }
    }

    /// Two channels and sealing: a long stereo call encoded in pieces and sealed as it is written
    /// decodes to the same audio as the same call encoded in pieces in plaintext, of exact length.
    @Test func stereoSealedLongCall() throws {
        let dir = TempDir()
        let stereo = try soxDecode(Paths.fixture("stereo/call.wav"))  // 12 s, 8 kHz, 2 channels
        var pcm: [Int16] = []
        for _ in 0..<6 { pcm += stereo }
        let wav = dir.file("1767225600.2.wav")
        try writeWAV(wav, pcm, rate: 8000, channels: 2)
        var sealed = Self.transcoder(threads: 2, pieceSeconds: 8, searchSeconds: 2)
        let keys = KeySource()
        DataKeys.register(keys)
        sealed.sealing = { _ in keys.add(DataKey(id: .random(), key: SymmetricKey(size: .bits256))) }
        let s = try sealed.transcode(input: wav, output: dir.file("s.opus"), tags: RecordingTags(uniqueid: "1767225600.2"))
        _ = try Self.transcoder(threads: 2, pieceSeconds: 8, searchSeconds: 2).transcode(
            input: wav, output: dir.file("p.opus"), tags: RecordingTags(uniqueid: "1767225600.2"))
        #expect(SealFormat.isSealed(path: dir.file("s.opus")))
        #expect(s.opus.channels == 2 && s.opus.samples48k == pcm.count / 2 * 6)
        let decoded = try opusfileDecode(dir.file("p.opus"))
        #expect(decoded.channels == 2 && decoded.total == Int64(pcm.count / 2 * 6))
        let (sv, pv) = (try WavView(path: dir.file("s.opus")), try WavView(path: dir.file("p.opus")))
        #expect(sv.contentLength == pv.contentLength)
        #expect(try sv.bytes(0..<sv.contentLength) == (try pv.bytes(0..<pv.contentLength)))
        #expect(try opusdecSamples(dir.file("p.opus"), rate: 8000) == pcm.count / 2)
    }
}
