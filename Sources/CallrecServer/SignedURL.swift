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
        guard let given = Data(base64URL: sig) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: Data("\(path)\n\(expires)".utf8), using: key)
    }
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init?(base64URL s: String) {
        guard s.count <= 128, s.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
        var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        self.init(base64Encoded: b)
    }
}
