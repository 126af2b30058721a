import Foundation
import Testing

@testable import CallrecSupport

struct EncodingTests {
    /// RFC 4648 §10's vectors, in the URL alphabet without padding.
    @Test func base64URLAndHex() {
        let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors { #expect(Array(plain.utf8).base64URL == encoded, "\(plain)") }
        #expect([0xfb, 0xff, 0xbf].base64URL == "-_-_")
        #expect(Data([0xfb, 0xff]).dropFirst().base64URL == "_w")  // a slice whose indices do not start at 0
        #expect([0x00, 0x0f, 0xa5, 0xff].hexString == "000fa5ff")
        #expect(randomHex(bytes: 16).count == 32)
        #expect(randomHex(bytes: 16) != randomHex(bytes: 16))
    }
}

struct DurableFileTests {
    @Test func parentDirectories() {
        #expect(parentDirectory(of: "/a/b/c.opus") == "/a/b")
        #expect(parentDirectory(of: "/c.opus") == "/")
        #expect(parentDirectory(of: "c.opus") == ".")
    }

    /// A no-replace rename never overwrites: the file that was there is kept, and so is the source.
    @Test func renameNeverReplaces() throws {
        let dir = NSTemporaryDirectory() + "callrec-support-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("first".utf8).write(to: URL(fileURLWithPath: dir + "/a"))
        try Data("second".utf8).write(to: URL(fileURLWithPath: dir + "/b"))
        #expect(renameNoReplace(dir + "/b", dir + "/a") == EEXIST)
        #expect(try String(contentsOfFile: dir + "/a", encoding: .utf8) == "first")
        #expect(try String(contentsOfFile: dir + "/b", encoding: .utf8) == "second")
        #expect(renameNoReplace(dir + "/b", dir + "/c") == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + "/b"))
        #expect(try String(contentsOfFile: dir + "/c", encoding: .utf8) == "second")
        #expect(throws: FileError.self) { try syncDirectory(dir + "/missing") }
        try syncDirectory(dir)
    }
}
