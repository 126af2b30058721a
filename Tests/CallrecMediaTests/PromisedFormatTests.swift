import CallrecTestSupport
import Foundation
import Testing

/// `callrec transcode` (the built binary) as README promises it, read back with opusinfo and
/// libopusfile: the start time fallback, the `sln*` rates, resampled rates and the OpusTags.
@Suite(.offThePool)
struct PromisedFormatTests {
    struct Transcoded {
        var json: [String: Any]
        var tags: [String: String]
        var originalRate: Int?
        var decoded48k: Int64
        var channels: Int
    }

    static func transcode(_ input: String, _ output: String, _ args: [String] = [], env: [String: String] = [:]) throws -> Transcoded {
        let r = try callrec(["transcode", input, output, "--json"] + args, env: env)
        guard r.status == 0 else { throw DecodeError(message: "transcode \(input): \(r.err)") }
        let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] ?? [:]
        // opusinfo: an independent reader of the OpusHead and OpusTags.
        let info = String(decoding: try run("opusinfo", [output]).out, as: UTF8.self)
        var tags: [String: String] = [:]
        var rate: Int?
        for line in info.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("Original sample rate:") { rate = Int(t.dropFirst("Original sample rate:".count).split(separator: " ").first ?? "") }
            if line.hasPrefix("\t"), let eq = t.firstIndex(of: "="), t[..<eq].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) {
                tags[String(t[..<eq])] = String(t[t.index(after: eq)...])
            }
        }
        let decoded = try opusfileDecode(output)
        #expect(decoded.tags == tags, "libopusfile and opusinfo read the same tags")
        return Transcoded(json: json, tags: tags, originalRate: rate, decoded48k: decoded.total, channels: decoded.channels)
    }

    static func sha256(_ path: String) throws -> String { String(String(decoding: try run("sha256sum", [path]).out, as: UTF8.self).prefix(64)) }

    /// With no epoch in the name, `started_at` (JSON and the STARTED_AT tag) is the file's mtime
    /// minus its duration; with one, the uniqueid's epoch, whatever the mtime. Checked to fail:
    /// with the fallback using the mtime alone.
    @Test func startedAtFallsBackToModificationTimeMinusDuration() throws {
        let dir = TempDir()
        let mtime: time_t = 1_735_787_045  // 2025-01-02T03:04:05Z
        for name in ["agent-call.wav", "1732467600.42.wav"] {
            let input = dir.file(name)
            try FileManager.default.copyItem(atPath: Paths.fixture("speech.wav"), toPath: input)  // 6.000 s
            var times = [timespec(tv_sec: mtime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, input, &times, 0) == 0)
            let t = try Self.transcode(input, dir.file(name + ".opus"))
            let expected = name.hasPrefix("1732467600") ? "2024-11-24T17:00:00Z" : "2025-01-02T03:03:59Z"
            #expect(t.json["started_at"] as? String == expected, "\(name)")
            #expect(t.tags["STARTED_AT"] == expected, "\(name)")
            #expect(t.tags["UNIQUEID"] == String(name.dropLast(4)))
        }
    }

    /// `sln12` … `sln192` are raw 16-bit PCM at the rate their name gives (and `sln`, `raw` at
    /// 8 kHz): the measurements are at that rate, the OpusHead keeps it as the original rate, and
    /// the Opus decodes to the same duration. Checked to fail: with sln44 mapped to 44000 Hz.
    @Test func slnExtensionsTakeTheirRateFromTheName() throws {
        let dir = TempDir()
        let cases: [(String, Int)] = [
            ("sln", 8000), ("raw", 8000), ("sln12", 12000), ("sln16", 16000), ("sln24", 24000), ("sln32", 32000), ("sln44", 44100),
            ("sln48", 48000), ("sln96", 96000), ("sln192", 192000),
        ]
        for (ext, rate) in cases {
            let input = dir.file("1732467600.7.\(ext)")
            let made = try run("sox", ["-n", "-r", "\(rate)", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", input, "synth", "0.5", "sine", "440"])
            #expect(made.status == 0, "\(made.err)")
            let samples = rate / 2
            let t = try Self.transcode(input, dir.file("\(ext).opus"))
            #expect(t.json["sample_rate"] as? Int == rate, "\(ext)")
            #expect(t.json["samples"] as? Int == samples, "\(ext)")
            #expect(t.json["duration_ms"] as? Int == 500, "\(ext)")
            #expect(((t.json["source"] as? [String: Any])?["format"] as? String)?.hasPrefix("sln") == true, "\(ext)")
            #expect(t.tags["SOURCE_FORMAT"] == ((t.json["source"] as? [String: Any])?["format"] as? String))
            #expect(t.originalRate == rate, "\(ext): OpusHead says \(String(describing: t.originalRate))")
            #expect(abs(t.decoded48k - 24000) <= 3, "\(ext): decodes to \(t.decoded48k) samples at 48 kHz")
        }
    }

    /// A rate Opus cannot take (11025 Hz) is resampled for the encoder, while `samples` and
    /// `sample_rate` are still the source's, the OpusHead keeps 11025 as the original rate, the
    /// Opus decodes to the same duration and the audio comes back at its level. (Which Opus rate
    /// the encoder ran at, 16 kHz here, cannot be seen from outside: 48 kHz would pass too.)
    @Test func aRateOpusCannotTakeIsResampledAndMeasuredAsTheSource() throws {
        let dir = TempDir()
        let input = dir.file("1732467600.8.wav")
        #expect(try run("sox", ["-n", "-r", "11025", "-c", "1", "-b", "16", input, "synth", "1.0", "sine", "440", "vol", "0.5"]).status == 0)
        let t = try Self.transcode(input, dir.file("o.opus"))
        #expect(t.json["sample_rate"] as? Int == 11025)
        #expect(t.json["samples"] as? Int == 11025)
        #expect(t.json["duration_ms"] as? Int == 1000)
        #expect(t.originalRate == 11025)
        #expect(t.decoded48k % 3 == 0, "not whole 16 kHz samples: \(t.decoded48k)")
        #expect(abs(t.decoded48k - 48000) <= 3, "\(t.decoded48k)")
        let decoded = try opusfileDecode(dir.file("o.opus"))
        let middle = decoded.pcm[4800..<43200].map { Double($0) }
        let rms = (middle.reduce(0) { $0 + $1 * $1 } / Double(middle.count)).squareRoot()
        let dB = 20 * log10(rms / 32768)
        let levels = try #require(t.json["levels"] as? [String: Any])
        #expect(abs(dB - (levels["rms_dbfs"] as? Double ?? 0)) < 1.5, "decoded at \(dB) dBFS, source \(String(describing: levels["rms_dbfs"]))")
    }

    /// The OpusTags: UNIQUEID (the name's stem, or `--uniqueid`), STARTED_AT, SOURCE_SHA256 (of
    /// the input's bytes), SOURCE_FORMAT (from the extension) and ENCODER (with the bitrate used).
    /// Checked to fail: with the expected SOURCE_FORMAT of the `.gsm` file written as "wav".
    @Test func opusTagsCarryUniqueidStartSourceHashFormatAndEncoder() throws {
        let dir = TempDir()
        for (fixture, format) in [("speech.wav", "wav"), ("speech.gsm", "gsm"), ("speech.ulaw", "ulaw"), ("speech.alaw", "alaw"), ("speech.sln16", "sln16")] {
            let ext = (fixture as NSString).pathExtension
            let input = dir.file("pbx1-1732467600.9.\(ext)")
            try FileManager.default.copyItem(atPath: Paths.fixture(fixture), toPath: input)
            let t = try Self.transcode(input, dir.file("\(ext).opus"))
            #expect(t.tags["UNIQUEID"] == "pbx1-1732467600.9")
            #expect(t.tags["STARTED_AT"] == "2024-11-24T17:00:00Z")
            #expect(t.tags["SOURCE_SHA256"] == (try Self.sha256(input)), "\(fixture)")
            #expect(t.tags["SOURCE_FORMAT"] == format, "\(fixture)")
            #expect(t.tags["ENCODER"] == "callrec bitrate=16000 complexity=5")
            #expect(t.channels == 1)
        }
        let input = dir.file("anything.wav")
        try FileManager.default.copyItem(atPath: Paths.fixture("speech.wav"), toPath: input)
        let named = try Self.transcode(input, dir.file("named.opus"), ["--uniqueid", "1732467600.10"], env: ["CALLREC_OPUS_BITRATE": "24000"])
        #expect(named.tags["UNIQUEID"] == "1732467600.10")
        #expect(named.tags["STARTED_AT"] == "2024-11-24T17:00:00Z")
        #expect(named.tags["ENCODER"] == "callrec bitrate=24000 complexity=5")
        #expect((named.json["opus"] as? [String: Any])?["bitrate"] as? Int == 24000)
    }
}
