import CallrecTestSupport
import Foundation
import GRDB
import Testing

@testable import CallrecCatalog

/// The `token_revocation` table: one row per `jti` or `sub`, written with its audit entry; a
/// subject's revocation ends its CRM (SSO) console sessions; spent `jti` rows are purged.
@Suite(.offThePool)
struct TokenRevocationCatalogTests {
    static func audit(_ detail: String) -> AuditEntry {
        AuditEntry(at: Date(), actor: "cli:test", role: "cli", company: nil, action: "token.revoke", uniqueid: nil, detail: detail)
    }

    @Test func aSubjectRevocationEndsItsSSOSessionsOnly() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        try await catalog.addUser(UserAccount(name: "crm-7", role: "viewer", company: "acme", passwordHash: "x", now: t))
        let sessions = [
            SessionRecord(idHash: "sso-old", userName: nil, subject: "crm-7", role: "viewer", company: "acme", csrf: "c", now: t - 60, client: nil),
            SessionRecord(idHash: "sso-later", userName: nil, subject: "crm-7", role: "viewer", company: "acme", csrf: "c", now: t + 60, client: nil),
            SessionRecord(idHash: "sso-other", userName: nil, subject: "crm-8", role: "viewer", company: "acme", csrf: "c", now: t - 60, client: nil),
            // A local account that happens to share the name: not a token's subject.
            SessionRecord(idHash: "local", userName: "crm-7", subject: "crm-7", role: "viewer", company: "acme", csrf: "c", now: t - 60, client: nil),
        ]
        for s in sessions { try await catalog.createSession(s) }
        let before = try await catalog.tokenRevocationsVersion()
        try await catalog.revoke(TokenRevocation(subject: "crm-7", actor: "cli:test", company: nil, now: t), audit: Self.audit("sub=crm-7"))
        #expect(try await catalog.tokenRevocationsVersion() != before)
        #expect(try await catalog.session("sso-old") == nil)
        for kept in ["sso-later", "sso-other", "local"] { #expect(try await catalog.session(kept) != nil, "\(kept)") }
        #expect(try catalog.auditLog(from: nil, to: nil).map(\.detail) == ["sub=crm-7"])
    }

    @Test func oneRowPerTokenKeptUntilItsExpThenPurged() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        try await catalog.revoke(TokenRevocation(jti: "a", exp: t + 100, actor: "x", company: nil, now: t), audit: Self.audit("jti=a"))
        // Again, with an earlier exp: the later one is kept (a revocation never shrinks).
        try await catalog.revoke(TokenRevocation(jti: "a", exp: t + 50, actor: "x", company: nil, now: t + 1), audit: Self.audit("jti=a"))
        try await catalog.revoke(TokenRevocation(jti: "b", exp: nil, actor: "x", company: "42", now: t), audit: Self.audit("jti=b"))
        let rows = try await catalog.tokenRevocations(now: t)
        #expect(rows.map(\.value) == ["a", "b"])
        #expect(rows.first?.exp == Int64(t.timeIntervalSince1970) + 100)
        #expect(rows.last?.exp == Int64(t.timeIntervalSince1970 + TokenRevocation.defaultKeep))
        #expect(try await catalog.tokenRevocations(now: t, company: "42").map(\.value) == ["b"])
        // Past a's exp it is no longer in force, and the next revocation purges it.
        #expect(try await catalog.tokenRevocations(now: t + 101).map(\.value) == ["b"])
        try await catalog.revoke(TokenRevocation(subject: "s", actor: "x", company: nil, now: t + 101), audit: Self.audit("sub=s"))
        let left = try await catalog.pool.read { db in try String.fetchAll(db, sql: "SELECT value FROM token_revocation ORDER BY value") }
        #expect(left == ["b", "s"])
    }
}
