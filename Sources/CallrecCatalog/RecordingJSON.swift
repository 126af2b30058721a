import CallrecMedia
import Foundation

/// The contract's JSON for one recording (`show --json`, `GET /recordings/<uniqueid>`, webhooks).
public struct RecordingJSON: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var format: String
        public var bytes: Int
        public var sha256: String
    }
    public typealias Opus = MediaReport.Opus

    public var uniqueid: String
    public var company: String?
    public var agent: String?
    public var leadNumber: String?
    public var startedAt: String
    public var samples: Int
    public var sampleRate: Int
    public var channels: Int
    public var durationMs: Int
    public var source: Source
    public var opus: Opus
    public var silence: Silence
    public var levels: Levels
    public var legalHold: Bool
    /// How many source files (MixMonitor `a` appends, `r()`/`t()` legs, a verified mix) the
    /// recording was made of.
    public var parts: Int
    /// From AMI (`AMIFacts`): empty lists and nulls when AMI did not see the call.
    public var pauses: [AMIFacts.Pause]?
    public var gaps: [AMIFacts.Gap]?
    public var answeredAt: String?
    public var endedAt: String?
    public var hangupCause: Int?
    /// Two-channel recordings: who talked when; `speakers`, `overtalk_ms`, `dead_air_ms` and
    /// `talk_ratio` in the JSON, each null for mono.
    public var speakers: SpeakerAnalysis?
    /// `read`/`write`: a mono recording made of one r()/t() leg whose partner never arrived.
    public var loneLeg: String?

    enum CodingKeys: String, CodingKey {
        case uniqueid, company, agent, leadNumber = "lead_number", startedAt = "started_at", samples
        case sampleRate = "sample_rate", channels, durationMs = "duration_ms", source, opus, silence, levels
        case legalHold = "legal_hold", parts, pauses, gaps, answeredAt = "answered_at", endedAt = "ended_at", hangupCause = "hangup_cause"
        case speakers, overtalkMs = "overtalk_ms", deadAirMs = "dead_air_ms", talkRatio = "talk_ratio", loneLeg = "lone_leg"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        uniqueid = try c.decode(String.self, forKey: .uniqueid)
        company = try c.decodeIfPresent(String.self, forKey: .company)
        agent = try c.decodeIfPresent(String.self, forKey: .agent)
        leadNumber = try c.decodeIfPresent(String.self, forKey: .leadNumber)
        startedAt = try c.decode(String.self, forKey: .startedAt)
        samples = try c.decode(Int.self, forKey: .samples)
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        channels = try c.decode(Int.self, forKey: .channels)
        durationMs = try c.decode(Int.self, forKey: .durationMs)
        source = try c.decode(Source.self, forKey: .source)
        opus = try c.decode(Opus.self, forKey: .opus)
        silence = try c.decode(Silence.self, forKey: .silence)
        levels = try c.decode(Levels.self, forKey: .levels)
        legalHold = try c.decode(Bool.self, forKey: .legalHold)
        parts = try c.decode(Int.self, forKey: .parts)
        speakers = try SpeakerAnalysis.decodeFlat(from: c, speakers: .speakers, overtalk: .overtalkMs, deadAir: .deadAirMs)
        loneLeg = try c.decodeIfPresent(String.self, forKey: .loneLeg)
        pauses = try c.decodeIfPresent([AMIFacts.Pause].self, forKey: .pauses)
        gaps = try c.decodeIfPresent([AMIFacts.Gap].self, forKey: .gaps)
        answeredAt = try c.decodeIfPresent(String.self, forKey: .answeredAt)
        endedAt = try c.decodeIfPresent(String.self, forKey: .endedAt)
        hangupCause = try c.decodeIfPresent(Int.self, forKey: .hangupCause)
    }

    public init(_ row: RecordingRow) {
        uniqueid = row.uniqueid
        company = row.company
        agent = row.agent
        leadNumber = row.leadNumber
        startedAt = RecordingTags.iso(row.startedAtDate)
        samples = row.samples
        sampleRate = row.sampleRate
        channels = row.channels
        durationMs = row.durationMs
        source = Source(format: row.sourceFormat, bytes: row.sourceBytes, sha256: row.sourceSHA256)
        opus = Opus(bytes: row.opusBytes, bitrate: row.opusBitrate, sha256: row.opusSHA256)
        silence = (try? JSONDecoder().decode(Silence.self, from: Data(row.silence.utf8)))
            ?? Silence(thresholdDBFS: -40, minMs: 500, totalMs: 0, ratio: 0, longestMs: 0, leadingMs: 0, trailingMs: 0, segments: [])
        levels = Levels(peakDBFS: row.peakDBFS, rmsDBFS: row.rmsDBFS, clippedSamples: row.clippedSamples)
        legalHold = row.legalHold
        self.parts = row.parts
        if let ami = AMIFacts.decode(row.ami) {
            if let exact = ami.startedAt { startedAt = exact }
            pauses = ami.pauses
            gaps = ami.gaps
            answeredAt = ami.answeredAt
            endedAt = ami.endedAt
            hangupCause = ami.hangupCause
        }
        speakers = row.speakerAnalysis
        loneLeg = row.loneLeg
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(uniqueid, forKey: .uniqueid)
        try c.encode(company, forKey: .company)  // null when unknown, never absent
        try c.encode(agent, forKey: .agent)
        try c.encode(leadNumber, forKey: .leadNumber)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(samples, forKey: .samples)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(channels, forKey: .channels)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(source, forKey: .source)
        try c.encode(opus, forKey: .opus)
        try c.encode(silence, forKey: .silence)
        try c.encode(levels, forKey: .levels)
        try c.encode(legalHold, forKey: .legalHold)
        try c.encode(parts, forKey: .parts)
        try c.encode(pauses ?? [], forKey: .pauses)
        try c.encode(gaps ?? [], forKey: .gaps)
        try c.encode(answeredAt, forKey: .answeredAt)
        try c.encode(endedAt, forKey: .endedAt)
        try c.encode(hangupCause, forKey: .hangupCause)
        try speakers.encodeFlat(to: &c, speakers: .speakers, overtalk: .overtalkMs, deadAir: .deadAirMs, talkRatio: .talkRatio)
        try c.encode(loneLeg, forKey: .loneLeg)
    }
}
