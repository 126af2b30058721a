import CallrecSupport
import Foundation
import JWTKit

/// Who may do what: `viewer` reads recordings of its company; `compliance` reads, exports and
/// holds; `admin` does everything; `recorder` (the CRM backend's) only pauses and resumes the
/// recording of its company's live calls. A company claim (required for viewers and recorders)
/// narrows any role.
public enum Role: String, Codable, Sendable, CaseIterable {
    case viewer, compliance, admin, recorder

    /// Roles that hold only for one company.
    public var needsCompany: Bool { self == .viewer || self == .recorder }
}

/// The claims of a callrec bearer token (HS256). `jti` and `iat` are optional (tokens minted
/// before they existed keep working): `jti` names the token for a revocation of it alone, `iat`
/// lets a revocation of its subject refuse only the tokens issued before it.
public struct Claims: JWTPayload, Equatable {
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var role: Role
    public var company: String?
    public var jti: IDClaim?
    public var iat: IssuedAtClaim?

    public init(subject: String, expires: Date, role: Role, company: String?, id: String? = nil, issuedAt: Date? = nil) {
        sub = SubjectClaim(value: subject)
        exp = ExpirationClaim(value: expires)
        self.role = role
        self.company = company
        jti = id.map { IDClaim(value: $0) }
        iat = issuedAt.map { IssuedAtClaim(value: $0) }
    }

    /// A random token id: 16 bytes in hex (base64url could begin with '-', which a shell command
    /// line such as `callrec token revoke --jti ID` reads as an option).
    public static func newID() -> String { randomHex(bytes: 16) }

    public func verify(using _: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        if role.needsCompany && (company ?? "").isEmpty {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "a \(role.rawValue) token needs a company")
        }
    }
}

/// Signs and verifies bearer tokens with `CALLREC_JWT_SECRET`.
public struct TokenAuthority: Sendable {
    let keys: JWTKeyCollection

    /// HS256 needs a key at least as long as its output: 32 bytes.
    public init(secret: String) async throws {
        guard secret.utf8.count >= 32 else {
            throw TokenError("CALLREC_JWT_SECRET must be at least 32 bytes (HS256); unset it to let callrec create one")
        }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    public func issue(_ claims: Claims) async throws -> String { try await keys.sign(claims) }

    public func verify(_ token: String) async throws -> Claims { try await keys.verify(token, as: Claims.self) }
}

public struct TokenError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
