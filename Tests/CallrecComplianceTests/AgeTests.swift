import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import Testing

@testable import CallrecCompliance

/// Sealed exports in the age format, opened by the real `age` (Debian's package).
@Suite(.offThePool)
struct AgeTests {
    /// A fresh identity from age-keygen: (identity file, recipient).
    static func identity(_ dir: TempDir) throws -> (String, String) {
        let key = dir.file("key.txt")
        let made = try run("age-keygen", ["-o", key])
        #expect(made.status == 0, "\(made.err)")
        let pub = try run("age-keygen", ["-y", key])
        return (key, String(decoding: pub.out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func sealed(_ bytes: [UInt8], for recipient: String, at path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        defer { close(fd) }
        let w = try AgeWriter(recipient: AgeRecipient(recipient)) { raw in _ = write(fd, raw.baseAddress!, raw.count) }
        try bytes.withUnsafeBytes { p in
            // Uneven pieces, as the ZIP writer hands them over.
            var at = 0
            while at < p.count {
                let n = min(7777, p.count - at)
                try w.write(UnsafeRawBufferPointer(rebasing: p[at..<(at + n)]))
                at += n
            }
        }
        try w.finish()
    }

    @Test(arguments: [0, 1, 65_536, 65_537, 200_000])
    func ageOpensWhatWeSeal(_ size: Int) throws {
        let dir = TempDir()
        let (key, recipient) = try Self.identity(dir)
        let plain = (0..<size).map { _ in UInt8.random(in: 0...255) }
        try Self.sealed(plain, for: recipient, at: dir.file("x.age"))
        let opened = try run("age", ["-d", "-i", key, dir.file("x.age")])
        #expect(opened.status == 0, "\(opened.err)")
        #expect([UInt8](opened.out) == plain)
        // Another identity cannot open it.
        let other = TempDir()
        let (otherKey, _) = try Self.identity(other)
        #expect(try run("age", ["-d", "-i", otherKey, dir.file("x.age")]).status != 0)
        // Nor can anyone once a byte of the payload changed.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("x.age")))
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: dir.file("y.age")))
        #expect(try run("age", ["-d", "-i", key, dir.file("y.age")]).status != 0)
    }

    @Test func exportSealedForARecipient() throws {
        let s = try Store()
        let a = try s.add("1732467600.1", company: "1")
        let dir = TempDir()
        let (key, recipient) = try Self.identity(dir)
        let out = dir.file("e.zip.age")
        let summary = try Exporter(catalog: s.catalog, recipient: AgeRecipient(recipient)).export(
            ListQuery(from: Date(timeIntervalSince1970: 1_732_400_000), to: Date(timeIntervalSince1970: 1_732_500_000)), to: out)
        #expect(summary.recordings == 1)
        #expect(try Transcoder.sha256(of: out) == summary.zipSHA256)
        let header = try String(decoding: Data(contentsOf: URL(fileURLWithPath: out)).prefix(22), as: UTF8.self)
        #expect(header == "age-encryption.org/v1\n")
        let zip = dir.file("e.zip")
        #expect(try run("age", ["-d", "-i", key, "-o", zip, out]).status == 0)
        let test = try run("unzip", ["-t", zip])
        #expect(test.status == 0, "\(test.err)")
        let entry = try run("unzip", ["-p", zip, a.opusPath])
        try entry.out.write(to: URL(fileURLWithPath: dir.file("a.opus")))
        #expect(try Transcoder.sha256(of: dir.file("a.opus")) == a.opusSHA256)
    }

    @Test func badRecipientsAreRefused() throws {
        let dir = TempDir()
        let (key, recipient) = try Self.identity(dir)
        let secret = try String(contentsOfFile: key, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("AGE-SECRET-KEY-") }.map(String.init)!
        var flipped = Array(recipient)
        flipped[10] = flipped[10] == "q" ? "p" : "q"
        for bad in ["", "age1", String(flipped), secret, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG", "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgp", recipient.uppercased() + "x"] {
            #expect(throws: AgeError.self, "\(bad)") { _ = try AgeRecipient(bad) }
        }
        #expect(try AgeRecipient(recipient).description == recipient)
        #expect(try AgeRecipient(recipient.uppercased()).description == recipient)  // Bech32 is case-insensitive, not mixed
    }

    /// A file age itself sealed to our recipient is not a callrec sealed file: read as it is (and
    /// so not taken for audio), never mistaken for one.
    @Test func anAgeFileIsNotASealedRecording() throws {
        let dir = TempDir()
        let (_, recipient) = try Self.identity(dir)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir.file("p")))
        #expect(try run("age", ["-r", recipient, "-o", dir.file("p.age"), dir.file("p")]).status == 0)
        #expect(!SealFormat.isSealed(path: dir.file("p.age")))
        #expect(throws: MediaError.self) { _ = try OpusVerifier.inspect(path: dir.file("p.age")) }
    }
}
