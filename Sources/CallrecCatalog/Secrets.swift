import Foundation

/// The service's secrets: from the environment when set, else created at random in
/// `<data>/secrets/` (mode 0600) on first use and read from there by every command, so the
/// embedded defaults work with no set-up and `callrec sign`/`token` agree with `serve`.
public enum Secrets {
    public enum Name: String, Sendable {
        case url = "CALLREC_URL_SECRET"
        case jwt = "CALLREC_JWT_SECRET"
        case webhook = "CALLREC_WEBHOOK_SECRET"
        /// Keys the HMAC under which the audit log names an erased phone number.
        case audit = "CALLREC_AUDIT_SECRET"

        var fileName: String {
            switch self {
            case .url: return "url.secret"
            case .jwt: return "jwt.secret"
            case .webhook: return "webhook.secret"
            case .audit: return "audit.secret"
            }
        }
    }

    public static func value(_ name: Name, data: DataDirectory, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let v = environment[name.rawValue], !v.isEmpty { return v }
        let dir = data.root + "/secrets"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = dir + "/" + name.fileName
        for _ in 0..<50 {
            if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
                let v = existing.trimmingCharacters(in: .whitespacesAndNewlines)
                if !v.isEmpty { return v }
                usleep(20000)  // another process is writing it
                continue
            }
            // Create it exclusively: two processes starting at once agree on one secret.
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 {
                if errno == EEXIST { continue }
                throw CatalogError("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            var bytes = [UInt8](repeating: 0, count: 32)
            for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
            let secret = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let line = Array((secret + "\n").utf8)
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            fsync(fd)
            close(fd)
            guard n == line.count else { throw CatalogError("cannot write \(path)") }
            return secret
        }
        throw CatalogError("\(path) stays empty")
    }
}
