import Foundation
import GRDB

extension Catalog {
    /// One recording by uniqueid, through a cached prepared statement (compiling the query each
    /// time was 14% of serving an audio range, measured with perf).
    public func recording(_ uniqueid: String) throws -> RecordingRow? {
        try reading { try Self.recording($0, uniqueid) }
    }

    /// `recording(_:)` on GRDB's reader queue, never on the caller's thread (an event loop, for the server).
    public func find(_ uniqueid: String) async throws -> RecordingRow? {
        try await pool.read { try Self.recording($0, uniqueid) }
    }

    static func recording(_ db: Database, _ uniqueid: String) throws -> RecordingRow? {
        let statement = try db.cachedStatement(sql: "SELECT * FROM recording WHERE uniqueid = ?")
        return try RecordingRow.fetchOne(statement, arguments: [uniqueid])
    }

    /// Metadata registered for a call whose audio has not arrived (nil when none, or when the
    /// recording exists).
    public func pendingMetadata(_ uniqueid: String) async throws -> Metadata? {
        try await pool.read { db in
            guard try RecordingRow.exists(db, key: uniqueid) == false else { return nil }
            return try MetadataRow.fetchOne(db, key: uniqueid)?.metadata
        }
    }

    public func parts(of uniqueid: String) throws -> [SourcePartRow] {
        try reading {
            try SourcePartRow.filter(Column("uniqueid") == uniqueid).order(Column("part")).fetchAll($0)
        }
    }

    public func metadata(for uniqueid: String) throws -> Metadata? {
        try reading { try MetadataRow.fetchOne($0, key: uniqueid)?.metadata }
    }

    /// Records metadata for a call, before or after its audio; fields left nil keep their current
    /// values, whatever their origin (the spool path, an earlier PUT, the audio's tags).
    @discardableResult
    public func setMetadata(_ uniqueid: String, _ m: Metadata, now: Date = Date()) throws -> Metadata {
        let merged = try writing { db in try Self.setMetadata(db, uniqueid, MetadataPatch(m), now: now, check: { _ in }, audit: nil).metadata }
        changes.notify([uniqueid])
        return merged
    }

    /// Applies a patch in one transaction: `check` sees the call's current metadata (the
    /// recording's if it exists, else what was registered before the audio, else nil) and may
    /// refuse; the audit entry is written in the same transaction as the change.
    public func setMetadata(
        _ uniqueid: String, _ patch: MetadataPatch, now: Date, check: @escaping @Sendable (Metadata?) throws -> Void, audit: AuditEntry?
    ) async throws -> (metadata: Metadata, recording: RecordingRow?) {
        let result = try await pool.write { db in try Self.setMetadata(db, uniqueid, patch, now: now, check: check, audit: audit) }
        changes.notify([uniqueid])
        return result
    }

    static func setMetadata(
        _ db: Database, _ uniqueid: String, _ patch: MetadataPatch, now: Date, check: (Metadata?) throws -> Void, audit: AuditEntry?
    ) throws -> (metadata: Metadata, recording: RecordingRow?) {
        let recording = try RecordingRow.fetchOne(db, key: uniqueid)
        let registered = try MetadataRow.fetchOne(db, key: uniqueid)?.metadata
        let current = recording.map { Metadata(company: $0.company, agent: $0.agent, leadNumber: $0.leadNumber) } ?? registered
        try check(current)
        let merged = patch.applied(to: current ?? Metadata())
        let at = Int64(now.timeIntervalSince1970)
        try MetadataRow(uniqueid: uniqueid, company: merged.company, agent: merged.agent, leadNumber: merged.leadNumber, updatedAt: at).save(db)
        var updated = recording
        if var row = recording {
            row.company = merged.company
            row.agent = merged.agent
            row.leadNumber = merged.leadNumber
            row.updatedAt = at
            try row.update(db)
            updated = row
        }
        if var e = audit { try e.insert(db) }
        return (merged, updated)
    }

    /// Commits an ingested (or re-made, after an append) recording in one transaction: its row,
    /// its source parts and its waveform. A legal hold and the first ingest time survive.
    /// The waveform's JSON is written into its row in pieces (`saveWaveform`), never whole in
    /// memory; any failure on the way, in the middle of the JSON too, leaves the catalog as it was.
    public func commit(recording: RecordingRow, parts: [SourcePartRow], waveform: some StreamedBlob) throws {
        try writing { db in
            var row = recording
            if let old = try RecordingRow.fetchOne(db, key: row.uniqueid) {
                row.legalHold = old.legalHold
                row.holdReason = old.holdReason
                row.holdBy = old.holdBy
                row.holdAt = old.holdAt
                row.ingestedAt = old.ingestedAt
            }
            try db.execute(sql: "DELETE FROM tombstone WHERE uniqueid = ?", arguments: [row.uniqueid])
            try row.save(db)
            try SourcePartRow.filter(Column("uniqueid") == row.uniqueid).deleteAll(db)
            for p in parts { try p.insert(db) }
            try Self.saveWaveform(db, uniqueid: row.uniqueid, json: waveform)
            try recordEvent(db, type: .recordingReady, uniqueid: row.uniqueid, key: "recording", object: try Self.recordingObject(row), now: Date())
        }
        changes.notify([recording.uniqueid])
    }

    public func quarantine(_ row: QuarantineRow) throws {
        var row = row
        try writing { try row.insert($0) }
    }

    public func quarantined() throws -> [QuarantineRow] {
        try reading { try QuarantineRow.order(Column("id")).fetchAll($0) }
    }

    public func waveform(_ uniqueid: String) throws -> Data? {
        try reading { try WaveformRow.fetchOne($0, key: uniqueid)?.json }
    }

    public func waveform(_ uniqueid: String) async throws -> Data? {
        try await pool.read { try WaveformRow.fetchOne($0, key: uniqueid)?.json }
    }

    public func count() throws -> Int {
        try reading { try RecordingRow.fetchCount($0) }
    }

    public func count() async throws -> Int {
        try await pool.read { try RecordingRow.fetchCount($0) }
    }

    /// Every recording's uniqueid and audio path (for start-up recovery and verify).
    public func allAudioPaths() throws -> [String: String] {
        try reading { db in
            var out: [String: String] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT uniqueid, opus_path FROM recording")
            while let r = try rows.next() { out[r[0]] = r[1] }
            return out
        }
    }
}

/// A page of `list`: recordings in start order.
public struct ListQuery: Sendable, Equatable {
    public var from: Date?
    public var to: Date?
    public var company: String?
    public var agent: String?
    public var leadNumber: String?
    public var limit: Int
    public var cursor: String?
    /// Only recordings at least this long (milliseconds).
    public var minDurationMs: Int?
    /// Only recordings under legal hold.
    public var heldOnly = false
    /// Two-channel filters (a mono recording has none of these figures, so matches none of them).
    public var minOvertalkMs: Int?
    public var minDeadAirMs: Int?
    public var minTalkRatio: Double?
    public var maxTalkRatio: Double?
    /// 1 or 2.
    public var channels: Int?

    public init(from: Date? = nil, to: Date? = nil, company: String? = nil, agent: String? = nil, leadNumber: String? = nil, limit: Int = 100, cursor: String? = nil) {
        self.from = from
        self.to = to
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
        self.limit = limit
        self.cursor = cursor
    }
}

public struct Page: Sendable {
    public var items: [RecordingRow]
    /// Opaque; pass it back as `cursor` for the next page; nil on the last page.
    public var nextCursor: String?
}

extension Catalog {
    public static let maxPageSize = 1000

    public func list(_ q: ListQuery) throws -> Page {
        try reading { try Self.list($0, q) }
    }

    /// A page, turned into `T` on GRDB's reader queue (the server encodes its JSON there, so a
    /// thousand rows are never encoded on an event loop).
    public func list<T: Sendable>(_ q: ListQuery, _ transform: @escaping @Sendable (Page) throws -> T) async throws -> T {
        try await pool.read { try transform(try Self.list($0, q)) }
    }

    static func list(_ db: Database, _ q: ListQuery) throws -> Page {
        let limit = max(1, min(q.limit, Self.maxPageSize))
        var (sql, args) = Self.filters(q, select: "*")
        if let cursor = q.cursor {
            guard let (t, id) = Self.decodeCursor(cursor) else { throw CatalogError("invalid cursor") }
            sql += " AND (started_at, uniqueid) > (?, ?)"
            args += [t, id]
        }
        sql += " ORDER BY started_at, uniqueid LIMIT ?"
        args.append(limit + 1)
        let rows = try RecordingRow.fetchAll(db, sql: sql, arguments: StatementArguments(args))
        let items = Array(rows.prefix(limit))
        let next = rows.count > limit ? items.last.map { Self.encodeCursor($0.startedAt, $0.uniqueid) } : nil
        return Page(items: items, nextCursor: next)
    }

    /// How many recordings a query matches (its cursor and limit aside).
    public func count(_ q: ListQuery) throws -> Int {
        let (sql, args) = Self.filters(q, select: "COUNT(*)")
        return try reading { try Int.fetchOne($0, sql: sql, arguments: StatementArguments(args)) ?? 0 }
    }

    /// How many recordings a query matches and their stored bytes (to size an export).
    public func footprint(_ q: ListQuery) async throws -> (count: Int, bytes: Int) {
        try await pool.read { db in
            let (sql, args) = Self.filters(q, select: "COUNT(*), COALESCE(SUM(opus_bytes), 0)")
            let row = try Row.fetchOne(db, sql: sql, arguments: StatementArguments(args))
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    /// `SELECT <select> FROM recording WHERE …` for the query's time range and filters.
    static func filters(_ q: ListQuery, select: String) -> (String, [any DatabaseValueConvertible]) {
        var sql = "SELECT \(select) FROM recording WHERE 1"
        var args: [any DatabaseValueConvertible] = []
        if let from = q.from { sql += " AND started_at >= ?"; args.append(Int64(from.timeIntervalSince1970.rounded(.up))) }
        if let to = q.to { sql += " AND started_at < ?"; args.append(Int64(to.timeIntervalSince1970.rounded(.up))) }
        if let c = q.company { sql += " AND company = ?"; args.append(c) }
        if let a = q.agent { sql += " AND agent = ?"; args.append(a) }
        if let l = q.leadNumber { sql += " AND lead_number = ?"; args.append(l) }
        // Checked on the rows the index above yields (in start order), no index of their own: a
        // held or long call is not rare enough for one to pay its writes.
        if let d = q.minDurationMs { sql += " AND duration_ms >= ?"; args.append(d) }
        if q.heldOnly { sql += " AND legal_hold = 1" }
        if let v = q.minOvertalkMs { sql += " AND overtalk_ms >= ?"; args.append(v) }
        if let v = q.minDeadAirMs { sql += " AND dead_air_ms >= ?"; args.append(v) }
        if let v = q.minTalkRatio { sql += " AND talk_ratio >= ?"; args.append(v) }
        if let v = q.maxTalkRatio { sql += " AND talk_ratio <= ?"; args.append(v) }
        if let v = q.channels { sql += " AND channels = ?"; args.append(v) }
        return (sql, args)
    }

    static func encodeCursor(_ t: Int64, _ id: String) -> String {
        Data("v1:\(t):\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ s: String) -> (Int64, String)? {
        var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        guard let d = Data(base64Encoded: b), let text = String(data: d, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let t = Int64(parts[1]) else { return nil }
        return (t, String(parts[2]))
    }
}
