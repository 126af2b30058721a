import CallrecCatalog
import CallrecSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// Who is signed in to the console: the same `Principal` a bearer token gives (so every route and
/// `RecordingService` apply the same role and company rules), plus the session's anti-CSRF token.
struct ConsoleUser: Sendable {
    let principal: Principal
    let name: String
    let role: Role
    let company: String?
    let csrf: String
    let idHash: String
}

/// Server-side sessions: the cookie holds 32 random bytes; the catalog holds their SHA-256, the
/// principal and the CSRF token. Idle and absolute expiry; `user disable` and `user passwd`
/// delete an account's sessions, and every request re-reads the account (a disabled one is out at once).
struct ConsoleSessions: Sendable {
    let catalog: Catalog
    let idle: TimeInterval
    let absolute: TimeInterval
    /// Addresses whose `X-Forwarded-Proto` is believed (`CALLREC_TRUSTED_PROXIES`, comma-separated).
    let trustedProxies: Set<String>
    let now: @Sendable () -> Date

    static let cookieName = "callrec_session"

    init(catalog: Catalog, env: [String: String] = ProcessInfo.processInfo.environment, now: @escaping @Sendable () -> Date = Date.init) {
        self.catalog = catalog
        idle = (env["CALLREC_SESSION_IDLE_MINUTES"].flatMap(Double.init) ?? 30) * 60
        absolute = (env["CALLREC_SESSION_HOURS"].flatMap(Double.init) ?? 12) * 3600
        trustedProxies = Set((env["CALLREC_TRUSTED_PROXIES"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        self.now = now
    }

    static func hash(_ token: String) -> String { Array(SHA256.hash(data: Data(token.utf8))).hexString }

    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }.base64URL
    }

    /// Starts a session; returns the cookie's value.
    func start(userName: String?, subject: String, role: Role, company: String?, client: String?) async throws -> String {
        let token = Self.randomToken()
        try await catalog.createSession(
            SessionRecord(
                idHash: Self.hash(token), userName: userName, subject: subject, role: role.rawValue, company: company, csrf: Self.randomToken(),
                now: now(), client: client))
        // Now and then, the expired ones go.
        if Int.random(in: 0..<50) == 0 {
            let t = now()
            try? await catalog.pruneSessions(idleBefore: t - idle, createdBefore: t - absolute, now: t)
        }
        return token
    }

    /// The signed-in user of a cookie value, or nil (unknown, expired, disabled).
    func resolve(_ token: String) async throws -> ConsoleUser? {
        guard (20...100).contains(token.utf8.count) else { return nil }
        let idHash = Self.hash(token)
        guard let found = try await catalog.session(idHash) else { return nil }
        let (s, user) = found
        let t = now()
        let seen = Date(timeIntervalSince1970: TimeInterval(s.lastSeenAt))
        let created = Date(timeIntervalSince1970: TimeInterval(s.createdAt))
        if t.timeIntervalSince(seen) > idle || t.timeIntervalSince(created) > absolute {
            try await catalog.deleteSession(idHash)
            return nil
        }
        var roleName = s.role
        var company = s.company
        if s.userName != nil {
            // A local account: its role and company as they are now; a disabled one is out.
            guard let user, !user.isDisabled else {
                try await catalog.deleteSession(idHash)
                return nil
            }
            roleName = user.role
            company = user.company
        }
        guard let role = Role(rawValue: roleName) else { return nil }
        // Written at most once a minute: a player's range requests do not each write.
        if t.timeIntervalSince(seen) > 60 { try await catalog.touchSession(idHash, at: t) }
        let expires = min(t + idle, created + absolute)
        let claims = Claims(subject: s.subject, expires: expires, role: role, company: company)
        return ConsoleUser(principal: .token(claims), name: s.subject, role: role, company: company, csrf: s.csrf, idHash: idHash)
    }

    func end(_ user: ConsoleUser) async throws { try await catalog.deleteSession(user.idHash) }

    /// Whether a session still holds (not signed out, expired, or its account disabled), without
    /// counting as activity: an open event stream does not keep a session alive.
    func holds(_ user: ConsoleUser) async -> Bool {
        guard let found = try? await catalog.session(user.idHash) else { return false }
        let (s, account) = found
        let t = now()
        if t.timeIntervalSince(Date(timeIntervalSince1970: TimeInterval(s.lastSeenAt))) > idle { return false }
        if t.timeIntervalSince(Date(timeIntervalSince1970: TimeInterval(s.createdAt))) > absolute { return false }
        if s.userName != nil, account == nil || account!.isDisabled { return false }
        return true
    }

    /// Whether the request came over HTTPS: only a trusted proxy's `X-Forwarded-Proto` says so
    /// (callrec itself speaks plain HTTP).
    func isSecure(_ request: Request, client: String?) -> Bool {
        guard let client, trustedProxies.contains(client) else { return false }
        return request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    func cookie(_ value: String, secure: Bool, maxAge: Int? = nil) -> String {
        var c = "\(Self.cookieName)=\(value); HttpOnly; SameSite=Strict; Path=/"
        if let maxAge { c += "; Max-Age=\(maxAge)" }
        if secure { c += "; Secure" }
        return c
    }

    /// A cookie's value from the request's `Cookie` headers.
    static func cookieValue(_ request: Request, _ name: String) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.trimmingCharacters(in: .whitespaces)
                if kv.hasPrefix(name + "=") { return String(kv.dropFirst(name.count + 1)) }
            }
        }
        return nil
    }
}
