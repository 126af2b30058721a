import Foundation
import GRDB

/// A bearer-token revocation: one token by its `jti` claim, or everything issued to a subject
/// (`sub`) up to a moment ("sign this user out everywhere").
public struct TokenRevocation: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "token_revocation"

    public enum Kind: String, Codable, Sendable { case jti, sub }

    /// Grows with every revocation written (AUTOINCREMENT: a replaced row gets a new one), so a
    /// server polls `MAX(id)` to hear of a revocation another process wrote.
    public var id: Int64?
    public var kind: Kind
    /// The `jti` or the `sub`.
    public var value: String
    /// Unix seconds of the revocation. For a subject: tokens of that `sub` whose `iat` is at or
    /// before this second, or that carry no `iat`, are refused.
    public var at: Int64
    /// For a `jti`: the revoked token's `exp` (or a generous bound when it was not given); the row
    /// is purged once it has passed, since the token is refused as expired from then on. Nil for a
    /// subject: kept (a token without `iat` stays refused).
    public var exp: Int64?
    /// Who revoked it, and the company of the revoking token (nil: unscoped, or the CLI).
    public var actor: String
    public var company: String?

    enum CodingKeys: String, CodingKey { case id, kind, value, at, exp, actor, company }

    /// How long a `jti` revocation given without the token's `exp` is kept: longer than any token
    /// callrec is asked to issue in practice.
    public static let defaultKeep: TimeInterval = 366 * 86400

    public init(jti: String, exp: Date?, actor: String, company: String?, now: Date) {
        kind = .jti
        value = jti
        at = Int64(now.timeIntervalSince1970.rounded(.down))
        self.exp = Int64((exp ?? now.addingTimeInterval(Self.defaultKeep)).timeIntervalSince1970.rounded(.up))
        self.actor = actor
        self.company = company
    }

    public init(subject: String, actor: String, company: String?, now: Date) {
        kind = .sub
        value = subject
        at = Int64(now.timeIntervalSince1970.rounded(.down))
        exp = nil
        self.actor = actor
        self.company = company
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    static func migrateTokenRevocations(_ db: Database) throws {
        try db.create(table: "token_revocation") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("kind", .text).notNull()  // jti, sub
            t.column("value", .text).notNull()
            t.column("at", .integer).notNull()
            t.column("exp", .integer)
            t.column("actor", .text).notNull()
            t.column("company", .text)
            t.uniqueKey(["kind", "value"])
        }
    }

    /// Writes a revocation with its audit entry in one transaction (a later revocation of the same
    /// `jti` or `sub` replaces the earlier: a subject's moment moves forward, never back; a `jti`'s
    /// keep-until grows, never shrinks). A subject's revocation also ends the console sessions its
    /// CRM opened for that subject (`/console/sso`, no local account) at or before the moment.
    /// Spent `jti` revocations (their token expired) are purged on the way. Returns the row as stored.
    @discardableResult
    public func revoke(_ revocation: TokenRevocation, audit: AuditEntry) async throws -> TokenRevocation {
        try await pool.write { db in try Self.revoke(db, revocation, audit: audit) }
    }

    /// The synchronous twin, for the CLI.
    @discardableResult
    public func revokeNow(_ revocation: TokenRevocation, audit: AuditEntry) throws -> TokenRevocation {
        try writing { db in try Self.revoke(db, revocation, audit: audit) }
    }

    static func revoke(_ db: Database, _ revocation: TokenRevocation, audit: AuditEntry) throws -> TokenRevocation {
        var r = revocation
        if let old = try TokenRevocation.filter(Column("kind") == r.kind.rawValue && Column("value") == r.value).fetchOne(db) {
            r.at = max(r.at, old.at)
            if let e = r.exp, let o = old.exp { r.exp = max(e, o) }
            try old.delete(db)
        }
        r.id = nil
        try r.insert(db)
        if r.kind == .sub {
            try db.execute(sql: "DELETE FROM session WHERE user_name IS NULL AND subject = ? AND created_at <= ?", arguments: [r.value, r.at])
        }
        try db.execute(sql: "DELETE FROM token_revocation WHERE kind = 'jti' AND exp < ?", arguments: [revocation.at])
        var e = audit
        try e.insert(db)
        return r
    }

    /// The revocations in force at `now` (spent `jti` ones left out), oldest first; with
    /// `company`, only those a token of that company made.
    public func tokenRevocations(now: Date, company: String? = nil) async throws -> [TokenRevocation] {
        try await pool.read { db in try Self.tokenRevocations(db, now: now, company: company) }
    }

    /// The synchronous twin, for the CLI.
    public func tokenRevocationsNow(now: Date) throws -> [TokenRevocation] {
        try reading { db in try Self.tokenRevocations(db, now: now, company: nil) }
    }

    static func tokenRevocations(_ db: Database, now: Date, company: String?) throws -> [TokenRevocation] {
        var q = TokenRevocation.filter(Column("exp") == nil || Column("exp") >= Int64(now.timeIntervalSince1970))
        if let company { q = q.filter(Column("company") == company) }
        return try q.order(Column("id")).fetchAll(db)
    }

    /// A number that changes whenever a revocation is written or purged (by any process): the
    /// server polls it, cheaply, to reload its revocations.
    public func tokenRevocationsVersion() async throws -> Int64 {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0), COUNT(*) FROM token_revocation")!
            return (row[0] as Int64) << 20 &+ (row[1] as Int64)
        }
    }
}
