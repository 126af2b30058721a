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
@Suite(.offThePool)
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

    /// The scripted call (Fixtures/audio/stereo/README.md): every figure within one 20 ms window
    /// of what the script implies.
    @Test func perSpeakerFiguresMatchTheScript() throws {
        let dir = TempDir()
        let result = try Transcoder().transcode(
            input: Paths.fixture("stereo/call.wav"), output: dir.file("c.opus"), tags: RecordingTags(uniqueid: "1795635700.1"))
        let sp = try #require(result.measurements.speakers)
        func near(_ a: Int, _ b: Int) -> Bool { abs(a - b) <= 20 }
        let agent = sp.speakers[0], customer = sp.speakers[1]
        #expect(agent.channel == 0 && agent.role == .agent)
        #expect(customer.channel == 1 && customer.role == .customer)
        #expect(near(agent.talkMs, 6500), "\(agent.talkMs)")
        #expect(near(agent.longestTalkMs, 2500), "\(agent.longestTalkMs)")
        #expect(agent.interruptions == 1)
        let expectedZeros = [[0, 500], [3000, 4000], [6000, 9000], [11000, 12000]]
        #expect(agent.zeroRuns.count == expectedZeros.count, "\(agent.zeroRuns)")
        for (got, want) in zip(agent.zeroRuns, expectedZeros) { #expect(near(got[0], want[0]) && near(got[1], want[1]), "\(got) vs \(want)") }
        #expect(near(customer.talkMs, 5300), "\(customer.talkMs)")
        #expect(near(customer.longestTalkMs, 2500), "\(customer.longestTalkMs)")
        #expect(customer.interruptions == 3)
        #expect(customer.zeroRuns.isEmpty)
        #expect(near(sp.overtalkMs, 1800), "\(sp.overtalkMs)")
        #expect(near(sp.deadAirMs, 2000), "\(sp.deadAirMs)")
        #expect(sp.talkRatio == Analyzer.round(Double(agent.talkMs) / Double(agent.talkMs + customer.talkMs), 4))
        #expect(customer.rmsDBFS != nil && agent.peakDBFS != nil)

        // The JSON: the contract's fields beside today's.
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder.callrec.encode(MediaReport(result))) as! [String: Any]
        let speakers = try #require(json["speakers"] as? [[String: Any]])
        #expect(speakers.count == 2)
        #expect(speakers[0]["role"] as? String == "agent")
        #expect(Set(speakers[0].keys) == ["channel", "role", "talk_ms", "longest_talk_ms", "interruptions", "zero_runs", "peak_dbfs", "rms_dbfs"])
        #expect(json["overtalk_ms"] as? Int == sp.overtalkMs)
        #expect(json["dead_air_ms"] as? Int == sp.deadAirMs)
    }

    /// `CALLREC_RECORDED_ROLE=customer`: channel 0 is the customer; figures stay with their channel.
    @Test func recordedRoleNamesChannelZero() throws {
        let dir = TempDir()
        let result = try Transcoder(recordedRole: .customer).transcode(
            input: Paths.fixture("stereo/call.wav"), output: dir.file("c.opus"), tags: RecordingTags(uniqueid: "1795635700.1"))
        let sp = try #require(result.measurements.speakers)
        #expect(sp.speakers.map(\.role) == [.customer, .agent])
        #expect(abs(sp.speakers[0].talkMs - 6500) <= 20)
        // Rebuilt from the file alone (reindex): the role comes back from its tags.
        let (m, _, _) = try Transcoder().analyze(opus: dir.file("c.opus"))
        #expect(m.speakers?.speakers.map(\.role) == [.customer, .agent])
        #expect(try SpeakerRole.recorded(fromEnvironment: ["CALLREC_RECORDED_ROLE": "customer"]) == .customer)
        #expect(throws: MediaError.self) { try SpeakerRole.recorded(fromEnvironment: ["CALLREC_RECORDED_ROLE": "boss"]) }
    }

    /// The real `D` recording: the left side's exact-zero gaps (2.96–5.00 s, 7.98–9.00 s) are its
    /// zero runs; the right side never stops. A mono recording has no speakers.
    @Test func realDRecordingZeroRunsAndOvertalk() throws {
        let dir = TempDir()
        let result = try Transcoder(rawChannels: 2).transcode(
            input: Paths.fixture(Self.dRaw), output: dir.file("d.opus"), tags: RecordingTags(uniqueid: "1795635585.53"))
        let sp = try #require(result.measurements.speakers)
        #expect(sp.speakers[0].zeroRuns == [[2960, 5000], [7980, 9000]])
        #expect(sp.speakers[1].zeroRuns == [[0, 20]])  // the written side starts one frame late
        #expect(sp.speakers[0].talkMs == 11980 - 2040 - 1020)
        #expect(sp.speakers[0].interruptions == 2)
        #expect(sp.speakers[1].interruptions == 0)  // 20 ms after the other began: not an interruption
        #expect(sp.deadAirMs == 0)
        let mono = try Transcoder().transcode(input: Paths.fixture("speech.wav"), output: dir.file("m.opus"), tags: RecordingTags(uniqueid: "1"))
        #expect(mono.measurements.speakers == nil)
        let json = String(decoding: try JSONEncoder.callrec.encode(MediaReport(mono)), as: UTF8.self)
        #expect(json.contains(#""speakers":null"#) && json.contains(#""overtalk_ms":null"#))
    }

    /// Peaks of a two-channel recording: audiowaveform's --split-channels layout, channel 0 first.
    @Test func stereoWaveformIsSplitPerChannel() throws {
        let dir = TempDir()
        let result = try Transcoder().transcode(
            input: Paths.fixture("stereo/call.wav"), output: dir.file("c.opus"), tags: RecordingTags(uniqueid: "1795635700.1"))
        let w = result.waveform
        #expect(w.channels == 2)
        #expect(w.length == 600)  // 12 s at one pixel per 20 ms
        #expect(w.data.count == w.length * 4)
        // At 0.2 s (pixel 10) channel 0 is exact zeros and channel 1 only faint noise.
        #expect(w.data[40] == 0 && w.data[41] == 0)
        // From 1.2 s to 2.4 s (pixels 60..<120) the agent speaks, the customer does not.
        #expect((60..<120).map { w.data[$0 * 4 + 1] }.max()! > 20)
        #expect((60..<120).map { w.data[$0 * 4 + 3] }.max()! < 2)
    }

    /// The waveform's own JSON writer gives exactly what JSONEncoder gives.
    @Test func waveformJSONIsJSONEncoders() throws {
        let dir = TempDir()
        for (fixture, raw) in [("stereo/call.wav", 1), ("speech.wav", 1), (Self.dRaw, 2)] {
            let w = try Transcoder(rawChannels: raw).transcode(input: Paths.fixture(fixture), output: dir.file("w.opus"), tags: RecordingTags(uniqueid: "1")).waveform
            #expect(w.json() == (try JSONEncoder.callrec.encode(w)), "\(fixture)")
        }
    }

    /// The waveform written in pieces (as the catalog stores it) is `json()` byte for byte, and
    /// `jsonByteCount` is its exact length: mono and stereo, every 8-bit value (one to three digits,
    /// with and without a sign), no peaks at all, and pieces from the smallest allowed to one
    /// bigger than the whole. Every piece but the last is at most `chunkSize`.
    @Test func streamedWaveformIsJSONsBytes() throws {
        let dir = TempDir()
        var waveforms: [(String, Waveform)] = []
        for (fixture, raw) in [("stereo/call.wav", 1), ("speech.wav", 1), (Self.dRaw, 2)] {
            let w = try Transcoder(rawChannels: raw).transcode(input: Paths.fixture(fixture), output: dir.file("w.opus"), tags: RecordingTags(uniqueid: "1")).waveform
            waveforms.append((fixture, w))
        }
        let every = (0..<1024).map { Int8(truncatingIfNeeded: $0 &* 37) }  // all 256 values, shuffled
        waveforms.append(("every value, mono", Waveform(sampleRate: 8000, samplesPerPixel: 160, length: every.count / 2, data: every)))
        waveforms.append(("every value, stereo", Waveform(channels: 2, sampleRate: 48000, samplesPerPixel: 960, length: every.count / 4, data: every)))
        waveforms.append(("one peak", Waveform(sampleRate: 8000, samplesPerPixel: 160, length: 0, data: [-128])))
        waveforms.append(("no peaks", Waveform(sampleRate: 8000, samplesPerPixel: 160, length: 0, data: [])))
        for (name, w) in waveforms {
            let json = w.json()
            #expect(w.jsonByteCount == json.count, "\(name)")
            for chunk in [8, 13, 4096, 64 * 1024, json.count + 1] where chunk >= 8 {
                var streamed = Data()
                var sizes: [Int] = []
                w.writeJSON(chunkSize: chunk) { piece in
                    sizes.append(piece.count)
                    streamed.append(contentsOf: piece)
                }
                #expect(streamed == json, "\(name), pieces of \(chunk)")
                #expect(sizes.allSatisfy { $0 > 0 && $0 <= chunk }, "\(name), pieces of \(chunk): \(sizes.prefix(8))")
            }
        }
    }
}
