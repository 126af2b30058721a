import CallrecTestSupport
import Crypto
import Foundation
import Testing

@testable import CallrecMedia

extension OggLayout {
    /// A file's plaintext (a sealed one opened through its key).
    static func of(_ path: String) throws -> OggLayout {
        let f = try StoredFile(path: path)
        return try OggLayout(try f.bytes(0..<f.size))
    }
}

/// Samples of a stored file decoded at `rate` (pre-skip and end trimming applied).
func decodeOpus(_ path: String, rate: Int = 8000) throws -> [Int16] {
    let r = try OpusReader(path: path, rate: rate)
    var out: [Int16] = []
    var buf = [Int16](repeating: 0, count: 4096 * r.channels)
    while true {
        let n = try buf.withUnsafeMutableBufferPointer { try r.read(into: $0.baseAddress!, frames: 4096) }
        if n == 0 { break }
        out += buf[0..<n * r.channels]
    }
    return out
}

/// Writes 8 kHz 16-bit samples as a MixMonitor WAV (mono) or a `.raw` (stereo, interleaved).
func writeAudio(_ samples: [Int16], to path: String, channels: Int = 1) throws {
    let data = samples.withUnsafeBytes { Data($0) }
    let bytes = channels == 1 ? MixMonitorWriter.header(dataBytes: data.count, sampleRate: 8000) + data : data
    try bytes.write(to: URL(fileURLWithPath: path))
}

/// The fixture speech (6 s, 8 kHz) as samples.
func speechSamples() throws -> [Int16] {
    let b = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
    return stride(from: 0, to: b.count - 1, by: 2).map { Int16(bitPattern: UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8) }
}

/// MixMonitor's `a` option at the media level: a later part appended to a stored recording keeps
/// the stored Opus packets as they are (OggAppend.swift).
@Suite(.offThePool)
struct AppendTests {
    static let tags = RecordingTags(uniqueid: "1732467600.77", startedAt: Date(timeIntervalSince1970: 1_732_467_600))

    /// Stores `first`, appends `second`; returns the stored file, the result and its path.
    static func appended(
        _ first: [Int16], _ second: [Int16], in dir: TempDir, channels: Int = 1, transcoder: Transcoder = Transcoder()
    ) throws -> (stored: String, result: TranscodeResult, out: String) {
        let ext = channels == 1 ? "wav" : "raw"
        var t = transcoder
        t.rawChannels = channels
        try writeAudio(first, to: dir.file("p1.\(ext)"), channels: channels)
        try writeAudio(second, to: dir.file("p2.\(ext)"), channels: channels)
        let stored = dir.file("stored.opus")
        let r1 = try t.transcode(input: dir.file("p1.\(ext)"), output: stored, tags: tags)
        let out = dir.file("out.opus")
        let r = try t.transcode(
            input: dir.file("p2.\(ext)"), output: out, tags: tags, appendingTo: PreviousRecording(path: stored, sourceSHA256s: [r1.sourceSHA256]))
        return (stored, r, out)
    }

    /// The packets before the seam are the stored ones byte for byte; one logical stream (one
    /// serial, BOS first, EOS last, granules rising to exactly pre-skip + both parts); the stored
    /// part's audio decodes identically up to the seam; libopusfile reads both parts' length.
    @Test func storedPacketsAreCopiedUnchanged() throws {
        let dir = TempDir()
        let speech = try speechSamples()
        let first = Array(speech[0..<30_003]), second = Array(speech[30_003...]) + Array(speech[0..<9_001])
        let (stored, result, out) = try Self.appended(first, second, in: dir)
        let before = try OggLayout.of(stored), after = try OggLayout.of(out)
        let n = first.count, m = second.count
        let kept = n / 160
        #expect(kept == 187 && before.audio.count == 188)
        #expect(Array(after.audio.prefix(kept)) == Array(before.audio.prefix(kept)), "a stored packet before the seam changed")
        #expect(after.packets[0].prefix(12) == before.packets[0].prefix(12), "OpusHead (pre-skip) changed")
        #expect(after.serials.count == 1 && after.serials == before.serials)
        #expect(after.bos == [0] && after.eos == [after.granules.count - 1])
        let audioGranules = after.granules.filter { $0 > 0 }
        #expect(audioGranules == audioGranules.sorted())
        #expect(after.granules.last == Int64(312 + (n + m) * 6))
        #expect(after.audio.count == (312 + (n + m) * 6 + 959) / 960)

        #expect(result.previousSamples == n && result.measurements.samples == n + m)
        let info = try OpusVerifier.inspect(path: out, decodeRate: 8000)
        #expect(info.samples48k == (n + m) * 6 && info.preSkip == 312)
        let libopusfile = try opusfileDecode(out)
        #expect(libopusfile.total == Int64((n + m) * 6) && libopusfile.pcm.count == (n + m) * 6)
        // Decoding is deterministic: the same packets give the same samples, up to the first
        // re-encoded packet (kept · 160 − pre-skip).
        let a = try decodeOpus(stored), b = try decodeOpus(out)
        let seam = kept * 160 - 52
        #expect(Array(b[0..<seam]) == Array(a[0..<seam]))
        #expect(b[seam..<n] != a[seam..<n])  // the stored tail was encoded again
    }

    /// Exact lengths whatever the parts' lengths: parts shorter than the priming, than one frame,
    /// on and off the 20 ms grid; and an appended recording appended to again.
    @Test(arguments: [(100, 1), (161, 7), (48_000, 16_000), (12_345, 777), (640, 160), (159, 48_001)])
    func exactSampleCounts(n: Int, m: Int) throws {
        let dir = TempDir()
        let speech = try speechSamples()
        let first = (0..<n).map { speech[$0 % speech.count] }, second = (0..<m).map { speech[($0 + 7_000) % speech.count] }
        let (_, result, out) = try Self.appended(first, second, in: dir)
        #expect(result.previousSamples == n && result.measurements.samples == n + m)
        #expect(try OpusVerifier.inspect(path: out).samples48k == (n + m) * 6)
        #expect(try opusfileDecode(out).total == Int64((n + m) * 6))
        #expect(try decodeOpus(out).count == n + m)

        // A third part.
        try writeAudio(first, to: dir.file("p3.wav"))
        let third = try Transcoder().transcode(
            input: dir.file("p3.wav"), output: dir.file("out3.opus"), tags: Self.tags,
            appendingTo: PreviousRecording(path: out, sourceSHA256s: try OpusVerifier.inspect(path: out).sourceSHA256s))
        #expect(third.previousSamples == n + m && third.measurements.samples == 2 * n + m)
        #expect(try opusfileDecode(dir.file("out3.opus")).total == Int64((2 * n + m) * 6))
        #expect(try OpusVerifier.inspect(path: dir.file("out3.opus")).sourceSHA256s.count == 3)
        let kept = (n + m) / 160
        #expect(Array(try OggLayout.of(dir.file("out3.opus")).audio.prefix(kept)) == Array(try OggLayout.of(out).audio.prefix(kept)))
    }

    /// A 530 Hz tone that goes on across the seam (the second part continues its phase) decodes
    /// without a click: in every 10 ms window around the seam, what is not the tone (the residual
    /// after the best-fitting 530 Hz sinusoid of the window) stays under twice the worst of the
    /// steady state elsewhere in the file and of a serial encode of the whole tone there. Measured:
    /// 394 at the seam (the first re-encoded packet starts from a decoder state its encoder only
    /// approximated), 272 elsewhere, amplitude 8000. 530 Hz moves by a large part of a cycle both
    /// for a packet off the grid by the encoder's look-ahead (52 samples: 160°) and for a frame
    /// lost or doubled (160 samples: 216°): with the look-ahead left out of the priming, 1,177.
    @Test func aToneContinuesAcrossTheSeam() throws {
        let dir = TempDir()
        let tone = (0..<40_000).map { Int16(8000 * sin(2 * Double.pi * 530 * Double($0) / 8000)) }
        let n = 20_003
        let (_, _, out) = try Self.appended(Array(tone[0..<n]), Array(tone[n...]), in: dir)
        try writeAudio(tone, to: dir.file("whole.wav"))
        _ = try Transcoder().transcode(input: dir.file("whole.wav"), output: dir.file("whole.opus"), tags: Self.tags)
        let decoded = try decodeOpus(out), serial = try decodeOpus(dir.file("whole.opus"))
        try #require(decoded.count == tone.count && serial.count == tone.count)
        /// The largest RMS residual, over 10 ms windows (every 2.5 ms) in `range`, of `x` after
        /// the least-squares 530 Hz sinusoid of each window.
        func worst(_ x: [Int16], _ range: Range<Int>) -> Double {
            stride(from: range.lowerBound, to: range.upperBound - 80, by: 20).map { w in
                var ss = 0.0, cc = 0.0, sc = 0.0, xs = 0.0, xc = 0.0
                for i in w..<w + 80 {
                    let s = sin(2 * Double.pi * 530 * Double(i) / 8000), c = cos(2 * Double.pi * 530 * Double(i) / 8000), v = Double(x[i])
                    ss += s * s; cc += c * c; sc += s * c; xs += v * s; xc += v * c
                }
                let det = ss * cc - sc * sc
                let a = (xs * cc - xc * sc) / det, b = (xc * ss - xs * sc) / det
                return sqrt((w..<w + 80).reduce(0.0) { r, i in
                    let e = Double(x[i]) - a * sin(2 * Double.pi * 530 * Double(i) / 8000) - b * cos(2 * Double.pi * 530 * Double(i) / 8000)
                    return r + e * e
                } / 80)
            }.max()!
        }
        let seam = n - 400..<n + 800  // 50 ms before the seam (the stored tail is re-encoded), 100 after
        let steady = 4_000..<n - 800  // two seconds of the stored part, well before the seam
        let atSeam = worst(decoded, seam), elsewhere = worst(decoded, steady), serialAtSeam = worst(serial, seam)
        print("tone across the seam: worst 10 ms residual \(Int(atSeam)) at the seam, \(Int(elsewhere)) elsewhere, serial encode \(Int(serialAtSeam)) there (amplitude 8000)")
        #expect(atSeam < 2 * max(elsewhere, serialAtSeam), "a click at the seam: \(atSeam) against \(elsewhere) elsewhere, \(serialAtSeam) for a serial encode")
    }

    /// Encryption at rest: a sealed stored recording gets a sealed result, its packets copied from
    /// the plaintext, both parts decodable through the key.
    @Test func sealedRecordingAppended() throws {
        let dir = TempDir()
        var t = Transcoder()
        let keys = KeySource()
        DataKeys.register(keys)
        let key = keys.add(DataKey(id: .random(), key: SymmetricKey(size: .bits256)))
        t.sealing = { _ in key }
        let speech = try speechSamples()
        let (stored, result, out) = try Self.appended(Array(speech[0..<20_000]), speech, in: dir, transcoder: t)
        #expect(SealFormat.isSealed(path: stored) && SealFormat.isSealed(path: out))
        #expect(result.measurements.samples == 68_000 && result.previousSamples == 20_000)
        #expect(try StoredFile.sha256(of: out) == result.opus.sha256)
        let kept = 20_000 / 160
        #expect(Array(try OggLayout.of(out).audio.prefix(kept)) == Array(try OggLayout.of(stored).audio.prefix(kept)))
        #expect(try decodeOpus(out).count == 68_000)
    }

    /// Two channels (MixMonitor `D`): kept packets, both sides where they were, exact length; a
    /// mono part is not appended to a stereo recording (permanent error: quarantine).
    @Test func stereoAppended() throws {
        let dir = TempDir()
        let raw = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture(StereoTests.dRaw)))
        let d: [Int16] = raw.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }  // 95,840 frames, left 440 Hz, right 1000 Hz
        let first = Array(d[0..<2 * 50_001]), second = Array(d[(2 * 50_001)...])
        let (stored, result, out) = try Self.appended(first, second, in: dir, channels: 2)
        #expect(result.measurements.channels == 2 && result.measurements.samples == 95_840 && result.previousSamples == 50_001)
        let kept = 50_001 / 160
        #expect(Array(try OggLayout.of(out).audio.prefix(kept)) == Array(try OggLayout.of(stored).audio.prefix(kept)))
        let pcm = try decodeOpus(out)
        #expect(pcm.count == 2 * 95_840)
        let left = channel(pcm, 0, of: 2), right = channel(pcm, 1, of: 2)
        let after = 52_000..<60_000  // the second part
        #expect(tonePower(left[after], frequency: 440, rate: 8000) > 100 * tonePower(left[after], frequency: 1000, rate: 8000))
        #expect(tonePower(right[after], frequency: 1000, rate: 8000) > 100 * tonePower(right[after], frequency: 440, rate: 8000))
        #expect(try opusfileDecode(out).total == 95_840 * 6)

        try writeAudio(Array(repeating: 100, count: 8000), to: dir.file("mono.wav"))
        do {
            _ = try Transcoder().transcode(
                input: dir.file("mono.wav"), output: dir.file("x.opus"), tags: Self.tags, appendingTo: PreviousRecording(path: stored, sourceSHA256s: []))
            Issue.record("a mono part was appended to a stereo recording")
        } catch let e as MediaError {
            #expect(e.isPermanent && e.message.contains("cannot append 1 ch"), "\(e)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.opus")))
    }

    /// The measurements and peaks are those of the stored part decoded then the new part, as when
    /// both were encoded again; only the file differs (fewer packets encoded).
    @Test func measuredAsBefore() throws {
        let dir = TempDir()
        let speech = try speechSamples()
        let copy = try Self.appended(Array(speech[0..<33_333]), speech, in: dir)
        var reencode = Transcoder()
        reencode.appendMethod = .reencoding
        let again = try reencode.transcode(
            input: dir.file("p2.wav"), output: dir.file("re.opus"), tags: Self.tags,
            appendingTo: PreviousRecording(path: copy.stored, sourceSHA256s: try OpusVerifier.inspect(path: copy.stored).sourceSHA256s))
        #expect(copy.result.measurements == again.measurements)
        #expect(copy.result.waveform == again.waveform)
        #expect(copy.result.previousSamples == again.previousSamples && copy.result.sourceSHA256 == again.sourceSHA256)
        #expect(copy.result.opus.sourceSHA256s == again.opus.sourceSHA256s && copy.result.opus.tags == again.opus.tags)
        #expect(try OggLayout.of(dir.file("re.opus")).audio.prefix(10) != (try OggLayout.of(copy.stored)).audio.prefix(10))
    }

    /// A stored stream not on callrec's 20 ms grid (40 ms packets, written by ffmpeg) is appended
    /// to by encoding both parts again: still exact.
    @Test func otherStreamsAreEncodedAgain() throws {
        let dir = TempDir()
        let speech = try speechSamples()
        try writeAudio(Array(speech[0..<20_000]), to: dir.file("p1.wav"))
        let ff = try run("ffmpeg", ["-v", "error", "-y", "-i", dir.file("p1.wav"), "-c:a", "libopus", "-b:a", "16000", "-frame_duration", "40", dir.file("ff.opus")])
        try #require(ff.status == 0, "\(ff.err)")
        let n = try OpusVerifier.inspect(path: dir.file("ff.opus"), decodeRate: 8000).samples(at: 8000)
        try writeAudio(speech, to: dir.file("p2.wav"))
        let r = try Transcoder().transcode(
            input: dir.file("p2.wav"), output: dir.file("out.opus"), tags: Self.tags, appendingTo: PreviousRecording(path: dir.file("ff.opus"), sourceSHA256s: []))
        #expect(r.previousSamples == n && r.measurements.samples == n + 48_000)
        #expect(try opusfileDecode(dir.file("out.opus")).total == Int64((n + 48_000) * 6))
        #expect(try OggLayout.of(dir.file("out.opus")).audio.count == (312 + (n + 48_000) * 6 + 959) / 960)  // 20 ms packets throughout
    }
}
