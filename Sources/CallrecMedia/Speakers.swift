import Foundation

/// Which party a channel of a two-channel recording holds.
public enum SpeakerRole: String, Codable, Sendable, Equatable, CaseIterable {
    case agent, customer

    public var other: SpeakerRole { self == .agent ? .customer : .agent }

    /// `CALLREC_RECORDED_ROLE` (`agent` or `customer`, default `agent`): the role of channel 0, the
    /// audio read from the recorded channel.
    public static func recorded(fromEnvironment env: [String: String] = ProcessInfo.processInfo.environment) throws -> SpeakerRole {
        guard let s = env["CALLREC_RECORDED_ROLE"], !s.isEmpty else { return .agent }
        guard let r = SpeakerRole(rawValue: s) else {
            throw MediaError(.unsupported, "CALLREC_RECORDED_ROLE must be agent or customer, not '\(s)'")
        }
        return r
    }
}

/// One channel of a two-channel recording, as the contract's `speakers` array has it.
public struct Speaker: Codable, Sendable, Equatable {
    public var channel: Int
    public var role: SpeakerRole
    /// Non-silent 20 ms windows of this channel alone, in ms.
    public var talkMs: Int
    /// The longest turn: talk windows joined across silences shorter than the silence minimum.
    public var longestTalkMs: Int
    /// Turns this channel started while the other was talking (in a turn at least `debounceMs` old),
    /// that lasted at least `debounceMs`.
    public var interruptions: Int
    /// Spans of exact digital zeros of at least 20 ms, [start_ms, end_ms].
    public var zeroRuns: [[Int]]
    public var peakDBFS: Double?
    public var rmsDBFS: Double?

    public init(
        channel: Int, role: SpeakerRole, talkMs: Int, longestTalkMs: Int, interruptions: Int, zeroRuns: [[Int]], peakDBFS: Double?, rmsDBFS: Double?
    ) {
        self.channel = channel
        self.role = role
        self.talkMs = talkMs
        self.longestTalkMs = longestTalkMs
        self.interruptions = interruptions
        self.zeroRuns = zeroRuns
        self.peakDBFS = peakDBFS
        self.rmsDBFS = rmsDBFS
    }

    enum CodingKeys: String, CodingKey {
        case channel, role, talkMs = "talk_ms", longestTalkMs = "longest_talk_ms", interruptions, zeroRuns = "zero_runs"
        case peakDBFS = "peak_dbfs", rmsDBFS = "rms_dbfs"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(channel, forKey: .channel)
        try c.encode(role, forKey: .role)
        try c.encode(talkMs, forKey: .talkMs)
        try c.encode(longestTalkMs, forKey: .longestTalkMs)
        try c.encode(interruptions, forKey: .interruptions)
        try c.encode(zeroRuns, forKey: .zeroRuns)
        try c.encode(peakDBFS, forKey: .peakDBFS)  // null for a channel of digital silence
        try c.encode(rmsDBFS, forKey: .rmsDBFS)
    }
}

/// Who spoke when, in a two-channel recording.
public struct SpeakerAnalysis: Codable, Sendable, Equatable {
    public var speakers: [Speaker]
    /// Windows where both channels talk, in ms.
    public var overtalkMs: Int
    /// Windows where neither talks, in ms.
    public var deadAirMs: Int

    public init(speakers: [Speaker], overtalkMs: Int, deadAirMs: Int) {
        self.speakers = speakers
        self.overtalkMs = overtalkMs
        self.deadAirMs = deadAirMs
    }

    /// A new turn counts as an interruption only once it has lasted this long (a cough, a click or
    /// a "hm" does not), and only when the other's turn had already lasted this long (two sides
    /// starting together do not interrupt each other).
    public static let debounceMs = 200

    /// The agent's share of all talk (agent talk ÷ (agent + customer talk)), 4 places; nil when
    /// nobody talks.
    public var talkRatio: Double? {
        let agent = speakers.filter { $0.role == .agent }.reduce(0) { $0 + $1.talkMs }
        let all = speakers.reduce(0) { $0 + $1.talkMs }
        guard all > 0 else { return nil }
        return Analyzer.round(Double(agent) / Double(all), 4)
    }

    /// The same figures with channel 0 given `role` (and channel 1 the other).
    public func withRecordedRole(_ role: SpeakerRole) -> SpeakerAnalysis {
        var copy = self
        for i in copy.speakers.indices { copy.speakers[i].role = copy.speakers[i].channel == 0 ? role : role.other }
        return copy
    }

    enum CodingKeys: String, CodingKey { case speakers, overtalkMs = "overtalk_ms", deadAirMs = "dead_air_ms" }
}

/// The per-channel part of the measuring stage for two channels: talk per 20 ms window (the
/// contract's silence rule, on each channel alone), turns, interruptions, overtalk, dead air,
/// digital-zero runs and levels. Constant memory, apart from the zero runs.
struct SpeakerTracker {
    let rate: Int
    let thresholdPower: Double
    let minMs: Int
    let zeroMinFrames: Int

    struct Channel {
        var windowSquares: Double = 0
        var peak: Int32 = 0
        var sumSquares: Double = 0
        var talkMs = 0
        var longestTalkMs = 0
        var interruptions = 0
        var zeroStart: Int? = nil  // first frame of the current run of exact zeros
        var zeroRuns: [[Int]] = []
        // Turns: a turn starts at a talk window after ≥ minMs without talk (or at the start),
        // and goes on across shorter silences.
        var turnStart: Int? = nil  // ms
        var lastTalkEnd = 0  // ms
        var talking = false  // this window
        var turnIsInterruption = false
        var turnCounted = false
    }

    var channels = [Channel(), Channel()]
    var overtalkMs = 0
    var deadAirMs = 0

    init(rate: Int, thresholdPower: Double, minMs: Int) {
        self.rate = rate
        self.thresholdPower = thresholdPower
        self.minMs = minMs
        self.zeroMinFrames = max(1, rate / 50)
    }

    /// One frame (`frame` is its index from 0).
    @inline(__always)
    mutating func sample(_ c: Int, _ s: Int32, frame: Int) {
        let a = abs(s)
        if a > channels[c].peak { channels[c].peak = a }
        let sq = Double(s * s)
        channels[c].sumSquares += sq
        channels[c].windowSquares += sq
        if s == 0 {
            if channels[c].zeroStart == nil { channels[c].zeroStart = frame }
        } else if let z = channels[c].zeroStart {
            closeZeros(c, end: frame, start: z)
        }
    }

    private mutating func closeZeros(_ c: Int, end: Int, start: Int) {
        channels[c].zeroStart = nil
        if end - start >= zeroMinFrames {
            channels[c].zeroRuns.append([Measurements.milliseconds(start, rate: rate), Measurements.milliseconds(end, rate: rate)])
        }
    }

    /// Closes the window of frames [start, end).
    mutating func closeWindow(start: Int, end: Int) {
        let length = end - start
        guard length > 0 else { return }
        let startMs = Measurements.milliseconds(start, rate: rate), endMs = Measurements.milliseconds(end, rate: rate)
        let was = [channels[0].talking, channels[1].talking]
        var now = [false, false]
        for c in 0..<2 {
            now[c] = channels[c].windowSquares / Double(length) >= thresholdPower
            channels[c].windowSquares = 0
        }
        if now[0] && now[1] { overtalkMs += endMs - startMs }
        if !now[0] && !now[1] { deadAirMs += endMs - startMs }
        for c in 0..<2 {
            let other = 1 - c
            channels[c].talking = now[c]
            guard now[c] else { continue }
            channels[c].talkMs += endMs - startMs
            if channels[c].turnStart == nil || startMs - channels[c].lastTalkEnd >= minMs {
                endTurn(c)
                channels[c].turnStart = startMs
                // Started while the other was talking (the window before and this one), in a turn
                // of the other's at least `debounceMs` old: two sides starting together is no interruption.
                channels[c].turnIsInterruption = was[other] && now[other]
                    && channels[other].turnStart.map { startMs - $0 >= SpeakerAnalysis.debounceMs } == true
                channels[c].turnCounted = false
            }
            channels[c].lastTalkEnd = endMs
            if channels[c].turnIsInterruption, !channels[c].turnCounted,
                endMs - channels[c].turnStart! >= SpeakerAnalysis.debounceMs
            {
                channels[c].interruptions += 1
                channels[c].turnCounted = true
            }
        }
    }

    private mutating func endTurn(_ c: Int) {
        if let start = channels[c].turnStart {
            channels[c].longestTalkMs = max(channels[c].longestTalkMs, channels[c].lastTalkEnd - start)
        }
        channels[c].turnStart = nil
    }

    mutating func finish(frames: Int) -> SpeakerAnalysis {
        var speakers: [Speaker] = []
        for c in 0..<2 {
            endTurn(c)
            if let z = channels[c].zeroStart { closeZeros(c, end: frames, start: z) }
            let ch = channels[c]
            speakers.append(Speaker(
                channel: c, role: c == 0 ? .agent : .customer, talkMs: ch.talkMs, longestTalkMs: ch.longestTalkMs,
                interruptions: ch.interruptions, zeroRuns: ch.zeroRuns,
                peakDBFS: ch.peak > 0 ? Analyzer.round(20 * log10(Double(ch.peak) / 32768), 2) : nil,
                rmsDBFS: ch.sumSquares > 0 && frames > 0 ? Analyzer.round(10 * log10(ch.sumSquares / Double(frames) / (32768.0 * 32768.0)), 2) : nil))
        }
        return SpeakerAnalysis(speakers: speakers, overtalkMs: overtalkMs, deadAirMs: deadAirMs)
    }
}

extension SpeakerAnalysis {
    /// Reads the contract's flat fields (`speakers`, `overtalk_ms`, `dead_air_ms`) of a recording's
    /// JSON; nil when `speakers` is null.
    public static func decodeFlat<K: CodingKey>(from c: KeyedDecodingContainer<K>, speakers: K, overtalk: K, deadAir: K) throws -> SpeakerAnalysis? {
        guard let list = try c.decodeIfPresent([Speaker].self, forKey: speakers) else { return nil }
        return SpeakerAnalysis(
            speakers: list, overtalkMs: try c.decodeIfPresent(Int.self, forKey: overtalk) ?? 0,
            deadAirMs: try c.decodeIfPresent(Int.self, forKey: deadAir) ?? 0)
    }
}

extension Optional where Wrapped == SpeakerAnalysis {
    /// Writes the contract's flat fields into a recording's JSON: `speakers`, `overtalk_ms`,
    /// `dead_air_ms` and `talk_ratio`, each `null` for a mono recording (never absent).
    public func encodeFlat<K: CodingKey>(to c: inout KeyedEncodingContainer<K>, speakers: K, overtalk: K, deadAir: K, talkRatio: K) throws {
        try c.encode(self?.speakers, forKey: speakers)
        try c.encode(self?.overtalkMs, forKey: overtalk)
        try c.encode(self?.deadAirMs, forKey: deadAir)
        try c.encode(self?.talkRatio, forKey: talkRatio)
    }
}
