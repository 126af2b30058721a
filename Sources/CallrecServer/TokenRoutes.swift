import CallrecCatalog
import Foundation
import Hummingbird
import ServiceLifecycle

/// `/tokens/revocations`: cutting bearer tokens off before their `exp` — one token by its `jti`, or
/// every token of a subject issued until now ("sign this user out everywhere"). Admin only; a
/// subject is revoked only by an unscoped admin (a subject is not tied to a company), a `jti` by
/// any admin (a token id is random: knowing one is holding that token). Each revocation is in
/// force in this server as soon as it is answered, and is audited (`token.revoke`) in the same
/// transaction; one written by `callrec token revoke` is heard by `TokenRevocationWatcher`.
struct TokenRoutes: Sendable {
    let catalog: Catalog
    let auth: Authenticator
    let now: @Sendable () -> Date

    func register(on router: Router<CallrecContext>) {
        let admin = router.group("tokens/revocations").add(middleware: Authenticate(auth, roles: [.admin]))
        admin.post(use: revoke)
        admin.get(use: list)
    }

    struct RevokeBody: Codable, RequestBody {
        var jti: String?
        var sub: String?
        /// The revoked token's `exp` (unix seconds), with `jti`: the revocation is kept until then.
        var exp: Int64?
        static let fields: Set<String> = ["jti", "sub", "exp"]
        enum CodingKeys: String, CodingKey { case jti, sub, exp }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            // A null jti or sub is not "absent": the body is not what the route takes.
            for key in [CodingKeys.jti, .sub] where c.contains(key) {
                if try c.decodeNil(forKey: key) {
                    throw DecodingError.typeMismatch(String.self, .init(codingPath: [key], debugDescription: "\(key.stringValue) is null"))
                }
            }
            jti = try c.decodeIfPresent(String.self, forKey: .jti)
            sub = try c.decodeIfPresent(String.self, forKey: .sub)
            exp = try c.decodeIfPresent(Int64.self, forKey: .exp)
        }
    }

    struct RevocationJSON: Encodable {
        var id: Int64
        var jti: String?
        var sub: String?
        var revokedAt: String
        var keptUntil: String?
        var actor: String
        var company: String?
        enum CodingKeys: String, CodingKey { case id, jti, sub, revokedAt = "revoked_at", keptUntil = "kept_until", actor, company }

        init(_ r: TokenRevocation) {
            let iso = ISO8601DateFormatter()
            id = r.id ?? 0
            jti = r.kind == .jti ? r.value : nil
            sub = r.kind == .sub ? r.value : nil
            revokedAt = iso.string(from: Date(timeIntervalSince1970: TimeInterval(r.at)))
            keptUntil = r.exp.map { iso.string(from: Date(timeIntervalSince1970: TimeInterval($0))) }
            actor = r.actor
            company = r.company
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(jti, forKey: .jti)  // null for a subject's
            try c.encode(sub, forKey: .sub)  // null for a token id's
            try c.encode(revokedAt, forKey: .revokedAt)
            try c.encode(keptUntil, forKey: .keptUntil)  // null: kept
            try c.encode(actor, forKey: .actor)
            try c.encode(company, forKey: .company)
        }
    }

    /// A `jti` or `sub` as given: 1–256 characters, no control characters.
    static func valid(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.count <= 256 && !s.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    @Sendable func revoke(_ request: Request, context: CallrecContext) async throws -> Response {
        let body = try await JSONResponse.body(request, context, as: RevokeBody.self)
        let who = try context.who
        let at = now()
        let revocation: TokenRevocation
        switch (body.jti, body.sub) {
        case (let jti?, nil):
            guard Self.valid(jti) else { throw APIError(.badRequest, "invalid_jti", "jti is 1–256 characters, no control characters") }
            if let exp = body.exp, exp <= 0 || exp > 253_402_300_799 { throw APIError(.badRequest, "invalid_exp", "exp is the token's exp, unix seconds") }
            revocation = TokenRevocation(jti: jti, exp: body.exp.map { Date(timeIntervalSince1970: TimeInterval($0)) }, actor: who.actor, company: who.company, now: at)
        case (nil, let sub?):
            guard Self.valid(sub) else { throw APIError(.badRequest, "invalid_sub", "sub is 1–256 characters, no control characters") }
            guard body.exp == nil else { throw APIError(.badRequest, "invalid_exp", "exp goes with jti only: a subject's revocation is kept") }
            if let company = who.company, !company.isEmpty {
                throw APIError(.forbidden, "forbidden", "revoking every token of a subject needs an admin token without a company")
            }
            revocation = TokenRevocation(subject: sub, actor: who.actor, company: nil, now: at)
        default:
            throw APIError(.badRequest, "invalid_json", "send exactly one of jti (one token) or sub (every token of a subject issued until now)")
        }
        let detail = revocation.kind == .jti ? "jti=\(revocation.value)" : "sub=\(revocation.value)"
        let stored = try await catalog.revoke(
            revocation,
            audit: AuditEntry(at: at, actor: who.actor, role: who.role?.rawValue, company: who.company, action: "token.revoke", uniqueid: nil, detail: detail, client: context.client))
        auth.verifiedTokens.revoke(stored)
        return try JSONResponse.make(RevocationJSON(stored), status: .created)
    }

    @Sendable func list(_ request: Request, context: CallrecContext) async throws -> Response {
        let company = try context.who.company.flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await catalog.tokenRevocations(now: now(), company: company)
        return try JSONResponse.make(["items": rows.map(RevocationJSON.init)])
    }
}

/// Keeps the server's revocations (`VerifiedTokens`) as the catalog has them: polls a cheap
/// version of the revocations table (its greatest id and row count, one indexed read) every
/// `interval`, off the event loops, and reloads them when it changed — how a `callrec token
/// revoke` in another process reaches a running server within about `interval`.
struct TokenRevocationWatcher: Service {
    let catalog: Catalog
    let tokens: VerifiedTokens
    let interval: Duration
    let now: @Sendable () -> Date

    func run() async throws {
        var seen: Int64?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let version = try? await catalog.tokenRevocationsVersion(), version != seen,
                let rows = try? await catalog.tokenRevocations(now: now())
            {
                tokens.replaceRevocations(rows)
                seen = version
            }
            try? await Task.sleep(for: interval)
        }
    }
}
