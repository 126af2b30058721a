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
        try DataDirectory.makeDirectories(data.root)
        try DataDirectory.makeDirectories(dir, mode: 0o700)
        let path = dir + "/" + name.fileName
        if let v = try read(path) { return v }
        // Creating or repairing the file: one process at a time, so that all agree on one secret.
        let lockPath = dir + "/.lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw CatalogError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw CatalogError("cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        }
        defer { flock(lock, LOCK_UN) }
        for _ in 0..<100 {
            if let v = try read(path) { return v }
            var st = stat()
            let exists = lstat(path, &st) == 0
            // An empty file this young may be an older callrec writing it in place: wait for it.
            // Older, it is what a crash or a full disk left: replace it, never wait forever.
            if exists, st.st_size == 0, Date().timeIntervalSince1970 - TimeInterval(st.st_mtim.tv_sec) < 2 {
                usleep(20000)
                continue
            }
            let secret = randomSecret()
            let temp = dir + "/.\(name.fileName).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            try writeSynced(secret, to: temp)
            defer { unlink(temp) }
            // A reader sees no file, or the whole secret: never a part of it.
            if exists {
                guard rename(temp, path) == 0 else { throw CatalogError("cannot replace \(path): \(String(cString: strerror(errno)))") }
            } else if link(temp, path) != 0 {
                if errno == EEXIST { continue }  // an older callrec made it meanwhile: read that one
                throw CatalogError("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                fsync(dfd)
                close(dfd)
            }
            return secret
        }
        throw CatalogError("\(path) stays empty")
    }

    /// The secret in `path`, trimmed; nil when there is no file or it holds no usable secret
    /// (empty, or bytes that are not printable ASCII: what a crash mid-write leaves).
    static func read(_ path: String) throws -> String? {
        guard let bytes = FileManager.default.contents(atPath: path) else { return nil }
        guard let text = String(data: bytes, encoding: .utf8) else { return nil }
        let v = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !v.isEmpty, v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return v
    }

    /// 32 random bytes, base64url without padding.
    static func randomSecret() -> String {
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Writes `secret` to a new file, mode 0600, with no trailing newline (a program that reads
    /// the file as it is, Node's `readFileSync` for one, must get exactly the secret), fsynced.
    static func writeSynced(_ secret: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CatalogError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(secret.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw CatalogError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
