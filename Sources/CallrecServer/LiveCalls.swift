import CallrecCatalog
import CallrecIngest
import Foundation
import ServiceLifecycle

/// A call being recorded now, as `GET /calls/live` shows it.
public struct LiveCall: Sendable, Equatable, Encodable {
    public var uniqueid: String
    public var company: String?
    public var agent: String?
    public var leadNumber: String?
    public var startedAt: Date
    public var durationMs: Int
    public var updatedAt: Date
    /// A PCI pause is on (known from AMI only; false without it).
    public var paused: Bool

    public init(
        uniqueid: String, company: String? = nil, agent: String? = nil, leadNumber: String? = nil, startedAt: Date, durationMs: Int, updatedAt: Date,
        paused: Bool = false
    ) {
        self.uniqueid = uniqueid
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.updatedAt = updatedAt
        self.paused = paused
    }

    enum CodingKeys: String, CodingKey {
        case uniqueid, company, agent, leadNumber = "lead_number", startedAt = "started_at", durationMs = "duration_ms", updatedAt = "updated_at", paused
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(uniqueid, forKey: .uniqueid)
        try c.encode(company, forKey: .company)  // null when not known yet
        try c.encode(agent, forKey: .agent)
        try c.encode(leadNumber, forKey: .leadNumber)
        try c.encode(Self.iso(startedAt), forKey: .startedAt)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(Self.iso(updatedAt), forKey: .updatedAt)
        try c.encode(paused, forKey: .paused)
    }

    static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    /// Two sources' facts of one call: what either knows, the earliest start, the latest news.
    func merged(with o: LiveCall) -> LiveCall {
        LiveCall(
            uniqueid: uniqueid, company: company ?? o.company, agent: agent ?? o.agent, leadNumber: leadNumber ?? o.leadNumber,
            startedAt: min(startedAt, o.startedAt), durationMs: max(durationMs, o.durationMs), updatedAt: max(updatedAt, o.updatedAt),
            paused: paused || o.paused)
    }
}

/// The calls being recorded now, fed by any number of sources, each by name: the spool watcher's
/// files still being written (`"spool"`), and later the AMI's facts. A source replaces its own set
/// (or upserts and removes one call); the calls shown are the union, merged by uniqueid. Listeners
/// hear of every change (on the thread of the source that made it: they must not block).
public final class LiveCalls: @unchecked Sendable {
    private let lock = NSLock()
    private var bySource: [String: [String: LiveCall]] = [:]
    private var listeners: [UInt64: @Sendable () -> Void] = [:]
    private var nextListener: UInt64 = 0

    public init() {}

    /// A source's whole set of calls, replacing what it said before.
    public func replace(source: String, with calls: [LiveCall]) {
        var set: [String: LiveCall] = [:]
        for c in calls { set[c.uniqueid] = set[c.uniqueid].map { $0.merged(with: c) } ?? c }
        change {
            if (bySource[source] ?? [:]) == set { return false }
            bySource[source] = set.isEmpty ? nil : set
            return true
        }
    }

    public func upsert(source: String, _ call: LiveCall) {
        change {
            if bySource[source]?[call.uniqueid] == call { return false }
            bySource[source, default: [:]][call.uniqueid] = call
            return true
        }
    }

    public func remove(source: String, uniqueid: String) {
        change { bySource[source]?.removeValue(forKey: uniqueid) != nil }
    }

    /// Every call being recorded now, oldest first.
    public func current() -> [LiveCall] {
        lock.lock()
        var merged: [String: LiveCall] = [:]
        for (_, set) in bySource.sorted(by: { $0.key < $1.key }) {
            for (id, c) in set { merged[id] = merged[id].map { $0.merged(with: c) } ?? c }
        }
        lock.unlock()
        return merged.values.sorted { ($0.startedAt, $0.uniqueid) < ($1.startedAt, $1.uniqueid) }
    }

    /// Calls `f` after every change until the returned token is passed to `unlisten`.
    public func listen(_ f: @escaping @Sendable () -> Void) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        nextListener += 1
        listeners[nextListener] = f
        return nextListener
    }

    public func unlisten(_ token: UInt64) {
        lock.lock()
        listeners[token] = nil
        lock.unlock()
    }

    private func change(_ f: () -> Bool) {
        lock.lock()
        let changed = f()
        let ls = changed ? Array(listeners.values) : []
        lock.unlock()
        for l in ls { l() }
    }
}

/// Feeds `LiveCalls` from the spool: every second, the files MixMonitor is still writing, with
/// their duration read from their size (the format's byte rate), else from the time since the
/// call started.
struct SpoolLiveFeed: Service {
    let watcher: SpoolWatcher
    let live: LiveCalls
    let interval: Duration

    static let source = "spool"

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            live.replace(source: Self.source, with: Self.calls(watcher.writing()))
            try? await Task.sleep(for: interval)
        }
        live.replace(source: Self.source, with: [])
    }

    static func calls(_ files: [SpoolWatcher.Writing]) -> [LiveCall] {
        files.compactMap { f in
            guard let name = f.name else { return nil }
            let started = startTime(uniqueid: name.uniqueid) ?? f.firstSeen
            let rate = bytesPerSecond(ext: name.ext)
            let ms = rate.map { r in Int(Double(max(0, f.bytes - r.header)) / r.perSecond * 1000) }
                ?? Int(max(0, f.modified.timeIntervalSince(started)) * 1000)
            return LiveCall(
                uniqueid: name.uniqueid, company: name.metadata.company, agent: name.metadata.agent, leadNumber: name.metadata.leadNumber,
                startedAt: started, durationMs: ms, updatedAt: f.modified)
        }
    }

    /// An Asterisk uniqueid's epoch seconds (`1732467600.42`, `pbx1-1732467600.42`), when plausible.
    static func startTime(uniqueid: String) -> Date? {
        let head = uniqueid.split(separator: ".").first.map(String.init) ?? ""
        let digits = head.split(separator: "-").last.map(String.init) ?? head
        guard let t = Double(digits), t > 946_684_800, t < 4_102_444_800 else { return nil }
        return Date(timeIntervalSince1970: t)
    }

    /// Bytes per second of MixMonitor's formats at 8 kHz (16 kHz for `sln16`/`wav16`), mono.
    static func bytesPerSecond(ext: String) -> (perSecond: Double, header: Int)? {
        switch ext {
        case "wav": return (16000, 44)
        case "wav16": return (32000, 44)
        case "sln", "raw": return (16000, 0)
        case "sln16": return (32000, 0)
        case "ulaw", "alaw", "ul", "al", "pcm", "u", "a": return (8000, 0)
        case "gsm": return (1650, 0)
        case "WAV": return (1625, 60)  // wav49: GSM in WAV
        default: return nil
        }
    }
}
