import CallrecCatalog
import Foundation
import Logging
import NIOConcurrencyHelpers

/// A call being recorded now, as `live()` lists it.
public struct TrackedCall: Sendable, Equatable {
    public var uniqueid: String
    public var channel: String
    public var linkedid: String?
    /// MixMonitorStart (Asterisk's clock).
    public var recordingSince: Date?
    /// The first BridgeEnter; nil while ringing.
    public var answeredAt: Date?
    /// The channel's CallerIDNum and ConnectedLineNum (nil when Asterisk does not know them).
    public var caller: String?
    public var connected: String?
    /// MIXMONITOR_FILENAME, when manager.conf's `channelvars` sends it.
    public var file: String?
    /// A PCI pause (MixMonitorMute) is on.
    public var paused: Bool
}

/// The calls Asterisk is recording, from the AMI events (`Newchannel`, `MixMonitorStart`,
/// `BridgeEnter`/`BridgeLeave`, `MixMonitorMute`, `Hangup`; every event's channel snapshot adds
/// the parties' numbers and MIXMONITOR_FILENAME). What it learns about a recorded channel is
/// written to the catalog in event order (`call`, `call_pause`), off the event loop, so that the
/// recording's ingest finds it and a restarted callrec picks the calls up again (`restore()`).
public final class CallTracker: @unchecked Sendable {
    /// The events the tracker reads: the parser builds no others.
    public static let followed: Set<String> = [
        "Newchannel", "MixMonitorStart", "MixMonitorMute", "MixMonitorStop", "BridgeEnter", "BridgeLeave", "Hangup",
        "NewCallerid", "NewConnectedLine",
    ]

    enum Write: Sendable {
        case call(CallRow)
        case mute(String, on: Bool, at: Double)
        case hangup(String, at: Double)
        case barrier(@Sendable () -> Void)
    }

    private struct State {
        var calls: [String: CallRow] = [:]
        var paused: Set<String> = []
    }
    private let state = NIOLockedValueBox(State())
    let catalog: Catalog?
    let logger: Logger
    private let writes: AsyncStream<Write>.Continuation
    private let writer: Task<Void, Never>
    /// Told when a call ends (the pause service stops its auto-resume timer).
    public var onEnded: (@Sendable (String) -> Void)?

    public init(catalog: Catalog?, logger: Logger) {
        self.catalog = catalog
        self.logger = logger
        let (stream, continuation) = AsyncStream<Write>.makeStream()
        writes = continuation
        writer = Task { [catalog, logger] in
            for await w in stream {
                if case .barrier(let done) = w {
                    done()
                    continue
                }
                guard let catalog else { continue }
                do {
                    switch w {
                    case .call(let row): try await catalog.saveCall(row)
                    case .mute(let id, let on, let at): try await catalog.noteMute(id, on: on, at: at)
                    case .hangup(let id, let at): try await catalog.endPause(id, by: "hangup", at: at, source: "asterisk")
                    case .barrier: break
                    }
                } catch {
                    logger.error("cannot record an AMI fact in the catalog", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    deinit {
        writes.finish()
    }

    /// Waits until every fact handed to the catalog so far is written (tests, shutdown).
    public func flush() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            writes.yield(.barrier { c.resume() })
        }
    }

    /// Takes back the calls a previous run saw start and not end, with their open pauses.
    public func restore() async throws {
        guard let catalog else { return }
        let calls = try await catalog.unfinishedCalls()
        let open = Set(try await catalog.openPauses().map(\.uniqueid))
        state.withLockedValue { s in
            for c in calls where s.calls[c.uniqueid] == nil { s.calls[c.uniqueid] = c }
            s.paused.formUnion(open.filter { s.calls[$0] != nil })
        }
        if !calls.isEmpty { logger.notice("AMI: calls taken back from the catalog", metadata: ["calls": "\(calls.count)"]) }
    }

    // MARK: what it knows

    /// The calls being recorded now (MixMonitor started, no hangup seen), oldest first.
    public func live() -> [TrackedCall] {
        state.withLockedValue { s in
            s.calls.values.filter { $0.monitorStartedAt != nil && $0.endedAt == nil }
                .sorted { ($0.monitorStartedAt ?? 0, $0.uniqueid) < ($1.monitorStartedAt ?? 0, $1.uniqueid) }
                .map { Self.live($0, paused: s.paused.contains($0.uniqueid)) }
        }
    }

    /// One call being recorded now, or nil.
    public func live(_ uniqueid: String) -> TrackedCall? {
        state.withLockedValue { s in
            guard let c = s.calls[uniqueid], c.monitorStartedAt != nil, c.endedAt == nil else { return nil }
            return Self.live(c, paused: s.paused.contains(uniqueid))
        }
    }

    public func call(_ uniqueid: String) -> CallRow? { state.withLockedValue { $0.calls[uniqueid] } }

    static func live(_ c: CallRow, paused: Bool) -> TrackedCall {
        TrackedCall(
            uniqueid: c.uniqueid, channel: c.channel, linkedid: c.linkedid, recordingSince: c.monitorStartedAt.map(Date.init(timeIntervalSince1970:)),
            answeredAt: c.answeredAt.map(Date.init(timeIntervalSince1970:)), caller: c.callerNum, connected: c.connectedNum, file: c.file,
            paused: paused)
    }

    func setPaused(_ uniqueid: String, _ on: Bool) {
        state.withLockedValue { s in
            if on { s.paused.insert(uniqueid) } else { s.paused.remove(uniqueid) }
        }
    }

    /// A call that ended while callrec could not see it (after a reconnect, `CoreShowChannels`
    /// no longer lists it): ended now, its open pause with it.
    public func ended(_ uniqueid: String, at: Double) {
        let row = state.withLockedValue { s -> CallRow? in
            guard var c = s.calls.removeValue(forKey: uniqueid) else { return nil }
            s.paused.remove(uniqueid)
            c.endedAt = at
            c.hangupText = c.hangupText ?? "ended while the AMI connection was down"
            return c
        }
        guard let row else { return }
        if row.monitorStartedAt != nil {
            writes.yield(.call(row))
            writes.yield(.hangup(uniqueid, at: at))
        }
        onEnded?(uniqueid)
    }

    /// After a (re)connection: calls it holds that Asterisk no longer has ended while it was away.
    public func reconcile(present: Set<String>, now: Double) {
        let gone = state.withLockedValue { s in s.calls.keys.filter { !present.contains($0) } }
        for id in gone { ended(id, at: now) }
    }

    // MARK: events

    /// One AMI event (on the connection's event loop: quick, no I/O).
    public func handle(_ m: AMIMessage) {
        guard let name = m.event, let uniqueid = m["Uniqueid"], !uniqueid.isEmpty else { return }
        let ts = m["Timestamp"].flatMap(Double.init) ?? Date().timeIntervalSince1970
        var toWrite: [Write] = []
        var endedCall = false
        state.withLockedValue { s in
            var c = s.calls[uniqueid] ?? {
                var row = CallRow(uniqueid: uniqueid, channel: m["Channel"] ?? "")
                row.linkedid = m["Linkedid"]
                return row
            }()
            let wasRecorded = c.monitorStartedAt != nil
            var changed = false
            func set<T: Equatable>(_ kp: WritableKeyPath<CallRow, T>, _ v: T) {
                if c[keyPath: kp] != v {
                    c[keyPath: kp] = v
                    changed = true
                }
            }
            if let ch = m["Channel"], !ch.isEmpty { set(\.channel, ch) }
            if let n = Self.number(m["CallerIDNum"]) { set(\.callerNum, n) }
            if let n = Self.number(m["ConnectedLineNum"]) { set(\.connectedNum, n) }
            if let f = m.channelVariable("MIXMONITOR_FILENAME"), !f.isEmpty { set(\.file, f) }
            switch name {
            case "Newchannel":
                set(\.createdAt, c.createdAt ?? ts)
            case "MixMonitorStart":
                set(\.monitorStartedAt, c.monitorStartedAt ?? ts)
            case "BridgeEnter":
                set(\.answeredAt, c.answeredAt ?? ts)
                var spans = c.bridgeSpans
                if spans.last.map({ $0.leave != nil }) ?? true {
                    spans.append((ts, nil))
                    c.bridgeSpans = spans
                    changed = true
                }
            case "BridgeLeave":
                var spans = c.bridgeSpans
                if let last = spans.last, last.leave == nil {
                    spans[spans.count - 1] = (last.enter, ts)
                    c.bridgeSpans = spans
                    changed = true
                }
            case "MixMonitorMute":
                // Direction read or write mutes half the call: still a pause of what it hides.
                let on = m["State"] == "1"
                if on { s.paused.insert(uniqueid) } else { s.paused.remove(uniqueid) }
                if c.monitorStartedAt != nil { toWrite.append(.mute(uniqueid, on: on, at: ts)) }
            case "Hangup":
                set(\.endedAt, ts)
                set(\.hangupCause, m["Cause"].flatMap { Int($0) })
                set(\.hangupText, m["Cause-txt"])
                var spans = c.bridgeSpans
                if let last = spans.last, last.leave == nil {
                    spans[spans.count - 1] = (last.enter, ts)
                    c.bridgeSpans = spans
                }
                s.paused.remove(uniqueid)
                endedCall = true
            default:
                break
            }
            if endedCall {
                s.calls.removeValue(forKey: uniqueid)
            } else {
                s.calls[uniqueid] = c
            }
            // Only recorded channels go to the catalog: the rest of the PBX's traffic stays in memory.
            if c.monitorStartedAt != nil && (changed || !wasRecorded || endedCall) {
                c.updatedAt = Int64(Date().timeIntervalSince1970)
                toWrite.insert(.call(c), at: 0)
            }
            if endedCall && c.monitorStartedAt != nil { toWrite.append(.hangup(uniqueid, at: ts)) }
        }
        for w in toWrite { writes.yield(w) }
        if endedCall { onEnded?(uniqueid) }
    }

    /// A number Asterisk knows (`<unknown>` and empty are not).
    static func number(_ v: String?) -> String? {
        guard let v, !v.isEmpty, v != "<unknown>" else { return nil }
        return v
    }
}
