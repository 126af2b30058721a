import Crypto
import Foundation

/// Signed URLs for `<audio src>`, which cannot send headers: `?exp=<unix seconds>&sig=<sig>`,
/// sig = base64url (no padding) of HMAC-SHA256(secret, "<path>\n<exp>"), path as sent, no query.
public struct URLSigner: Sendable {
    let key: SymmetricKey

    public init(secret: String) { key = SymmetricKey(data: Data(secret.utf8)) }

    public func signature(path: String, expires: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(path)\n\(expires)".utf8), using: key)
        return Data(mac).base64URL
    }

    /// `path?exp=…&sig=…`
    public func sign(path: String, expires: Int) -> String {
        "\(path)?exp=\(expires)&sig=\(signature(path: path, expires: expires))"
    }

    /// Whether `sig` is valid for `path` until `exp` (compared in constant time), at `now`.
    public func verify(path: String, exp: String, sig: String, now: Date) -> Bool {
        guard let expires = Int(exp), expires > Int(now.timeIntervalSince1970), exp == String(expires) else { return false }
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

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

}
