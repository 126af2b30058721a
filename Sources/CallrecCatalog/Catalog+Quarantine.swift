import Foundation
import GRDB

/// Files that could not be ingested: what the CLI (`callrec quarantine`, `callrec show`) and, later,
/// an HTTP route ask about them. Async: GRDB runs them on its own queues, off the caller's thread.
extension Catalog {
    /// Every quarantined file still recorded, oldest first (at most `limit`).
    public func quarantineEntries(limit: Int? = nil) async throws -> [QuarantineRow] {
        try await pool.read { db in
            var request = QuarantineRow.order(Column("id"))
            if let limit { request = request.limit(limit) }
            return try request.fetchAll(db)
        }
    }

    /// One quarantined file by its id.
    public func quarantineEntry(id: Int64) async throws -> QuarantineRow? {
        try await pool.read { try QuarantineRow.fetchOne($0, key: id) }
    }

    /// Quarantined files whose source name contains `text` (a uniqueid), newest first. The table
    /// has no uniqueid column (a quarantined name may carry none): callers that need an exact
    /// match parse `sourceName` with their spool naming.
    public func quarantineEntries(mentioning text: String) async throws -> [QuarantineRow] {
        try await pool.read { db in
            try QuarantineRow.fetchAll(
                db, sql: "SELECT * FROM quarantine WHERE instr(source_name, ?) > 0 ORDER BY id DESC", arguments: [text])
        }
    }

    /// Forgets a quarantine record once its file has been taken out of quarantine (retried).
    /// Returns whether there was one.
    @discardableResult
    public func removeQuarantineEntry(id: Int64) async throws -> Bool {
        try await pool.write { try QuarantineRow.deleteOne($0, key: id) }
    }
}
