import Crypto
import Foundation
import NIOConcurrencyHelpers
import CallrecSupport

/// Signed URLs for `<audio src>`, which cannot send headers: `?exp=<unix seconds>&sig=<sig>`,
/// sig = base64url (no padding) of HMAC-SHA256(secret, "<path>\n<exp>"), path as sent, no query.
public struct URLSigner: Sendable {
    /// HMAC with the key already mixed in: copied per signature (copy-on-write), which saves
    /// setting up the key's pads on every request.
    let keyed: HMAC<SHA256>

    public init(secret: String) { keyed = HMAC<SHA256>(key: SymmetricKey(data: Data(secret.utf8))) }

    public func signature(path: String, expires: Int) -> String {
        var mac = keyed
        var text = path + "\n" + String(expires)
        text.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return Data(mac.finalize()).base64URL
    }

    /// `path?exp=…&sig=…`
    public func sign(path: String, expires: Int) -> String {
        "\(path)?exp=\(expires)&sig=\(signature(path: path, expires: expires))"
    }

    /// Signed URLs already verified: a player asks for many ranges of one URL, and the HMAC was
    /// 4.7% of serving them (perf under wrk). Only valid signatures are kept, and expiry is still
    /// checked on every request.
    let verified = VerifiedSignatures()

    /// Whether `sig` is valid for `path` until `exp` (compared in constant time), at `now`.
    /// Why a signed URL was refused, for the client: `expired` (past `exp`), `bad_signature`.
    public enum Refusal: Error, Sendable { case expired, badSignature }

    /// Nil when valid, else why not (a signature checked only when `exp` is still ahead).
    public func refusal(path: String, exp: String, sig: String, now: Date) -> Refusal? {
        if verify(path: path, exp: exp, sig: sig, now: now) { return nil }
        if let expires = Int(exp), exp == String(expires), expires <= Int(now.timeIntervalSince1970) { return .expired }
        return .badSignature
    }

    /// `id`: the uniqueid the path names (given by `AudioFastPath`, which then finds this very URL
    /// again with `verified.lookup` without parsing it or building a key).
    public func verify(path: String, exp: String, sig: String, now: Date, id: String? = nil) -> Bool {
        guard let expires = Int(exp), expires > Int(now.timeIntervalSince1970), exp == String(expires) else { return false }
        let key = path + "?exp=" + exp + "&sig=" + sig
        if verified.contains(key) { return true }
        guard check(path: path, expires: expires, sig: sig) else { return false }
        verified.insert(key, id: id, expires: expires)
        return true
    }

    private func check(path: String, expires: Int, sig: String) -> Bool {
        // Compare the canonical text, not decoded bytes: base64 leaves spare bits in the last
        // character, so several texts decode to one MAC and would all be accepted.
        let expected = Array(signature(path: path, expires: expires).utf8)
        let given = Array(sig.utf8)
        guard given.count == expected.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<given.count { diff |= given[i] ^ expected[i] }
        return diff == 0
    }
}

/// A bounded set of verified signed URLs, by their canonical text `<path>?exp=<exp>&sig=<sig>`
/// (emptied when full: the next request of each simply verifies again), with their `exp` and, when
/// the verifier knew it, the uniqueid the path names.
final class VerifiedSignatures: @unchecked Sendable {
    private let lock = NIOLock()
    private var keys: [String: (id: String?, expires: Int)] = [:]
    let capacity = 8192

    func contains(_ key: String) -> Bool {
        lock.withLock { keys[key] != nil }
    }

    /// The uniqueid and `exp` of exactly this URL (a request target in the canonical order),
    /// verified before by `AudioFastPath`; the caller checks `exp` against its clock.
    func lookup(_ uri: String) -> (String, Int)? {
        lock.withLock {
            guard let v = keys[uri], let id = v.id else { return nil }
            return (id, v.expires)
        }
    }

    func insert(_ key: String, id: String? = nil, expires: Int) {
        lock.withLock {
            if keys.count >= capacity { keys.removeAll(keepingCapacity: true) }
            if id == nil, keys[key]?.id != nil { return }
            keys[key] = (id, expires)
        }
    }
}
