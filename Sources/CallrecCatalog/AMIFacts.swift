import CallrecMedia
import Foundation

/// What Asterisk's Manager Interface said about a recorded call, put on the recording's timeline
/// at ingest (stored as JSON in `recording.ami`): shown in the recording's JSON, the export
/// manifest and the webhooks.
public struct AMIFacts: Codable, Sendable, Equatable {
    /// A PCI pause (MixMonitorMute): where it is in the recording, who asked and when.
    public struct Pause: Codable, Sendable, Equatable {
        public var startMs: Int
        public var endMs: Int
        /// The principal that asked (`sub` of its token); null for a mute callrec did not ask for.
        public var by: String?
        public var requestedAt: String?
        /// Who ended it: a principal, `max_pause` (resumed by callrec after CALLREC_MAX_PAUSE),
        /// `hangup`, or `asterisk` (an unmute callrec did not ask for).
        public var endedBy: String?
        /// Whether the audio holds exact zeros there, as a PCM mute does; null when the source is
        /// not PCM (GSM's mute decodes to near-silence, not zeros).
        public var zeros: Bool?

        public init(startMs: Int, endMs: Int, by: String?, requestedAt: String?, endedBy: String?, zeros: Bool?) {
            self.startMs = startMs
            self.endMs = endMs
            self.by = by
            self.requestedAt = requestedAt
            self.endedBy = endedBy
            self.zeros = zeros
        }

        enum CodingKeys: String, CodingKey {
            case startMs = "start_ms", endMs = "end_ms", by, requestedAt = "requested_at", endedBy = "ended_by", zeros
        }

        /// Every key, null when unknown (never absent).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(startMs, forKey: .startMs)
            try c.encode(endMs, forKey: .endMs)
            try c.encode(by, forKey: .by)
            try c.encode(requestedAt, forKey: .requestedAt)
            try c.encode(endedBy, forKey: .endedBy)
            try c.encode(zeros, forKey: .zeros)
        }
    }

    /// Time of the call that is not in the file: at `atMs` of the recording, `lostMs` went missing.
    public struct Gap: Codable, Sendable, Equatable {
        public var atMs: Int
        public var lostMs: Int
        /// `not_bridged` (MixMonitor's `b` option drops what is not bridged), or `unexplained`
        /// (frames neither side sent, `MuteAudio`, …: where is not known, so at the end).
        public var why: String

        public init(atMs: Int, lostMs: Int, why: String) {
            self.atMs = atMs
            self.lostMs = lostMs
            self.why = why
        }

        enum CodingKeys: String, CodingKey { case atMs = "at_ms", lostMs = "lost_ms", why }
    }

    /// MixMonitorStart, to the millisecond.
    public var startedAt: String?
    public var answeredAt: String?
    public var endedAt: String?
    public var hangupCause: Int?
    public var caller: String?
    public var connected: String?
    public var pauses: [Pause]
    public var gaps: [Gap]

    public init(
        startedAt: String?, answeredAt: String?, endedAt: String?, hangupCause: Int?, caller: String?, connected: String?, pauses: [Pause], gaps: [Gap]
    ) {
        self.startedAt = startedAt
        self.answeredAt = answeredAt
        self.endedAt = endedAt
        self.hangupCause = hangupCause
        self.caller = caller
        self.connected = connected
        self.pauses = pauses
        self.gaps = gaps
    }

    enum CodingKeys: String, CodingKey {
        case startedAt = "started_at", answeredAt = "answered_at", endedAt = "ended_at", hangupCause = "hangup_cause"
        case caller, connected, pauses, gaps
    }

    /// `2026-11-24T17:00:00.880Z`: an Asterisk timestamp to the millisecond.
    public static func iso(_ seconds: Double) -> String {
        let ms = Int64((seconds * 1000).rounded(.down))
        let whole = Date(timeIntervalSince1970: TimeInterval(ms / 1000))
        let base = String(RecordingTags.iso(whole).dropLast())
        let frac = Int(ms % 1000)
        return base + "." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)Z"
    }

    public var json: String { String(decoding: (try? JSONEncoder.callrec.encode(self)) ?? Data("{}".utf8), as: UTF8.self) }

    public static func decode(_ s: String?) -> AMIFacts? {
        s.flatMap { try? JSONDecoder().decode(AMIFacts.self, from: Data($0.utf8)) }
    }
}
