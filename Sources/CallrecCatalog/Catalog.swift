import Foundation
import GRDB

/// The catalog: one SQLite file in WAL mode, shared by `serve` and every CLI command.
public final class Catalog: Sendable {
    public let pool: DatabasePool
    public let data: DataDirectory
    /// Whether changes write webhook events to the outbox (when `CALLREC_WEBHOOK_URL` is set).
    public let recordsEvents: Bool
    /// Rung after a commit that wrote webhook events in this process, so that the sender in
    /// `serve` need not wait for its next poll (events written by other processes still are).
    public let outboxBell = OutboxBell()
    /// Told, after each commit in this process, which recordings changed (ingest, metadata, holds,
    /// removals): the server's row cache listens, so it never serves a row older than a commit.
    public let changes = RecordingChanges()
    /// The data keys of sealed recordings (`<data>/keys.sqlite`, opened on first use).
    public let keys: KeyStore

    /// Opens (creating and migrating if needed) the catalog of a data directory.
    public init(data: DataDirectory, recordsEvents: Bool = false) throws {
        self.recordsEvents = recordsEvents
        try data.create()
        var config = Configuration()
        config.busyMode = .timeout(10)  // the CLI and the server share the file
        config.label = "callrec.catalog"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Removed rows (an LGPD erasure's phone numbers) are overwritten, not left in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        do {
            pool = try DatabasePool(path: data.catalogPath, configuration: config)
        } catch {
            throw CatalogError("cannot open the catalog \(data.catalogPath): \(error)")
        }
        self.data = data
        keys = KeyStore(data: data)
        // One process at a time: GRDB reads which migrations are applied before each one's
        // transaction, so `serve` and a CLI command opening a new (or upgraded) catalog together
        // both ran the same migration, and one failed ("table already exists").
        try Self.whileLocked(data.root + "/.catalog-migrate.lock") { try Self.migrator.migrate(pool) }
    }

    /// Runs `body` holding an exclusive flock(2) on `path` (created if needed).
    static func whileLocked<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, DataDirectory.fileMode)
        guard fd >= 0 else { throw CatalogError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw CatalogError("cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Named migrations: never change one once it has shipped; add a new one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-recordings") { db in
            try db.create(table: "recording") { t in
                t.primaryKey("uniqueid", .text)
                t.column("started_at", .integer).notNull()  // unix seconds
                t.column("company", .text)
                t.column("agent", .text)
                t.column("lead_number", .text)
                t.column("samples", .integer).notNull()
                t.column("sample_rate", .integer).notNull()
                t.column("channels", .integer).notNull()
                t.column("duration_ms", .integer).notNull()
                t.column("source_format", .text).notNull()
                t.column("source_bytes", .integer).notNull()
                t.column("source_sha256", .text).notNull()
                t.column("opus_path", .text).notNull()
                t.column("opus_bytes", .integer).notNull()
                t.column("opus_bitrate", .integer).notNull()
                t.column("opus_sha256", .text).notNull()
                t.column("silence", .text).notNull()  // the contract's JSON object
                t.column("peak_dbfs", .double)
                t.column("rms_dbfs", .double)
                t.column("clipped_samples", .integer).notNull()
                t.column("parts", .integer).notNull().defaults(to: 1)
                t.column("legal_hold", .boolean).notNull().defaults(to: false)
                t.column("ingested_at", .integer).notNull()
                t.column("updated_at", .integer).notNull()
            }
            try db.create(index: "recording_started_at", on: "recording", columns: ["started_at", "uniqueid"])
            try db.create(index: "recording_company_started_at", on: "recording", columns: ["company", "started_at", "uniqueid"])
            try db.create(index: "recording_lead_number", on: "recording", columns: ["lead_number"])

            // Pre-serialised waveform JSON: serving it is a single read.
            try db.create(table: "waveform") { t in
                t.primaryKey("uniqueid", .text).references("recording", onDelete: .cascade)
                t.column("json", .blob).notNull()
            }
            // Each source file a recording was made of (MixMonitor's `a` option appends parts).
            try db.create(table: "source_part") { t in
                t.column("uniqueid", .text).notNull().references("recording", onDelete: .cascade)
                t.column("part", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.column("bytes", .integer).notNull()
                t.column("format", .text).notNull()
                t.column("name", .text).notNull()
                t.column("samples", .integer).notNull()
                t.column("ingested_at", .integer).notNull()
                t.primaryKey(["uniqueid", "part"])
            }
            try db.create(index: "source_part_sha256", on: "source_part", columns: ["sha256"])
            // Metadata may arrive (PUT …/metadata, or the spool path) before the audio.
            try db.create(table: "metadata") { t in
                t.primaryKey("uniqueid", .text)
                t.column("company", .text)
                t.column("agent", .text)
                t.column("lead_number", .text)
                t.column("updated_at", .integer).notNull()
            }
            try db.create(table: "quarantine") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("source_name", .text).notNull()
                t.column("path", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("sha256", .text)
                t.column("bytes", .integer).notNull()
                t.column("at", .integer).notNull()
            }
        }
        m.registerMigration("v2-holds-audit-tombstones") { db in
            try db.alter(table: "recording") { t in
                t.add(column: "hold_reason", .text)
                t.add(column: "hold_by", .text)
                t.add(column: "hold_at", .integer)
            }
            // Who did what, when, from where: every audio access, metadata change, hold, release, delete.
            try db.create(table: "audit") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .integer).notNull()
                t.column("actor", .text).notNull()
                t.column("role", .text)
                t.column("company", .text)
                t.column("action", .text).notNull()
                t.column("uniqueid", .text)
                t.column("detail", .text)
                t.column("client", .text)
            }
            try db.create(index: "audit_at", on: "audit", columns: ["at"])
            // What was removed, with no personal data: so that a removed recording never comes back
            // (recovery does not adopt its file) and removals can be proven.
            try db.create(table: "tombstone") { t in
                t.primaryKey("uniqueid", .text)
                t.column("opus_sha256", .text).notNull()
                t.column("at", .integer).notNull()
                t.column("reason", .text).notNull()
            }
        }
        m.registerMigration("v3-retention") { db in
            // Per-company retention, overriding CALLREC_RETENTION_DAYS.
            try db.create(table: "retention") { t in
                t.primaryKey("company", .text)
                t.column("days", .integer).notNull()
            }
        }
        m.registerMigration("v4-export-jobs") { db in
            try db.create(table: "export_job") { t in
                t.primaryKey("id", .text)
                t.column("status", .text).notNull()  // queued, running, completed, failed, expired
                t.column("from_at", .integer).notNull()
                t.column("to_at", .integer).notNull()
                t.column("company", .text)
                t.column("requested_by", .text).notNull()
                t.column("created_at", .integer).notNull()
                t.column("finished_at", .integer)
                t.column("done", .integer).notNull().defaults(to: 0)
                t.column("total", .integer).notNull().defaults(to: 0)
                t.column("path", .text)
                t.column("bytes", .integer)
                t.column("sha256", .text)
                t.column("error", .text)
            }
            try db.create(index: "export_job_status", on: "export_job", columns: ["status", "created_at"])
        }
        m.registerMigration("v5-tombstone-path") { db in
            // Where the removed file was, so that a removal cut short is finished without a scan.
            try db.alter(table: "tombstone") { t in t.add(column: "opus_path", .text) }
        }
        m.registerMigration("v6-outbox") { db in
            // Webhook events, written in the same transaction as the change they report; sent in
            // order per recording (seq), retried, kept across restarts.
            try db.create(table: "outbox") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("id", .text).notNull().unique()
                t.column("type", .text).notNull()
                t.column("uniqueid", .text)
                t.column("created_at", .integer).notNull()
                t.column("body", .blob).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("next_attempt_at", .integer).notNull().defaults(to: 0)
                t.column("delivered_at", .integer)
                t.column("last_error", .text)
            }
            try db.create(index: "outbox_pending", on: "outbox", columns: ["delivered_at", "seq"])
        }
        m.registerMigration("v7-outbox-pending-by-recording") { db in
            // dueEvents asks, for every candidate, whether its recording has an older undelivered
            // event; without this that is a scan of the pending events, quadratic in a burst.
            try db.execute(sql: "CREATE INDEX outbox_pending_uniqueid ON outbox (uniqueid, seq) WHERE delivered_at IS NULL")
        }
        m.registerMigration("v8-list-filters") { db in
            // GET /recordings?agent=… (or lead_number) in start order scanned the table: 851 ms for
            // a page at 300k rows. These answer it from the index, in order.
            try db.create(index: "recording_agent_started_at", on: "recording", columns: ["agent", "started_at", "uniqueid"])
            try db.create(index: "recording_lead_started_at", on: "recording", columns: ["lead_number", "started_at", "uniqueid"])
            // Its prefix: the old lead-number index only cost writes now.
            try db.drop(index: "recording_lead_number")
        }
        m.registerMigration("v9-console-accounts") { db in
            // The console's local accounts: role and company as a bearer token's; bcrypt hashes only.
            try db.create(table: "user") { t in
                t.primaryKey("name", .text)
                t.column("role", .text).notNull()
                t.column("company", .text)
                t.column("password_hash", .text).notNull()
                t.column("created_at", .integer).notNull()
                t.column("updated_at", .integer).notNull()
                t.column("disabled_at", .integer)
            }
            // Server-side sessions, keyed by the SHA-256 of the cookie's value (a stolen catalog
            // holds no usable cookie). `user_name` is null for a CRM (SSO) session, whose role and
            // company are kept here; a local account's are read from `user` on every request.
            try db.create(table: "session") { t in
                t.primaryKey("id_hash", .text)
                t.column("user_name", .text).references("user", onDelete: .cascade)
                t.column("subject", .text).notNull()
                t.column("role", .text).notNull()
                t.column("company", .text)
                t.column("csrf", .text).notNull()
                t.column("created_at", .integer).notNull()
                t.column("last_seen_at", .integer).notNull()
                t.column("client", .text)
            }
            try db.create(index: "session_user", on: "session", columns: ["user_name"])
            // SSO token ids already traded for a session: each works once (kept until it expires).
            try db.create(table: "sso_jti") { t in
                t.primaryKey("jti", .text)
                t.column("exp", .integer).notNull()
            }
        }
        m.registerMigration("v10-speakers") { db in
            // Two-channel recordings: who talked when (all null for mono), and the side a recording
            // holds when it was stored from one r()/t() leg whose partner never came.
            try db.alter(table: "recording") { t in
                t.add(column: "speakers", .text)  // the contract's `speakers` array, JSON
                t.add(column: "overtalk_ms", .integer)
                t.add(column: "dead_air_ms", .integer)
                t.add(column: "talk_ratio", .double)
                t.add(column: "lone_leg", .text)
            }
        }
        m.registerMigration("v11-ami") { db in try Self.migrateAMI(db) }
        m.registerMigration("v12-encryption") { db in
            // An export sealed for an age recipient (`age1…`) keeps it, so a restart redoes it sealed.
            try db.alter(table: "export_job") { t in t.add(column: "recipient", .text) }
        }
        m.registerMigration("v13-console-live") { db in
            // "Held only" with no other filter walked the start-order index to find one row in a
            // thousand. Held recordings in start order, from an index of only them (the list's
            // `legal_hold = 1` is written as a literal so that SQLite may use it).
            try db.execute(sql: "CREATE INDEX recording_held_started_at ON recording (started_at, uniqueid) WHERE legal_hold = 1")
        }
        m.registerMigration("v14-token-revocations") { db in try Self.migrateTokenRevocations(db) }
        return m
    }
}

/// Listeners told which recordings a commit changed, after the commit.
public final class RecordingChanges: @unchecked Sendable {
    private let lock = NSLock()
    private var listeners: [@Sendable ([String]) -> Void] = []

    public init() {}

    public func listen(_ f: @escaping @Sendable ([String]) -> Void) {
        lock.lock()
        listeners.append(f)
        lock.unlock()
    }

    public func notify(_ uniqueids: [String]) {
        guard !uniqueids.isEmpty else { return }
        lock.lock()
        let ls = listeners
        lock.unlock()
        for l in ls { l(uniqueids) }
    }
}

/// A catalog failure that reaches a user.
public struct CatalogError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
