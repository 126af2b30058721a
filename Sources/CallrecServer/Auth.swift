import CallrecCatalog
import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import NIOConcurrencyHelpers

/// Who is asking.
public enum Principal: Sendable, Equatable {
    /// A valid signed URL for exactly this path: may read this one resource.
    case signedURL
    case token(Claims)

    var actor: String {
        switch self {
        case .signedURL: return "signed-url"
        case .token(let c): return c.sub.value
        }
    }
    var role: Role? { if case .token(let c) = self { return c.role } else { return nil } }
    var company: String? { if case .token(let c) = self { return c.company } else { return nil } }

    /// Whether this principal may see a recording of `company` (404 when not: another company's
    /// recording is indistinguishable from a missing one).
    func canSee(company recordingCompany: String?) -> Bool { scope.allows(recordingCompany) }
}

/// Signed URLs and bearer tokens, checked against the service's secrets.
public struct Authenticator: Sendable {
    let signer: URLSigner
    let tokens: TokenAuthority
    let now: @Sendable () -> Date
    /// Bearer tokens already verified (`VerifiedTokens`): a player sends the same token with every
    /// range, and JWTKit's decode and HMAC, through the router, was most of a bearer request.
    let verifiedTokens = VerifiedTokens()

    public init(signer: URLSigner, tokens: TokenAuthority, now: @escaping @Sendable () -> Date = Date.init) {
        self.signer = signer
        self.tokens = tokens
        self.now = now
    }

    /// The principal of a request, or a 401. `allowSigned`: a signed URL is accepted (audio and
    /// waveform routes, GET and HEAD only).
    func authenticate(_ request: Request, allowSigned: Bool) async throws -> Principal {
        let query = request.uri.queryParameters
        if let sig = query["sig"].map(String.init) {
            guard allowSigned, request.method == .get || request.method == .head else {
                throw APIError(.unauthorized, "unauthorized", "signed URLs are valid only for GET and HEAD of audio and waveforms")
            }
            guard let exp = query["exp"].map(String.init), !exp.isEmpty else {
                throw APIError(.unauthorized, "missing_claim", "a signed URL needs exp (unix seconds) beside sig")
            }
            switch signer.refusal(path: request.uri.path, exp: exp, sig: sig, now: now()) {
            case nil: return .signedURL
            case .expired: throw APIError(.unauthorized, "expired", "the signed URL expired at \(exp)")
            case .badSignature:
                throw APIError(
                    .unauthorized, "bad_signature",
                    "the signature does not match: HMAC-SHA256(CALLREC_URL_SECRET, path + \"\\n\" + exp), base64url without padding, over the path as sent")
            }
        }
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "unauthorized", "send a bearer token (Authorization: Bearer …) or use a signed URL")
        }
        guard let token = Self.bearer(header) else {
            throw APIError(.unauthorized, "unauthorized", "the Authorization header must be 'Bearer <token>'")
        }
        if let claims = verifiedTokens.claims(token, now: now()) { return .token(claims) }
        do {
            let claims = try await tokens.verify(token)
            verifiedTokens.insert(token, claims)
            return .token(claims)
        } catch let e as JWTError {
            switch e.errorType {
            case .claimVerificationFailure where e.failedClaim is ExpirationClaim:
                throw APIError(.unauthorized, "expired", "the bearer token has expired")
            case .claimVerificationFailure:
                throw APIError(.unauthorized, "missing_claim", "the bearer token lacks a claim it needs: \(e.reason ?? "sub, exp, role; company for a viewer")")
            case .malformedToken where e.reason?.hasPrefix("Couldn't decode JWT payload") == true:
                // The payload is JSON but lacks a claim (keyNotFound) or has one of the wrong type.
                throw APIError(.unauthorized, "missing_claim", "the bearer token lacks a claim it needs (sub, exp, role; company for a viewer) or has one of the wrong type")
            case .signatureVerificationFailed:
                throw APIError(.unauthorized, "bad_signature", "the bearer token's signature does not match CALLREC_JWT_SECRET (HS256)")
            default:
                throw APIError(.unauthorized, "invalid_token", "the bearer token is not a valid HS256 JWT")
            }
        } catch is DecodingError {
            throw APIError(.unauthorized, "missing_claim", "the bearer token lacks a claim it needs (sub, exp, role; company for a viewer) or has one of the wrong type")
        } catch {
            throw APIError(.unauthorized, "invalid_token", "the bearer token is not a valid HS256 JWT")
        }
    }

    /// The token of an `Authorization: Bearer <token>` header (nil: not that shape).
    static func bearer(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].count < 8192 else { return nil }
        return String(parts[1])
    }

    /// The claims of a bearer token verified before and not expired at `now`, without a catalog
    /// or JWT call (for the event loop: `AudioFastPath`); nil sends the request to the router.
    func cachedBearer(_ header: String) -> Claims? {
        guard let token = Self.bearer(header) else { return nil }
        return verifiedTokens.claims(token, now: now())
    }

    /// 403 unless the principal holds one of `roles`.
    static func require(_ principal: Principal, _ roles: Set<Role>) throws {
        guard let role = principal.role, roles.contains(role) else {
            throw APIError(.forbidden, "forbidden", "this needs the role \(roles.map(\.rawValue).sorted().joined(separator: " or "))")
        }
    }
}

/// Bearer tokens whose signature and claims were verified, by their exact text, with their claims:
/// bounded (emptied when full: the next request of each simply verifies again). `exp` is checked
/// on every use, at the authenticator's clock, and an expired token leaves the cache (the router
/// then refuses it as JWTKit does: 401 `expired`). A token's claims cannot change (they are
/// signed), and bearer tokens have no revocation list: `CALLREC_JWT_SECRET` is their only
/// revocation, and changing it needs a restart, which empties this cache.
final class VerifiedTokens: @unchecked Sendable {
    private let lock = NIOLock()
    private var tokens: [String: Claims] = [:]
    let capacity: Int

    init(capacity: Int = 8192) { self.capacity = capacity }

    func claims(_ token: String, now: Date) -> Claims? {
        lock.withLock {
            guard let c = tokens[token] else { return nil }
            guard c.exp.value > now else {
                tokens[token] = nil
                return nil
            }
            return c
        }
    }

    func insert(_ token: String, _ claims: Claims) {
        lock.withLock {
            if tokens.count >= capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[token] = claims
        }
    }

    var count: Int { lock.withLock { tokens.count } }
}
