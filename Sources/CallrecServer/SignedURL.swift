import Crypto
import Foundation
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

    public func verify(path: String, exp: String, sig: String, now: Date) -> Bool {
        guard let expires = Int(exp), expires > Int(now.timeIntervalSince1970), exp == String(expires) else { return false }
        let key = path + "?" + exp + "&" + sig
        if verified.contains(key) { return true }
        guard check(path: path, expires: expires, sig: sig) else { return false }
        verified.insert(key)
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

/// A bounded set of verified signed URLs (emptied when full: the next request of each simply
/// verifies again).
final class VerifiedSignatures: @unchecked Sendable {
    private let lock = NSLock()
    private var keys = Set<String>()
    let capacity = 8192

    func contains(_ key: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return keys.contains(key)
    }

    func insert(_ key: String) {
        lock.lock()
        defer { lock.unlock() }
        if keys.count >= capacity { keys.removeAll(keepingCapacity: true) }
        keys.insert(key)
    }
}

