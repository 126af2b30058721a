import Foundation
import CallrecTestSupport
import Testing

@testable import CallrecMedia

/// Power of `frequency` in `x` (Goertzel), for telling which tone a channel carries.
func tonePower(_ x: ArraySlice<Double>, frequency: Double, rate: Double) -> Double {
    let w = 2 * Double.pi * frequency / rate
    let c = 2 * cos(w)
    var s1 = 0.0, s2 = 0.0
    for v in x {
        let s0 = v + c * s1 - s2
        s2 = s1
        s1 = s0
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2
}

/// One channel of interleaved samples.
func channel(_ pcm: [Int16], _ ch: Int, of channels: Int) -> [Double] {
    stride(from: ch, to: pcm.count, by: channels).map { Double(pcm[$0]) }
}

/// Two-channel recordings: MixMonitor `D` (`.raw`), legs, and what is measured per speaker.
struct StereoTests {
    static let dRaw = "asterisk-22/1795635585.53.raw"

    /// `D` writes interleaved stereo: with `rawChannels: 2` it is one 2-channel recording of the
    /// right length (95,840 frames, 11.98 s), left (440 Hz in the source) still left in the Opus.
    @Test func mixMonitorDRawIsStereo() throws {
        let dir = TempDir()
        let out = dir.file("d.opus")
        let result = try Transcoder(rawChannels: 2).transcode(input: Paths.fixture(Self.dRaw), output: out, tags: RecordingTags(uniqueid: "1795635585.53"))
        #expect(result.measurements.samples == 95840)
        #expect(result.measurements.channels == 2)
        #expect(result.measurements.durationMs == 11980)

        let decoded = try opusfileDecode(out)
        #expect(decoded.channels == 2)
        #expect(decoded.total == 95840 * 6)
        // OpusHead: version 1, 2 channels, channel mapping family 0.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        let head = try #require(bytes.range(of: Data("OpusHead".utf8)))
        #expect(bytes[head.upperBound] == 1)
        #expect(bytes[head.upperBound + 1] == 2)
        #expect(bytes[head.upperBound + 10] == 0)

        // The source: left 440 Hz, right 1000 Hz; the same in the decoded Opus (a 1 s piece).
        let left = channel(decoded.pcm, 0, of: 2), right = channel(decoded.pcm, 1, of: 2)
        let piece = 48000..<96000
        #expect(tonePower(left[piece], frequency: 440, rate: 48000) > 100 * tonePower(left[piece], frequency: 1000, rate: 48000))
        #expect(tonePower(right[piece], frequency: 1000, rate: 48000) > 100 * tonePower(right[piece], frequency: 440, rate: 48000))
    }

    /// Without being told, a `.raw` file is mono (the contract's default): read as today.
    @Test func rawIsMonoByDefault() throws {
        let dir = TempDir()
        let result = try Transcoder().transcode(input: Paths.fixture(Self.dRaw), output: dir.file("m.opus"), tags: RecordingTags(uniqueid: "1795635585.53"))
        #expect(result.measurements.channels == 1)
        #expect(result.measurements.samples == 191680)
    }

    @Test func rawChannelsSetting() throws {
        #expect(try Transcoder.rawChannels(fromEnvironment: [:]) == 1)
        #expect(try Transcoder.rawChannels(fromEnvironment: ["CALLREC_RAW_CHANNELS": "2"]) == 2)
        #expect(throws: MediaError.self) { try Transcoder.rawChannels(fromEnvironment: ["CALLREC_RAW_CHANNELS": "3"]) }
    }
}
