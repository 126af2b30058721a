import CallrecCatalog
import Foundation
import Hummingbird
import JWTKit

/// The claims of a CRM's sign-in token: a bearer token's, plus `jti`, which works once.
struct SSOClaims: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var role: Role
    var company: String?
    var jti: IDClaim
    /// Optional: a revocation of the subject refuses sign-in tokens issued until it, and those
    /// without `iat`.
    var iat: IssuedAtClaim?

    func verify(using _: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        if role == .viewer && (company ?? "").isEmpty { throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "a viewer token needs a company") }
        // A recorder pauses live calls through the API; it has nothing to see in the console.
        if role == .recorder { throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "a recorder token cannot open the console") }
    }
}

extension ConsoleRoutes {
    /// How far ahead a sign-in token's `exp` may be (plus a few seconds of clock skew).
    static let ssoMaxLifetime: TimeInterval = 120
    static let ssoSkew: TimeInterval = 5

    /// `/console/sso?token=<JWT>[&next=/r/<id>]`: a CRM-minted token traded, once, for a session.
    @Sendable func sso(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        func refuse(_ why: String) -> Response {
            context.logger.notice("console SSO refused", metadata: ["reason": "\(why)"])
            service.audit.record(AuditEntry(at: sessions.now(), actor: "sso", role: nil, company: nil, action: "sso.refused", uniqueid: nil, detail: why, client: context.client))
            return p.response(p.lang.t("signin"), "<h1>\(p.t("signin"))</h1><p data-testid=\"login-error\" class=\"error\">\(p.t("sso_refused"))</p><p><a href=\"/login\">\(p.t("signin"))</a></p>", status: .unauthorized)
        }
        guard let token = request.uri.queryParameters["token"].map(String.init), token.utf8.count < 8192 else { return refuse("no token") }
        let claims: SSOClaims
        do { claims = try await auth.tokens.keys.verify(token, as: SSOClaims.self) } catch { return refuse("invalid token: \(error)") }
        let now = sessions.now()
        guard claims.exp.value.timeIntervalSince(now) <= Self.ssoMaxLifetime + Self.ssoSkew else { return refuse("exp more than 120 s ahead") }
        let jti = claims.jti.value
        guard !jti.isEmpty, jti.utf8.count <= 256 else { return refuse("no jti") }
        let asBearer = Claims(subject: claims.sub.value, expires: claims.exp.value, role: claims.role, company: claims.company, id: jti, issuedAt: claims.iat?.value)
        guard try await !auth.isRevoked(asBearer) else { return refuse("revoked") }
        guard try await service.catalog.useSSOTokenID(jti, expires: claims.exp.value + Self.ssoSkew) else { return refuse("jti already used") }
        let session = try await sessions.start(userName: nil, subject: claims.sub.value, role: claims.role, company: claims.company, client: context.client)
        service.audit.record(AuditEntry(at: now, actor: claims.sub.value, role: claims.role.rawValue, company: claims.company, action: "login.sso", uniqueid: nil, client: context.client))
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        // A page that moves on, not a redirect: a redirect that began on the CRM's site would not
        // carry the new SameSite=Strict cookie; a navigation from this page does.
        let body = """
            <meta http-equiv="refresh" content="0; url=\(esc(next))">
            <p><a href="\(esc(next))">\(p.t("continue"))</a></p>
            """
        var r = p.response(p.lang.t("signin"), body)
        r.headers.append(.init(name: .setCookie, value: sessions.cookie(session, secure: sessions.isSecure(request, client: context.client))))
        return r
    }
}
