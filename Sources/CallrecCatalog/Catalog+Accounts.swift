import Foundation
import GRDB

/// A console account: a role and company exactly as a bearer token's, and a bcrypt hash (made and
/// checked by the server; the catalog only stores it).
public struct UserAccount: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "user"
    public var name: String
    public var role: String
    public var company: String?
    public var passwordHash: String
    public var createdAt: Int64
    public var updatedAt: Int64
    public var disabledAt: Int64?

    enum CodingKeys: String, CodingKey {
        case name, role, company, passwordHash = "password_hash", createdAt = "created_at", updatedAt = "updated_at", disabledAt = "disabled_at"
    }

    public init(name: String, role: String, company: String?, passwordHash: String, now: Date) {
        self.name = name
        self.role = role
        self.company = company
        self.passwordHash = passwordHash
        createdAt = Int64(now.timeIntervalSince1970)
        updatedAt = createdAt
    }

    public var isDisabled: Bool { disabledAt != nil }
}

/// A console session, by the hash of its cookie.
public struct SessionRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "session"
    public var idHash: String
    public var userName: String?
    public var subject: String
    public var role: String
    public var company: String?
    public var csrf: String
    public var createdAt: Int64
    public var lastSeenAt: Int64
    public var client: String?

    enum CodingKeys: String, CodingKey {
        case idHash = "id_hash", userName = "user_name", subject, role, company, csrf, createdAt = "created_at", lastSeenAt = "last_seen_at", client
    }

    public init(idHash: String, userName: String?, subject: String, role: String, company: String?, csrf: String, now: Date, client: String?) {
        self.idHash = idHash
        self.userName = userName
        self.subject = subject
        self.role = role
        self.company = company
        self.csrf = csrf
        createdAt = Int64(now.timeIntervalSince1970)
        lastSeenAt = createdAt
        self.client = client
    }
}

public enum AccountError: Error, Equatable, Sendable, CustomStringConvertible {
    case exists(String)
    case notFound(String)

    public var description: String {
        switch self {
        case .exists(let n): return "a user named \(n) already exists"
        case .notFound(let n): return "no user named \(n)"
        }
    }
}

extension Catalog {
    // MARK: accounts

    public func addUser(_ user: UserAccount) async throws {
        try await pool.write { db in
            if try UserAccount.fetchOne(db, key: user.name) != nil { throw AccountError.exists(user.name) }
            try user.insert(db)
        }
    }

    public func users() async throws -> [UserAccount] {
        try await pool.read { db in try UserAccount.order(Column("name")).fetchAll(db) }
    }

    public func user(_ name: String) async throws -> UserAccount? {
        try await pool.read { db in try UserAccount.fetchOne(db, key: name) }
    }

    /// A new password hash; every session of the account ends with it.
    public func setPasswordHash(_ name: String, _ hash: String, now: Date) async throws {
        try await pool.write { db in
            guard var u = try UserAccount.fetchOne(db, key: name) else { throw AccountError.notFound(name) }
            u.passwordHash = hash
            u.updatedAt = Int64(now.timeIntervalSince1970)
            try u.update(db)
            try SessionRecord.filter(Column("user_name") == name).deleteAll(db)
        }
    }

    /// Disables an account and ends its sessions in the same transaction.
    public func disableUser(_ name: String, now: Date) async throws {
        try await pool.write { db in
            guard var u = try UserAccount.fetchOne(db, key: name) else { throw AccountError.notFound(name) }
            if u.disabledAt == nil { u.disabledAt = Int64(now.timeIntervalSince1970) }
            u.updatedAt = Int64(now.timeIntervalSince1970)
            try u.update(db)
            try SessionRecord.filter(Column("user_name") == name).deleteAll(db)
        }
    }

    // MARK: sessions

    public func createSession(_ session: SessionRecord) async throws {
        try await pool.write { db in try session.insert(db) }
    }

    /// A session and, for a local account's, the account as it is now.
    public func session(_ idHash: String) async throws -> (SessionRecord, UserAccount?)? {
        try await pool.read { db in
            guard let s = try SessionRecord.fetchOne(db, key: idHash) else { return nil }
            let u = try s.userName.flatMap { try UserAccount.fetchOne(db, key: $0) }
            return (s, u)
        }
    }

    public func touchSession(_ idHash: String, at: Date) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE session SET last_seen_at = ? WHERE id_hash = ?", arguments: [Int64(at.timeIntervalSince1970), idHash])
        }
    }

    public func deleteSession(_ idHash: String) async throws {
        _ = try await pool.write { db in try SessionRecord.deleteOne(db, key: idHash) }
    }

    /// Removes sessions idle since `idleBefore` or created before `createdBefore`, and spent SSO ids.
    public func pruneSessions(idleBefore: Date, createdBefore: Date, now: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM session WHERE last_seen_at < ? OR created_at < ?",
                arguments: [Int64(idleBefore.timeIntervalSince1970), Int64(createdBefore.timeIntervalSince1970)])
            try db.execute(sql: "DELETE FROM sso_jti WHERE exp < ?", arguments: [Int64(now.timeIntervalSince1970)])
        }
    }

    /// Records an SSO token id as used; false when it already was (each works once).
    public func useSSOTokenID(_ jti: String, expires: Date) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO sso_jti (jti, exp) VALUES (?, ?)", arguments: [jti, Int64(expires.timeIntervalSince1970)])
            return db.changesCount == 1
        }
    }

    // MARK: the audit log, newest first

    /// The newest audit entries matching the filters (nil: any), at most `limit`.
    public func recentAudit(
        company: String?, from: Date?, to: Date?, actor: String?, action: String?, uniqueid: String?, limit: Int
    ) async throws -> [AuditEntry] {
        try await pool.read { db in
            var q = AuditEntry.all()
            if let company { q = q.filter(Column("company") == company) }
            if let from { q = q.filter(Column("at") >= Int64(from.timeIntervalSince1970)) }
            if let to { q = q.filter(Column("at") < Int64(to.timeIntervalSince1970)) }
            if let actor { q = q.filter(Column("actor") == actor) }
            if let action { q = q.filter(Column("action") == action) }
            if let uniqueid { q = q.filter(Column("uniqueid") == uniqueid) }
            return try q.order(Column("at").desc, Column("id").desc).limit(limit).fetchAll(db)
        }
    }
}
