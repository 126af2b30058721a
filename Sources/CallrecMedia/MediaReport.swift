import Foundation

/// The contract's JSON for one recording as far as the media pipeline knows it: what
/// `callrec transcode --json` prints, and the core of the catalog's recording JSON.
public struct MediaReport: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var format: String
        public var bytes: Int
        public var sha256: String
        /// True when the WAV header's sizes were wrong (an unclosed recording) and were recovered.
        public var recoveredHeader: Bool
        /// The decoder's length and the file's declared length disagreed (null when they agree).
        public var lengthDisagreement: SampleCountDisagreement?
        enum CodingKeys: String, CodingKey {
            case format, bytes, sha256, recoveredHeader = "recovered_header", lengthDisagreement = "length_disagreement"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(format, forKey: .format)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(recoveredHeader, forKey: .recoveredHeader)
            try c.encode(lengthDisagreement, forKey: .lengthDisagreement)  // null, not absent
        }
    }
    /// The stored audio: `opus` in the contract's JSON, here and in the catalog's.
    public struct Opus: Codable, Sendable, Equatable {
        public var bytes: Int
        public var bitrate: Int
        public var sha256: String
        public init(bytes: Int, bitrate: Int, sha256: String) {
            self.bytes = bytes
            self.bitrate = bitrate
            self.sha256 = sha256
        }
    }

    public var uniqueid: String
    public var startedAt: String
    public var samples: Int
    public var sampleRate: Int
    public var channels: Int
    public var durationMs: Int
    public var source: Source
    public var opus: Opus
    public var silence: Silence
    public var levels: Levels
    /// Two-channel recordings: who talked when (`null` for mono), as the contract's JSON has it.
    public var speakers: SpeakerAnalysis?

    enum CodingKeys: String, CodingKey {
        case uniqueid, startedAt = "started_at", samples, sampleRate = "sample_rate", channels
        case durationMs = "duration_ms", source, opus, silence, levels
        case speakers, overtalkMs = "overtalk_ms", deadAirMs = "dead_air_ms", talkRatio = "talk_ratio"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        uniqueid = try c.decode(String.self, forKey: .uniqueid)
        startedAt = try c.decode(String.self, forKey: .startedAt)
        samples = try c.decode(Int.self, forKey: .samples)
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        channels = try c.decode(Int.self, forKey: .channels)
        durationMs = try c.decode(Int.self, forKey: .durationMs)
        source = try c.decode(Source.self, forKey: .source)
        opus = try c.decode(Opus.self, forKey: .opus)
        silence = try c.decode(Silence.self, forKey: .silence)
        levels = try c.decode(Levels.self, forKey: .levels)
        speakers = try SpeakerAnalysis.decodeFlat(from: c, speakers: .speakers, overtalk: .overtalkMs, deadAir: .deadAirMs)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(uniqueid, forKey: .uniqueid)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(samples, forKey: .samples)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(channels, forKey: .channels)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(source, forKey: .source)
        try c.encode(opus, forKey: .opus)
        try c.encode(silence, forKey: .silence)
        try c.encode(levels, forKey: .levels)
        try speakers.encodeFlat(to: &c, speakers: .speakers, overtalk: .overtalkMs, deadAir: .deadAirMs, talkRatio: .talkRatio)
    }

    public init(_ r: TranscodeResult) {
        uniqueid = r.tags.uniqueid
        startedAt = RecordingTags.iso(r.startedAt)
        samples = r.measurements.samples
        sampleRate = r.measurements.sampleRate
        channels = r.measurements.channels
        durationMs = r.measurements.durationMs
        source = Source(format: r.source.format.name, bytes: r.source.bytes, sha256: r.sourceSHA256, recoveredHeader: r.source.recoveredHeader,
            lengthDisagreement: r.source.lengthDisagreement)
        opus = Opus(bytes: r.opus.bytes, bitrate: r.bitrate, sha256: r.opus.sha256)
        silence = r.measurements.silence
        levels = r.measurements.levels
        speakers = r.measurements.speakers
    }
}

extension JSONEncoder {
    /// Sorted keys, no escaped slashes: stable output for people and diffs.
    public static var callrec: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
