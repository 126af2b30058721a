import CallrecTestSupport
import Foundation
import Testing

@testable import CallrecCompliance

/// The export's ZIP writer past the classic format's limits: more than 65,535 entries need the
/// ZIP64 end records, and three independent readers (unzip, zipinfo, Python's zipfile) must
/// read every entry back.
@Suite(.offThePool)
struct PromisedZip64Tests {
    /// 70,000 tiny entries: `unzip -t` tests every one, `zipinfo` and Python count them, the
    /// classic end record says 0xFFFF (so the count can only come from the ZIP64 record), and a
    /// few entries read back byte for byte. Checked to fail: with the ZIP64 end record's entry
    /// counts written as `count & 0xFFFF`.
    @Test func moreThan65535EntriesAreReadBackThroughZIP64() throws {
        let dir = TempDir()
        let path = dir.file("many.zip")
        let n = 70_000
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0)
        let zip = ZipWriter(fd: fd, date: Date(timeIntervalSince1970: 1_732_467_600))
        for i in 0..<n {
            try zip.add(name: "audio/\(i / 1000)/\(i).opus", data: Array("recording \(i)\n".utf8))
        }
        try zip.add(name: "manifest.json", data: Array(#"{"count": 70000}"#.utf8))
        try zip.finish()
        close(fd)

        let test = try run("unzip", ["-tq", path])
        #expect(test.status == 0, "\(String(decoding: test.out, as: UTF8.self)) \(test.err)")
        #expect(String(decoding: test.out, as: UTF8.self).contains("No errors detected"))
        let names = String(decoding: try run("zipinfo", ["-1", path]).out, as: UTF8.self).split(separator: "\n")
        #expect(names.count == n + 1)
        #expect(names.last == "manifest.json")
        let python = try run("python3", ["-c", """
            import sys, zipfile
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            print(len(z.infolist()), z.read('audio/69/69999.opus').decode().strip())
            """, path])
        #expect(python.status == 0, "\(python.err)")
        #expect(String(decoding: python.out, as: UTF8.self) == "\(n + 1) recording 69999\n")
        #expect(String(decoding: try run("unzip", ["-p", path, "audio/65/65536.opus"]).out, as: UTF8.self) == "recording 65536\n")

        // The classic end of central directory record is the last 22 bytes: its counts are
        // saturated, and a ZIP64 locator (PK\6\7) stands right before it.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let eocd = bytes.suffix(22)
        #expect(Array(eocd.prefix(4)) == [0x50, 0x4B, 0x05, 0x06])
        #expect(eocd[eocd.startIndex + 8] == 0xFF && eocd[eocd.startIndex + 9] == 0xFF && eocd[eocd.startIndex + 10] == 0xFF)
        let locator = bytes.dropLast(22).suffix(20)
        #expect(Array(locator.prefix(4)) == [0x50, 0x4B, 0x06, 0x07])
    }
}
