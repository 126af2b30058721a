import Foundation
import GRDB

/// What a purge or an erasure removed (or, dry, would remove).
public struct RemovalReport: Codable, Sendable, Equatable {
    public var count = 0
    public var audioSeconds = 0
    public var bytes = 0
    /// Recordings that matched but are under legal hold: kept.
    public var held: [String] = []
    public var uniqueids: [String] = []

    enum CodingKeys: String, CodingKey {
        case count, audioSeconds = "audio_seconds", bytes, held, uniqueids
    }
    public init() {}
}

extension Catalog {
    public func setRetention(company: String, days: Int?) throws {
        try writing { db in
            if let days {
                try db.execute(sql: "INSERT OR REPLACE INTO retention (company, days) VALUES (?, ?)", arguments: [company, days])
            } else {
                try db.execute(sql: "DELETE FROM retention WHERE company = ?", arguments: [company])
            }
        }
    }

    public func retentionOverrides() throws -> [String: Int] {
        try reading { try Self.retentionOverrides($0, company: nil) }
    }

    /// The overrides, or only `company`'s when given (a company-scoped token sees its own only).
    public func retentionOverrides(company: String?) async throws -> [String: Int] {
        try await pool.read { try Self.retentionOverrides($0, company: company) }
    }

    static func retentionOverrides(_ db: Database, company: String?) throws -> [String: Int] {
        let rows = try company.map { try Row.fetchAll(db, sql: "SELECT company, days FROM retention WHERE company = ?", arguments: [$0]) }
            ?? Row.fetchAll(db, sql: "SELECT company, days FROM retention")
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as Int) })
    }

    /// Sets (or, with nil, clears) a company's override with its audit entry, in one transaction.
    public func setRetention(company: String, days: Int?, audit: AuditEntry) async throws {
        try await pool.write { db in
            if let days {
                try db.execute(sql: "INSERT OR REPLACE INTO retention (company, days) VALUES (?, ?)", arguments: [company, days])
            } else {
                try db.execute(sql: "DELETE FROM retention WHERE company = ?", arguments: [company])
            }
            var e = audit
            try e.insert(db)
        }
    }

    /// Recordings whose retention has ended at `now` (started before now − days of their company,
    /// else `defaultDays`), not under hold, oldest first, at most `limit`.
    public func expired(now: Date, defaultDays: Int, limit: Int) throws -> [RecordingRow] {
        try reading { db in
            try RecordingRow.fetchAll(db, sql: """
                SELECT recording.* FROM recording LEFT JOIN retention ON retention.company = recording.company
                WHERE legal_hold = 0 AND started_at < ? - 86400 * COALESCE(retention.days, ?)
                ORDER BY started_at, uniqueid LIMIT ?
                """, arguments: [Int64(now.timeIntervalSince1970), defaultDays, limit])
        }
    }

    /// Recordings held past their retention (reported by purge, never removed).
    public func heldPastRetention(now: Date, defaultDays: Int) throws -> [String] {
        try reading { db in
            try String.fetchAll(db, sql: """
                SELECT recording.uniqueid FROM recording LEFT JOIN retention ON retention.company = recording.company
                WHERE legal_hold = 1 AND started_at < ? - 86400 * COALESCE(retention.days, ?) ORDER BY started_at
                """, arguments: [Int64(now.timeIntervalSince1970), defaultDays])
        }
    }

    /// Removes rows in one transaction — each leaves a tombstone (uniqueid, SHA-256, when, why: no
    /// personal data) and an audit entry — skipping any that went under hold meanwhile. Returns
    /// the rows removed; the caller removes their files (a crash in between is finished by recovery).
    /// An erasure (`reason` "erasure") also takes the phone number out of every webhook event of
    /// those recordings, sent or not, including the `recording.deleted` it writes.
    public func remove(_ rows: [RecordingRow], reason: String, actor: String, now: Date) throws -> [RecordingRow] {
        let erasing = reason == "erasure"
        let removed = try writing { db -> [RecordingRow] in
            var removed: [RecordingRow] = []
            for row in rows {
                guard let current = try RecordingRow.fetchOne(db, key: row.uniqueid), !current.legalHold else { continue }
                try current.delete(db)
                try db.execute(sql: "DELETE FROM metadata WHERE uniqueid = ?", arguments: [row.uniqueid])
                try Self.forgetCall(db, row.uniqueid)
                try db.execute(
                    sql: "INSERT OR REPLACE INTO tombstone (uniqueid, opus_sha256, at, reason, opus_path) VALUES (?, ?, ?, ?, ?)",
                    arguments: [row.uniqueid, current.opusSHA256, Int64(now.timeIntervalSince1970), reason, current.opusPath])
                var e = AuditEntry(at: now, actor: actor, role: nil, company: nil, action: reason, uniqueid: row.uniqueid)
                try e.insert(db)
                var reported = current
                if erasing {
                    reported.leadNumber = nil
                    try db.execute(
                        sql: """
                            UPDATE outbox SET body = CAST(json_set(CAST(body AS TEXT), '$.recording.lead_number', NULL) AS BLOB)
                            WHERE uniqueid = ? AND json_extract(CAST(body AS TEXT), '$.recording.lead_number') IS NOT NULL
                            """, arguments: [row.uniqueid])
                }
                try recordEvent(db, type: .recordingDeleted, uniqueid: row.uniqueid, key: "recording", object: try Self.recordingObject(reported), now: now)
                removed.append(current)
            }
            return removed
        }
        changes.notify(removed.map(\.uniqueid))
        return removed
    }

    /// Folds the write-ahead log into the database file and empties it, so that pages that held
    /// erased data are gone from the WAL too (with `secure_delete`, from the file's free pages).
    /// Best effort: a reader holding an old snapshot keeps the WAL until the next checkpoint.
    public func checkpoint() throws {
        try writingWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Every recording of a lead number, held or not.
    public func recordings(leadNumber: String, company: String? = nil) throws -> [RecordingRow] {
        try reading { db in
            var q = RecordingRow.filter(Column("lead_number") == leadNumber)
            if let company { q = q.filter(Column("company") == company) }
            return try q.order(Column("started_at")).fetchAll(db)
        }
    }

    /// Forgets metadata of calls whose audio has not arrived, for a lead number (erasure).
    public func forgetPendingMetadata(leadNumber: String, company: String? = nil) throws -> Int {
        try writing { db in
            var sql = "DELETE FROM metadata WHERE lead_number = ? AND uniqueid NOT IN (SELECT uniqueid FROM recording)"
            var args: [any DatabaseValueConvertible] = [leadNumber]
            if let company {
                sql += " AND company = ?"
                args.append(company)
            }
            try db.execute(sql: sql, arguments: StatementArguments(args))
            let count = db.changesCount
            // What AMI said about calls with that number (the parties' numbers), recorded or not.
            try Self.forgetCalls(db, number: leadNumber)
            return count
        }
    }

    public func everyRecording() throws -> [RecordingRow] {
        try reading { try RecordingRow.order(Column("started_at"), Column("uniqueid")).fetchAll($0) }
    }
}

extension Catalog {
    /// Removed recordings whose file may still be on disk: (uniqueid, path, SHA-256).
    public func tombstonesWithFiles(since: Date?) throws -> [(String, String, String)] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT uniqueid, opus_path, opus_sha256 FROM tombstone WHERE opus_path IS NOT NULL AND at >= ?",
                             arguments: [Int64(since?.timeIntervalSince1970 ?? 0)]).map { ($0[0], $0[1], $0[2]) }
        }
    }
}
