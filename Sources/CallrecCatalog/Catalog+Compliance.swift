import Foundation
import GRDB
import GRDBSQLite

/// One line of the audit log.
public struct AuditEntry: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "audit"
    public var id: Int64?
    public var at: Int64
    public var actor: String
    public var role: String?
    public var company: String?
    public var action: String
    public var uniqueid: String?
    public var detail: String?
    public var client: String?

    public init(at: Date, actor: String, role: String?, company: String?, action: String, uniqueid: String?, detail: String? = nil, client: String? = nil) {
        self.at = Int64(at.timeIntervalSince1970)
        self.actor = actor
        self.role = role
        self.company = company
        self.action = action
        self.uniqueid = uniqueid
        self.detail = detail
        self.client = client
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public enum HoldError: Error, Equatable, Sendable {
    case notFound
    case held(reason: String?)
}

extension Catalog {
    /// Appends entries in one transaction, `auditRows` per statement, bound through SQLite's C
    /// API: every range a player asks for is audited, and perf under wrk put the audit writer at
    /// 4–5% of serve's CPU, a third of it GRDB's argument arrays and value conversions, most of
    /// the rest SQLite's per-statement work (one statement per row, before).
    public func audit(_ entries: [AuditEntry]) throws {
        try writing { db in
            var rest = entries[...]
            while !rest.isEmpty {
                let rows = rest.count >= Self.auditRows ? Self.auditRows : 1
                let statement = try db.cachedStatement(sql: Self.auditInsert(rows: rows))
                let s = statement.sqliteStatement
                var at: Int32 = 1
                for e in rest.prefix(rows) {
                    sqlite3_bind_int64(s, at, e.at)
                    for text in [e.actor, e.role, e.company, e.action, e.uniqueid, e.detail, e.client] {
                        at += 1
                        if var text {
                            text.withUTF8 { _ = sqlite3_bind_text(s, at, $0.baseAddress, Int32($0.count), Self.transient) }
                        } else {
                            sqlite3_bind_null(s, at)
                        }
                    }
                    at += 1
                }
                let rc = sqlite3_step(s)
                sqlite3_reset(s)
                guard rc == SQLITE_DONE else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
                rest = rest.dropFirst(rows)
            }
        }
    }

    /// Audit rows per INSERT statement (what is left over goes one row per statement).
    static let auditRows = 32
    static func auditInsert(rows: Int) -> String {
        "INSERT INTO audit (at, actor, role, company, action, uniqueid, detail, client) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
    }
    /// SQLite copies the text before the bind returns.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// `audit(_:)` on GRDB's writer queue.
    public func appendAudit(_ entries: [AuditEntry]) async throws {
        try await pool.write { db in
            for var e in entries { try e.insert(db) }
        }
    }

    public func auditLog(from: Date?, to: Date?, limit: Int = 100_000) throws -> [AuditEntry] {
        try reading { db in
            var q = AuditEntry.all()
            if let from { q = q.filter(Column("at") >= Int64(from.timeIntervalSince1970.rounded(.up))) }
            if let to { q = q.filter(Column("at") < Int64(to.timeIntervalSince1970.rounded(.up))) }
            return try q.order(Column("at"), Column("id")).limit(limit).fetchAll(db)
        }
    }

    /// Puts a recording under legal hold (or releases it), with the audit entry, in one transaction.
    @discardableResult
    public func setHold(_ uniqueid: String, on: Bool, reason: String?, audit: AuditEntry) throws -> RecordingRow {
        let row = try writing { db in try Self.setHold(db, uniqueid, on: on, reason: reason, audit: audit, visible: { _ in true }) }
        changes.notify([uniqueid])
        return row
    }

    /// The same off the caller's thread; `visible` sees the row in the transaction (false: not found).
    public func setHold(
        _ uniqueid: String, on: Bool, reason: String?, audit: AuditEntry, visible: @escaping @Sendable (RecordingRow) -> Bool
    ) async throws -> RecordingRow {
        let row = try await pool.write { db in try Self.setHold(db, uniqueid, on: on, reason: reason, audit: audit, visible: visible) }
        changes.notify([uniqueid])
        return row
    }

    static func setHold(
        _ db: Database, _ uniqueid: String, on: Bool, reason: String?, audit: AuditEntry, visible: (RecordingRow) -> Bool
    ) throws -> RecordingRow {
        do {
            guard var row = try RecordingRow.fetchOne(db, key: uniqueid), visible(row) else { throw HoldError.notFound }
            row.legalHold = on
            row.holdReason = on ? reason : nil
            row.holdBy = on ? audit.actor : nil
            row.holdAt = on ? audit.at : nil
            row.updatedAt = audit.at
            try row.update(db)
            var e = audit
            try e.insert(db)
            return row
        }
    }

    /// Removes a recording's row (not under hold), leaving a tombstone and the audit entry, in one
    /// transaction; returns the row so the caller removes its audio file next. A crash in between
    /// leaves a file whose tombstone tells recovery to finish the removal.
    public func delete(_ uniqueid: String, reason: String, audit: AuditEntry) throws -> RecordingRow {
        let row = try writing { db in try self.deleteRow(db, uniqueid, reason: reason, audit: audit, visible: { _ in true }) }
        changes.notify([uniqueid])
        return row
    }

    public func delete(
        _ uniqueid: String, reason: String, audit: AuditEntry, visible: @escaping @Sendable (RecordingRow) -> Bool
    ) async throws -> RecordingRow {
        let row = try await pool.write { db in try self.deleteRow(db, uniqueid, reason: reason, audit: audit, visible: visible) }
        changes.notify([uniqueid])
        return row
    }

    func deleteRow(_ db: Database, _ uniqueid: String, reason: String, audit: AuditEntry, visible: (RecordingRow) -> Bool) throws -> RecordingRow {
        do {
            guard let row = try RecordingRow.fetchOne(db, key: uniqueid), visible(row) else { throw HoldError.notFound }
            if row.legalHold { throw HoldError.held(reason: row.holdReason) }
            try row.delete(db)
            try db.execute(sql: "DELETE FROM metadata WHERE uniqueid = ?", arguments: [uniqueid])
            try db.execute(
                sql: "INSERT OR REPLACE INTO tombstone (uniqueid, opus_sha256, at, reason, opus_path) VALUES (?, ?, ?, ?, ?)",
                arguments: [uniqueid, row.opusSHA256, audit.at, reason, row.opusPath])
            var e = audit
            try e.insert(db)
            try recordEvent(db, type: .recordingDeleted, uniqueid: uniqueid, key: "recording", object: try Self.recordingObject(row), now: Date())
            return row
        }
    }

    /// The tombstone of a removed recording: the SHA-256 of the audio that was removed.
    public func tombstone(_ uniqueid: String) throws -> String? {
        try reading { try String.fetchOne($0, sql: "SELECT opus_sha256 FROM tombstone WHERE uniqueid = ?", arguments: [uniqueid]) }
    }
}

extension Catalog {
    /// Puts every recording matching `query` (company, lead number, time range) under legal hold,
    /// in one transaction with one audit entry each. Returns the uniqueids newly held.
    public func hold(matching query: ListQuery, reason: String, actor: String, role: String?, client: String?, now: Date) throws -> [String] {
        let held = try writing { db in try Self.hold(db, query, reason: reason, actor: actor, role: role, client: client, now: now) }
        changes.notify(held)
        return held
    }

    /// `hold(matching:…)` on GRDB's writer queue.
    public func holdAll(matching query: ListQuery, reason: String, actor: String, role: String?, client: String?, now: Date) async throws -> [String] {
        let held = try await pool.write { db in try Self.hold(db, query, reason: reason, actor: actor, role: role, client: client, now: now) }
        changes.notify(held)
        return held
    }

    static func hold(_ db: Database, _ query: ListQuery, reason: String, actor: String, role: String?, client: String?, now: Date) throws -> [String] {
        guard query.company != nil || query.leadNumber != nil || query.from != nil || query.to != nil else {
            throw CatalogError("a hold by query needs at least one of company, lead number, from, to")
        }
        var sql = "SELECT uniqueid FROM recording WHERE legal_hold = 0"
        var args: [any DatabaseValueConvertible] = []
        if let c = query.company { sql += " AND company = ?"; args.append(c) }
        if let l = query.leadNumber { sql += " AND lead_number = ?"; args.append(l) }
        if let f = query.from { sql += " AND started_at >= ?"; args.append(Int64(f.timeIntervalSince1970.rounded(.up))) }
        if let t = query.to { sql += " AND started_at < ?"; args.append(Int64(t.timeIntervalSince1970.rounded(.up))) }
        sql += " ORDER BY started_at, uniqueid"
        do {
            let ids = try String.fetchAll(db, sql: sql, arguments: StatementArguments(args))
            let at = Int64(now.timeIntervalSince1970)
            for id in ids {
                try db.execute(
                    sql: "UPDATE recording SET legal_hold = 1, hold_reason = ?, hold_by = ?, hold_at = ?, updated_at = ? WHERE uniqueid = ?",
                    arguments: [reason, actor, at, at, id])
                var e = AuditEntry(at: now, actor: actor, role: role, company: query.company, action: "hold", uniqueid: id, detail: reason, client: client)
                try e.insert(db)
            }
            return ids
        }
    }
}
