import Foundation
import GRDB

// What Asterisk's Manager Interface told callrec about calls being recorded (CallrecAMI writes
// it), and the PCI pauses asked through `POST /recordings/<uniqueid>/pause`: kept in the catalog
// as they happen, so that a restart of callrec mid-call loses none, and read by the ingest of
// the call's recording to put them on its timeline.

/// One recorded channel as the AMI events showed it. Times are Asterisk's `Timestamp`s (unix
/// seconds with microseconds, the PBX's clock).
public struct CallRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "call"
    public var uniqueid: String
    public var channel: String
    public var linkedid: String?
    /// Newchannel: the channel's creation.
    public var createdAt: Double?
    /// MixMonitorStart: the recording's sample 0.
    public var monitorStartedAt: Double?
    /// The first BridgeEnter: the call was answered and connected.
    public var answeredAt: Double?
    /// Hangup.
    public var endedAt: Double?
    public var hangupCause: Int?
    public var hangupText: String?
    /// The channel's CallerIDNum and ConnectedLineNum (nil for Asterisk's `<unknown>`).
    public var callerNum: String?
    public var connectedNum: String?
    /// MIXMONITOR_FILENAME (`channelvars` in manager.conf).
    public var file: String?
    /// The bridged spans, JSON `[[enter, leave|null], …]`: with MixMonitor's `b` option only
    /// these are in the file.
    public var bridges: String
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case uniqueid, channel, linkedid, createdAt = "created_at", monitorStartedAt = "monitor_started_at"
        case answeredAt = "answered_at", endedAt = "ended_at", hangupCause = "hangup_cause", hangupText = "hangup_text"
        case callerNum = "caller_num", connectedNum = "connected_num", file, bridges, updatedAt = "updated_at"
    }

    public init(uniqueid: String, channel: String) {
        self.uniqueid = uniqueid
        self.channel = channel
        bridges = "[]"
        updatedAt = 0
    }

    /// The bridged spans (leave nil while still bridged).
    public var bridgeSpans: [(enter: Double, leave: Double?)] {
        get {
            let raw = (try? JSONSerialization.jsonObject(with: Data(bridges.utf8))) as? [[Any]] ?? []
            return raw.compactMap { pair in
                guard let e = pair.first as? Double else { return nil }
                return (e, pair.count > 1 ? pair[1] as? Double : nil)
            }
        }
        set {
            let raw: [[Any]] = newValue.map { [$0.enter, $0.leave.map { $0 as Any } ?? NSNull()] }
            bridges = String(decoding: (try? JSONSerialization.data(withJSONObject: raw)) ?? Data("[]".utf8), as: UTF8.self)
        }
    }
}

/// One PCI pause of a call: who asked and when (callrec's clock), and when the mute started and
/// ended (`*_source` "asterisk": the MixMonitorMute event's Timestamp; "callrec": when Asterisk's
/// answer reached callrec, because the event was not seen).
public struct PauseRow: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "call_pause"
    public var id: Int64?
    public var uniqueid: String
    /// The principal that asked; nil for a mute callrec did not ask for (seen only as an event).
    public var by: String?
    public var requestedAt: Double?
    public var startAt: Double
    public var startSource: String
    public var endAt: Double?
    /// Who ended it: a principal, or `max_pause` (CALLREC_MAX_PAUSE), `hangup`, `asterisk`.
    public var endBy: String?
    public var endSource: String?

    enum CodingKeys: String, CodingKey {
        case id, uniqueid, by, requestedAt = "requested_at", startAt = "start_at", startSource = "start_source"
        case endAt = "end_at", endBy = "end_by", endSource = "end_source"
    }

    public init(uniqueid: String, by: String?, requestedAt: Double?, startAt: Double, startSource: String) {
        self.uniqueid = uniqueid
        self.by = by
        self.requestedAt = requestedAt
        self.startAt = startAt
        self.startSource = startSource
    }

    public var isOpen: Bool { endAt == nil }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    static func migrateAMI(_ db: Database) throws {
        try db.create(table: "call") { t in
            t.primaryKey("uniqueid", .text)
            t.column("channel", .text).notNull()
            t.column("linkedid", .text)
            t.column("created_at", .double)
            t.column("monitor_started_at", .double)
            t.column("answered_at", .double)
            t.column("ended_at", .double)
            t.column("hangup_cause", .integer)
            t.column("hangup_text", .text)
            t.column("caller_num", .text)
            t.column("connected_num", .text)
            t.column("file", .text)
            t.column("bridges", .text).notNull().defaults(to: "[]")
            t.column("updated_at", .integer).notNull()
        }
        try db.create(index: "call_live", on: "call", columns: ["ended_at"])
        try db.create(table: "call_pause") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("uniqueid", .text).notNull()
            t.column("by", .text)
            t.column("requested_at", .double)
            t.column("start_at", .double).notNull()
            t.column("start_source", .text).notNull()
            t.column("end_at", .double)
            t.column("end_by", .text)
            t.column("end_source", .text)
        }
        try db.create(index: "call_pause_uniqueid", on: "call_pause", columns: ["uniqueid", "id"])
        // The call facts as put on the recording's timeline at ingest (JSON; null: AMI did not see the call).
        try db.alter(table: "recording") { t in t.add(column: "ami", .text) }
    }

    // MARK: calls

    /// Records what the events said about a call (insert or replace).
    public func saveCall(_ row: CallRow) async throws {
        try await pool.write { db in try row.save(db) }
    }

    public func call(_ uniqueid: String) throws -> CallRow? {
        try reading { try CallRow.fetchOne($0, key: uniqueid) }
    }

    /// Calls not seen to end, for the tracker after a restart.
    public func unfinishedCalls() async throws -> [CallRow] {
        try await pool.read { try CallRow.filter(Column("ended_at") == nil).fetchAll($0) }
    }

    /// Forgets what AMI said about a call whose recording is catalogued, or that ended long ago.
    public func forgetCalls(endedBefore: Double) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM call_pause WHERE uniqueid IN (SELECT uniqueid FROM call WHERE ended_at < ?)", arguments: [endedBefore])
            try db.execute(sql: "DELETE FROM call WHERE ended_at < ?", arguments: [endedBefore])
        }
    }

    static func forgetCall(_ db: Database, _ uniqueid: String) throws {
        try db.execute(sql: "DELETE FROM call_pause WHERE uniqueid = ?", arguments: [uniqueid])
        try db.execute(sql: "DELETE FROM call WHERE uniqueid = ?", arguments: [uniqueid])
    }

    /// An erasure: the calls where `number` was a party.
    static func forgetCalls(_ db: Database, number: String) throws {
        let ids = try String.fetchAll(db, sql: "SELECT uniqueid FROM call WHERE caller_num = ? OR connected_num = ?", arguments: [number, number])
        for id in ids { try forgetCall(db, id) }
    }

    // MARK: pauses

    public func pauses(of uniqueid: String) throws -> [PauseRow] {
        try reading { try PauseRow.filter(Column("uniqueid") == uniqueid).order(Column("id")).fetchAll($0) }
    }

    public func pausesAsync(of uniqueid: String) async throws -> [PauseRow] {
        try await pool.read { try PauseRow.filter(Column("uniqueid") == uniqueid).order(Column("id")).fetchAll($0) }
    }

    /// Open pauses of every call, for the auto-resume timers after a restart.
    public func openPauses() async throws -> [PauseRow] {
        try await pool.read { try PauseRow.filter(Column("end_at") == nil).order(Column("id")).fetchAll($0) }
    }

    static func lastPause(_ db: Database, _ uniqueid: String) throws -> PauseRow? {
        try PauseRow.filter(Column("uniqueid") == uniqueid).order(Column("id").desc).fetchOne(db)
    }

    /// A pause Asterisk confirmed for `by`: the call's open pause if it has one (a repeated
    /// request, or one whose event came first: it gets its requester), else a new one. Never two
    /// open pauses for a call. `created` is false when it was already open.
    public func confirmPause(_ uniqueid: String, by: String, requestedAt: Double, confirmedAt: Double) async throws -> (PauseRow, created: Bool) {
        try await pool.write { db in
            if var open = try Self.lastPause(db, uniqueid), open.isOpen {
                if open.by == nil {
                    open.by = by
                    open.requestedAt = requestedAt
                    try open.update(db)
                }
                return (open, false)
            }
            var row = PauseRow(uniqueid: uniqueid, by: by, requestedAt: requestedAt, startAt: confirmedAt, startSource: "callrec")
            try row.insert(db)
            return (row, true)
        }
    }

    /// Ends the call's open pause (`endBy`: a principal, `max_pause`, `hangup`); when the unmute
    /// event came first and closed it (`claimClosed`: a pause was open when the request began),
    /// names who asked. Nil when no pause was open.
    @discardableResult
    public func endPause(_ uniqueid: String, by endBy: String, at: Double, source: String, claimClosed: Bool = false) async throws -> PauseRow? {
        try await pool.write { db in
            guard var last = try Self.lastPause(db, uniqueid) else { return nil }
            if last.isOpen {
                last.endAt = at
                last.endBy = endBy
                last.endSource = source
                try last.update(db)
                return last
            }
            if claimClosed, last.endBy == "asterisk" {
                last.endBy = endBy
                try last.update(db)
                return last
            }
            return nil
        }
    }

    /// A MixMonitorMute event (state on/off at Asterisk's `at`): gives the open pause Asterisk's
    /// exact start, or the last ended one its exact end; a mute nobody asked callrec for becomes
    /// a pause by nobody, so that the recording still says where its zeros came from.
    public func noteMute(_ uniqueid: String, on: Bool, at: Double) async throws {
        try await pool.write { db in
            let last = try Self.lastPause(db, uniqueid)
            if on {
                if var open = last, open.isOpen {
                    if open.startSource != "asterisk" {
                        open.startAt = at
                        open.startSource = "asterisk"
                        try open.update(db)
                    }
                } else {
                    var row = PauseRow(uniqueid: uniqueid, by: nil, requestedAt: nil, startAt: at, startSource: "asterisk")
                    try row.insert(db)
                }
            } else if var p = last {
                if p.isOpen {
                    p.endAt = at
                    p.endBy = "asterisk"
                    p.endSource = "asterisk"
                    try p.update(db)
                } else if p.endSource == "callrec" {
                    p.endAt = at
                    p.endSource = "asterisk"
                    try p.update(db)
                }
            }
        }
    }
}
