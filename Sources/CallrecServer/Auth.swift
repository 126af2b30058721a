import CallrecCatalog
import Foundation
import HTTPTypes
import Hummingbird
import JWTKit

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
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].count < 8192 else {
            throw APIError(.unauthorized, "unauthorized", "the Authorization header must be 'Bearer <token>'")
        }
        do {
            return .token(try await tokens.verify(String(parts[1])))
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

    /// 403 unless the principal holds one of `roles`.
    static func require(_ principal: Principal, _ roles: Set<Role>) throws {
        guard let role = principal.role, roles.contains(role) else {
            throw APIError(.forbidden, "forbidden", "this needs the role \(roles.map(\.rawValue).sorted().joined(separator: " or "))")
        }
    }
}
