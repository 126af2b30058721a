import ArgumentParser
import CallrecMedia
import Foundation

struct Transcode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the media pipeline alone (no catalog): decode, measure, encode Ogg Opus, verify.",
        discussion: """
            IN is any recording MixMonitor writes (wav, wav16, WAV, gsm, ulaw/alaw and their alias \
            extensions, sln*), or any PCM WAV. Encoder settings come from CALLREC_OPUS_BITRATE \
            (default 16000) and CALLREC_OPUS_COMPLEXITY (default \(EncoderOptions.defaultComplexity)); a call \
            longer than about 35 s is encoded in pieces on CALLREC_OPUS_THREADS threads (default: the cores, \
            at most 4; 1 for one encoder), joined into one continuous stream of the same length; a .raw \
            file is mono unless CALLREC_RAW_CHANNELS=2 (MixMonitor's D option: interleaved stereo).
            """)

    @Argument(help: "The recording to read.") var input: String
    @Argument(help: "The Ogg Opus file to write (replaced atomically).") var output: String
    @Flag(help: "Print the measurements as JSON.") var json = false
    @Option(help: ArgumentHelp("Also write waveform peaks (audiowaveform JSON v2).", valueName: "PEAKS.json")) var waveform: String?
    @Option(help: "The uniqueid to tag (default: the input's file name without extension).") var uniqueid: String?

    func run() async throws {
        let encoder: EncoderOptions
        let rawChannels: Int
        let role: SpeakerRole
        do {
            encoder = try EncoderOptions.fromEnvironment()
            rawChannels = try Transcoder.rawChannels(fromEnvironment: ProcessInfo.processInfo.environment)
            role = try SpeakerRole.recorded(fromEnvironment: ProcessInfo.processInfo.environment)
        } catch { throw CommandFailure("\(error)") }
        let id = uniqueid ?? Self.stem(input)
        let result: TranscodeResult
        do {
            result = try Transcoder(encoder: encoder, rawChannels: rawChannels, recordedRole: role).transcode(input: input, output: output, tags: RecordingTags(uniqueid: id))
        } catch {
            throw CommandFailure("\(error)")
        }
        if let waveform {
            do {
                try result.waveform.json().write(to: URL(fileURLWithPath: waveform), options: .atomic)
            } catch { throw CommandFailure("cannot write \(waveform): \(error.localizedDescription)") }
        }
        let report = MediaReport(result)
        if json {
            try printJSON(report)
        } else {
            let s = report.silence
            print("""
                \(output): \(report.durationMs) ms, \(report.samples) samples at \(report.sampleRate) Hz, \(report.channels) ch
                  source \(report.source.format) \(report.source.bytes) B → opus \(report.opus.bytes) B (\(String(format: "%.1f", Double(report.source.bytes) / Double(max(report.opus.bytes, 1))))× smaller)\(report.source.recoveredHeader ? ", header recovered" : "")
                  levels peak \(Self.db(report.levels.peakDBFS)) dBFS, rms \(Self.db(report.levels.rmsDBFS)) dBFS, \(report.levels.clippedSamples) clipped
                  silence \(s.totalMs) ms (\(String(format: "%.1f", s.ratio * 100))%), longest \(s.longestMs) ms, leading \(s.leadingMs) ms, trailing \(s.trailingMs) ms
                """)
        }
    }

    static func db(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "-inf" }

    static func stem(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }
}
