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
    /// range, and JWTKit's decode and HMAC, through the router, was most of a bearer request. It
    /// also holds the revocations in force (`TokenRevocationWatcher` keeps them as the catalog has them).
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
        // Taken before the verification: a revocation that lands while it runs bumps it, and the
        // token is then not remembered (it is still checked against the revocations as they are
        // when it is admitted).
        let generation = try await revocationsLoaded()
        let claims: Claims
        do {
            claims = try await tokens.verify(token)
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
        guard verifiedTokens.admit(token, claims, generation: generation) else { throw Self.revoked }
        return .token(claims)
    }

    static let revoked = APIError(.unauthorized, "revoked", "the bearer token has been revoked (by its jti, or every token of its subject issued until a moment)")

    /// The generation of the revocations once they have been read from the catalog at least once
    /// (the first requests after start wait for that read: no revoked token slips in before it).
    func revocationsLoaded() async throws -> UInt64 {
        if let generation = verifiedTokens.loadedGeneration { return generation }
        guard let source = verifiedTokens.source else { return verifiedTokens.generation }
        let rows: [TokenRevocation]
        do { rows = try await source() } catch {
            throw APIError(.serviceUnavailable, "unavailable", "the token revocations cannot be read from the catalog")
        }
        verifiedTokens.replaceRevocations(rows)
        return verifiedTokens.generation
    }

    /// Whether claims verified elsewhere (a console sign-in token) are revoked.
    func isRevoked(_ claims: Claims) async throws -> Bool {
        _ = try await revocationsLoaded()
        return verifiedTokens.isRevoked(claims)
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
        guard let token = Self.plainBearer(header) else { return nil }
        return verifiedTokens.claims(token, now: now())
    }

    /// `bearer(_:)` for its usual shape, read as bytes: `Bearer <token>` (the scheme in any case,
    /// one space); nil for anything else, which the router reads with `bearer` (the fast path then
    /// misses). `bearer`'s split, lowercasing and character count were a µs of a remembered
    /// token's range (perf under wrk).
    static func plainBearer(_ header: String) -> String? {
        var h = header
        return h.withUTF8 { b in
            guard b.count > 7, b.count - 7 < 8192, b[6] == 0x20, b[7] != 0x20 else { return nil }
            for (i, c) in "bearer".utf8.enumerated() where b[i] | 0x20 != c { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: b[7...]), as: UTF8.self)
        }
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
/// signed); what can change is whether it is revoked, so the revocations live here too, under the
/// same lock: a revocation drops the remembered tokens it matches as it arrives, and `claims` (the
/// fast path's one look-up) stays a single dictionary read. A verification that was under way when
/// a revocation arrived is admitted against the revocations as they are then, and not remembered
/// (`generation`), so a revoked token is never put back.
final class VerifiedTokens: @unchecked Sendable {
    private let lock = NIOLock()
    private var tokens: [String: Claims] = [:]
    private var revoked = RevocationSet()
    /// Revocations this process wrote itself, kept until a load from the catalog has them (a load
    /// that began before their commit would otherwise drop them for a poll).
    private var local: [TokenRevocation] = []
    private var generationValue: UInt64 = 0
    private var loaded = false
    /// Reads the revocations from the catalog (set by the application); nil: none to read.
    private var sourceValue: (@Sendable () async throws -> [TokenRevocation])?
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

    private func remember(_ token: String, _ claims: Claims) {
        if tokens.count >= capacity { tokens.removeAll(keepingCapacity: true) }
        tokens[token] = claims
    }

    /// Bumped by every change to the revocations.
    var generation: UInt64 { lock.withLock { generationValue } }

    /// The generation, once the revocations have been loaded (or when there is nothing to load).
    var loadedGeneration: UInt64? { lock.withLock { loaded || sourceValue == nil ? generationValue : nil } }

    var source: (@Sendable () async throws -> [TokenRevocation])? { lock.withLock { sourceValue } }

    /// Where the revocations come from; until they have been read once, bearer tokens wait for it.
    func attach(_ source: @escaping @Sendable () async throws -> [TokenRevocation]) {
        lock.withLock {
            sourceValue = source
            loaded = false
        }
    }

    /// False when `claims` are revoked. Otherwise true, and the token is remembered unless the
    /// revocations changed since `generation` was read (before the token's verification began).
    func admit(_ token: String, _ claims: Claims, generation: UInt64) -> Bool {
        lock.withLock {
            if revoked.refuses(claims) { return false }
            if generation == generationValue { remember(token, claims) }
            return true
        }
    }

    func isRevoked(_ claims: Claims) -> Bool { lock.withLock { revoked.refuses(claims) } }

    /// A revocation this process has just committed: in force at once.
    func revoke(_ revocation: TokenRevocation) {
        lock.withLock {
            local.append(revocation)
            revoked.add(revocation)
            changed()
        }
    }

    /// The revocations as the catalog has them now (a load, or a poll that saw them change).
    func replaceRevocations(_ rows: [TokenRevocation]) {
        lock.withLock {
            // Ids grow with each commit: one of ours that this read lacks was committed after it.
            let newest = rows.compactMap(\.id).max() ?? 0
            local.removeAll { ($0.id ?? 0) <= newest }
            var set = RevocationSet()
            for r in rows + local { set.add(r) }
            revoked = set
            loaded = true
            changed()
        }
    }

    /// After a change: a new generation, and the remembered tokens now revoked forgotten.
    private func changed() {
        generationValue &+= 1
        tokens = tokens.filter { !revoked.refuses($0.value) }
    }

    var count: Int { lock.withLock { tokens.count } }
}

/// The revocations in force, in memory: token ids, and subjects with the moment (unix seconds)
/// up to which their tokens are refused.
struct RevocationSet: Sendable {
    private(set) var ids: Set<String> = []
    private(set) var subjects: [String: Int64] = [:]

    mutating func add(_ r: TokenRevocation) {
        switch r.kind {
        case .jti: ids.insert(r.value)
        case .sub: subjects[r.value] = max(subjects[r.value] ?? r.at, r.at)
        }
    }

    /// A token whose `jti` is revoked, or whose subject is and that was issued at or before the
    /// subject's revocation (or says not when: no `iat`).
    func refuses(_ c: Claims) -> Bool {
        if !ids.isEmpty, let jti = c.jti?.value, ids.contains(jti) { return true }
        if !subjects.isEmpty, let at = subjects[c.sub.value] {
            guard let iat = c.iat?.value else { return true }
            return Int64(iat.timeIntervalSince1970.rounded(.down)) <= at
        }
        return false
    }
}
