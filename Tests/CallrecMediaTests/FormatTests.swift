import Foundation
import CallrecTestSupport
import Testing

@testable import CallrecMedia

/// Every MixMonitor format, transcoded and checked against sox's decoding of the same file.
@Suite(.offThePool)
struct FormatTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var file: String
        var rate: Int
        var channels: Int
        var samples: Int
        var format: String
        /// How sox should read it (raw formats carry no header).
        var soxType: String?
        var testDescription: String { file }
    }

    static let cases: [Case] = [
        Case(file: "speech.wav", rate: 8000, channels: 1, samples: 48000, format: "wav"),
        Case(file: "speech.wav16", rate: 16000, channels: 1, samples: 96000, format: "wav", soxType: "wav"),
        Case(file: "speech.WAV", rate: 8000, channels: 1, samples: 48000, format: "wav"),
        Case(file: "speech.gsm", rate: 8000, channels: 1, samples: 48000, format: "gsm", soxType: "gsm"),
        Case(file: "speech.ulaw", rate: 8000, channels: 1, samples: 48000, format: "ulaw", soxType: "ul"),
        Case(file: "speech.alaw", rate: 8000, channels: 1, samples: 48000, format: "alaw", soxType: "al"),
        Case(file: "speech.sln", rate: 8000, channels: 1, samples: 48000, format: "sln", soxType: "raw"),
        Case(file: "speech.sln16", rate: 16000, channels: 1, samples: 96000, format: "sln16", soxType: "raw"),
        Case(file: "stereo16k.wav", rate: 16000, channels: 2, samples: 32000, format: "wav"),
        Case(file: "music44k.wav", rate: 44100, channels: 1, samples: 88200, format: "wav"),
        Case(file: "hd48k-24bit.wav", rate: 48000, channels: 1, samples: 48000, format: "wav"),
        Case(file: "u8.wav", rate: 8000, channels: 1, samples: 16000, format: "wav"),
        Case(file: "silence.wav", rate: 8000, channels: 1, samples: 12000, format: "wav"),
        // Real Asterisk 22 recordings (Fixtures/audio/asterisk-22/README.md).
        // 299 GSM blocks, no pad byte: `fact` and the block count say 95,680, libsndfile 96,000.
        Case(file: "asterisk-22/1795635715.81.WAV", rate: 8000, channels: 1, samples: 95680, format: "wav"),
        Case(file: "asterisk-22/1795635615.61.wav", rate: 8000, channels: 1, samples: 95680, format: "wav"),
        Case(file: "asterisk-22/1795635600.57.wav", rate: 8000, channels: 1, samples: 95840, format: "wav"),
    ]

    @Test(arguments: cases)
    func transcodesExactly(_ c: Case) throws {
        let dir = TempDir()
        let out = dir.file("out.opus")
        let result = try Transcoder().transcode(input: Paths.fixture(c.file), output: out, tags: RecordingTags(uniqueid: "1732467600.42"))
        let m = result.measurements
        #expect(m.samples == c.samples)
        #expect(m.sampleRate == c.rate)
        #expect(m.channels == c.channels)
        #expect(m.durationMs == Int((Double(c.samples) * 1000 / Double(c.rate)).rounded()))
        #expect(result.source.format.name == c.format)

        // Measurements against the reference computed from sox's decoding of the same file.
        let rawRate = c.soxType == "raw" ? c.rate : nil
        let pcm = try soxDecode(Paths.fixture(c.file), type: c.soxType, rate: rawRate)
        #expect(pcm.count == c.samples * c.channels)
        let ref = ReferenceMeasurements(pcm: pcm, rate: c.rate, channels: c.channels)
        #expect(m.silence.segments == ref.segments)
        #expect(m.silence.totalMs == ref.totalMs)
        #expect(m.silence.leadingMs == ref.leadingMs)
        #expect(m.silence.trailingMs == ref.trailingMs)
        #expect(m.silence.longestMs == ref.longestMs)
        #expect(m.levels.clippedSamples == ref.clipped)
        // sox and libsndfile round 24-bit samples to 16 bits differently: allow a hair.
        let tolerance = c.file.contains("24bit") ? 0.05 : 0.006
        #expect(abs((m.levels.peakDBFS ?? -999) - (ref.peakDBFS ?? -999)) <= tolerance)
        #expect(abs((m.levels.rmsDBFS ?? -999) - (ref.rmsDBFS ?? -999)) <= tolerance)

        // The Opus file, read by libopusfile: exact length, right channels, tags.
        let decoded = try opusfileDecode(out)
        #expect(decoded.channels == c.channels)
        let expected48 = Int64((Double(c.samples) * 48000 / Double(c.rate)).rounded())
        if 48000 % c.rate == 0 {
            #expect(decoded.total == expected48)
        } else {
            #expect(abs(decoded.total - expected48) <= 2, "resampled length \(decoded.total) vs \(expected48)")
        }
        #expect(Int64(decoded.pcm.count / c.channels) == decoded.total)
        #expect(decoded.tags["UNIQUEID"] == "1732467600.42")
        #expect(decoded.tags["STARTED_AT"] == "2024-11-24T17:00:00Z")
        #expect(decoded.tags["SOURCE_SHA256"] == result.sourceSHA256)
        #expect(result.sourceSHA256 == (try Transcoder.sha256(of: Paths.fixture(c.file))))
        #expect(result.opus.sha256 == (try Transcoder.sha256(of: out)))
        #expect(dir.contents == ["out.opus"], "no temporary file left behind")
    }

    /// A GSM WAV whose decoder length disagrees with its `fact` chunk and block count is cut to
    /// them, and the report says so; one where they agree says nothing.
    @Test func gsmOddBlockCountIsTrimmedAndReported() throws {
        let dir = TempDir()
        let odd = try Transcoder().transcode(
            input: Paths.fixture("asterisk-22/1795635715.81.WAV"), output: dir.file("a.opus"), tags: RecordingTags(uniqueid: "1795635715.81"))
        #expect(odd.measurements.samples == 95680)
        #expect(odd.source.lengthDisagreement == SampleCountDisagreement(fact: 95680, blocks: 95680, decoder: 96000))
        let json = String(decoding: try JSONEncoder.callrec.encode(MediaReport(odd)), as: UTF8.self)
        #expect(json.contains(#""length_disagreement":{"blocks":95680,"decoder":96000,"fact":95680}"#))
        let even = try Transcoder().transcode(input: Paths.fixture("speech.WAV"), output: dir.file("b.opus"), tags: RecordingTags(uniqueid: "x"))
        #expect(even.source.lengthDisagreement == nil)
        #expect(String(decoding: try JSONEncoder.callrec.encode(MediaReport(even)), as: UTF8.self).contains(#""length_disagreement":null"#))
    }

    /// A level a hair under full scale rounds to 0, never to −0 (which JSON would print as `-0`).
    @Test func levelsNeverPrintMinusZero() throws {
        let dir = TempDir()
        let input = dir.file("full.wav")
        let samples = (0..<8000).map { i -> Int16 in i % 2 == 0 ? 32767 : -32767 }
        try (MixMonitorWriter.header(dataBytes: samples.count * 2, sampleRate: 8000) + samples.withUnsafeBytes { Data($0) })
            .write(to: URL(fileURLWithPath: input))
        let result = try Transcoder().transcode(input: input, output: dir.file("full.opus"), tags: RecordingTags(uniqueid: "1"))
        #expect(result.measurements.levels.peakDBFS == 0)
        #expect(result.measurements.levels.peakDBFS?.sign == .plus)
        let json = String(decoding: try JSONEncoder.callrec.encode(MediaReport(result)), as: UTF8.self)
        #expect(!json.contains("-0,") && !json.contains("-0}"), "\(json)")
    }

    /// A recording that clips (speech played 8× too loud, clamped at full scale, both ways):
    /// `clipped_samples` counts every sample at |s| ≥ 32767, as the reference does — the
    /// fixtures above never clip, so there 0 == 0 proves nothing.
    @Test func clippedSamplesAreCounted() throws {
        let dir = TempDir()
        let speech = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        let loud = stride(from: 0, to: speech.count - 1, by: 2).map { i -> Int16 in
            let s = Int(Int16(bitPattern: UInt16(speech[i]) | UInt16(speech[i + 1]) << 8))
            return Int16(clamping: s * 8)
        }
        let input = dir.file("loud.wav")
        try (MixMonitorWriter.header(dataBytes: loud.count * 2, sampleRate: 8000) + loud.withUnsafeBytes { Data($0) }).write(to: URL(fileURLWithPath: input))
        let expected = loud.filter { $0 == Int16.max || $0 == Int16.min || $0 == -Int16.max }.count
        let positive = loud.filter { $0 == Int16.max }.count
        try #require(positive > 0 && expected > positive, "the audio clips both ways")
        let m = try Transcoder().transcode(input: input, output: dir.file("loud.opus"), tags: RecordingTags(uniqueid: "1732467600.1")).measurements
        let ref = ReferenceMeasurements(pcm: try soxDecode(input), rate: 8000, channels: 1)
        #expect(ref.clipped == expected)
        #expect(m.levels.clippedSamples == expected)
        #expect(m.levels.peakDBFS == 0)
    }

    /// The encoded audio lines up with the source sample for sample (pre-skip right): the
    /// decoded speech correlates best with the source at lag 0.
    @Test func decodedAudioIsAligned() throws {
        let dir = TempDir()
        let out = dir.file("a.opus")
        _ = try Transcoder().transcode(input: Paths.fixture("speech.wav"), output: out, tags: RecordingTags(uniqueid: "x"))
        let source = try soxDecode(Paths.fixture("speech.wav")).map(Double.init)
        let decoded48 = try opusfileDecode(out).pcm
        let decoded = stride(from: 0, to: decoded48.count, by: 6).map { Double(decoded48[$0]) }
        #expect(decoded.count == source.count)
        func correlation(_ lag: Int) -> Double {
            var s = 0.0
            for i in 200..<(source.count - 200) { s += source[i] * decoded[i + lag] }
            return s
        }
        let best = (-40...40).max { correlation($0) < correlation($1) }
        #expect(best == 0)
    }

    /// Asterisk's alias extensions pick the same decoder.
    @Test(arguments: [("speech.ulaw", ["pcm", "ul", "mu", "ulw"]), ("speech.alaw", ["al", "alw"]), ("speech.sln", ["raw"])])
    func aliasExtensions(_ source: String, _ extensions: [String]) throws {
        let dir = TempDir()
        let reference = try Transcoder().transcode(input: Paths.fixture(source), output: dir.file("ref.opus"), tags: RecordingTags(uniqueid: "r"))
        for ext in extensions {
            let copy = dir.file("1732467600.7.\(ext)")
            try FileManager.default.copyItem(atPath: Paths.fixture(source), toPath: copy)
            let r = try Transcoder().transcode(input: copy, output: dir.file("\(ext).opus"), tags: RecordingTags(uniqueid: "r"))
            #expect(r.measurements == reference.measurements, ".\(ext)")
        }
    }

    @Test func waveformIsAudiowaveformV2() throws {
        let dir = TempDir()
        let r = try Transcoder().transcode(input: Paths.fixture("speech.wav"), output: dir.file("w.opus"), tags: RecordingTags(uniqueid: "w"))
        let w = r.waveform
        #expect(w.version == 2 && w.bits == 8 && w.channels == 1)
        #expect(w.samplesPerPixel == 160)
        #expect(w.length == 300)
        #expect(w.data.count == 2 * w.length)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder.callrec.encode(w)) as! [String: Any]
        #expect(Set(json.keys) == ["version", "channels", "sample_rate", "samples_per_pixel", "bits", "length", "data"])
        // min ≤ max in every pair, and speech is louder than the pauses.
        for i in 0..<w.length { #expect(w.data[2 * i] <= w.data[2 * i + 1]) }
        let pcm = try soxDecode(Paths.fixture("speech.wav"))
        for px in [10, 60, 150, 250] {
            let slice = pcm[px * 160..<(px + 1) * 160]
            #expect(Int(w.data[2 * px]) == Int(slice.min()!) >> 8)
            #expect(Int(w.data[2 * px + 1]) == Int(slice.max()!) >> 8)
        }
    }
}
