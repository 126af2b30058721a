import CallrecTestSupport
import Foundation
import Testing

@testable import CallrecCatalog

/// The secrets callrec creates in `<data>/secrets/` when the environment has none.
@Suite(.offThePool)
struct SecretsTests {
    func secretFile(_ dir: TempDir, _ name: String = "url.secret") -> String { dir.path + "/secrets/" + name }

    /// Exactly the secret, no newline: a CRM that reads the file as it is (Node's readFileSync)
    /// must sign with the same bytes as callrec.
    @Test func theFileHoldsExactlyTheSecret() throws {
        let dir = TempDir()
        let v = try Secrets.value(.url, data: DataDirectory(dir.path), environment: [:])
        #expect(v.count == 43)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: secretFile(dir)))
        #expect(bytes == Data(v.utf8))
        // Every later call, in any process, reads the same one.
        #expect(try Secrets.value(.url, data: DataDirectory(dir.path), environment: [:]) == v)
        var st = stat()
        #expect(stat(secretFile(dir), &st) == 0 && st.st_mode & 0o777 == 0o600)
        // A file written by hand with a newline still reads as the secret.
        try Data("hand-written-secret\n".utf8).write(to: URL(fileURLWithPath: secretFile(dir, "jwt.secret")))
        #expect(try Secrets.value(.jwt, data: DataDirectory(dir.path), environment: [:]) == "hand-written-secret")
    }

    /// An empty or half-written file left by a crash (or a full disk) is replaced by a new
    /// secret, instead of blocking every start-up.
    @Test(arguments: [Data(), Data([0, 0, 0, 0]), Data("\n".utf8)])
    func aFileLeftByACrashIsReplaced(_ leftover: Data) throws {
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: dir.path + "/secrets", withIntermediateDirectories: true)
        let path = secretFile(dir)
        try leftover.write(to: URL(fileURLWithPath: path))
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)  // left long ago
        let started = Date()
        let v = try Secrets.value(.url, data: DataDirectory(dir.path), environment: [:])
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(v.count == 43)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(v.utf8))
        #expect(try Secrets.value(.url, data: DataDirectory(dir.path), environment: [:]) == v)
    }

    /// Many processes' worth of first uses at once agree on one secret.
    @Test func concurrentFirstUsesAgree() throws {
        let dir = TempDir()
        let lock = NSLock()
        nonisolated(unsafe) var seen = Set<String>()
        let root = dir.path
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let v = try? Secrets.value(.jwt, data: DataDirectory(root), environment: [:])
            lock.lock()
            seen.insert(v ?? "failed")
            lock.unlock()
        }
        #expect(seen.count == 1 && !seen.contains("failed"))
    }
}
