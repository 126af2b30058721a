import CallrecCatalog
import CallrecTestSupport
import Foundation
import Testing

/// `callrec quarantine` and what `show` says of a uniqueid that is not (yet) a recording.
@Suite(.offThePool)
struct QuarantineCommandTests {
    func json(_ s: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(s.utf8)) }

    @Test func showListAndRetryAQuarantinedFile() throws {
        let dir = TempDir()
        let data = dir.file("data"), spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let bad = spool + "/1732467600.9.wav"
        try placeFixture("bad-text.wav", at: bad)
        let original = try Data(contentsOf: URL(fileURLWithPath: bad))
        let env = ["CALLREC_SPOOL": spool]
        #expect(try callrec(["ingest", "--data", data, bad], env: env).status != 0)

        // show: quarantined, with its reason, file and time; non-zero (it is no recording).
        let show = try callrec(["show", "1732467600.9", "--data", data], env: env)
        #expect(show.status != 0)
        #expect(show.err.hasPrefix("callrec: ") && show.err.contains("quarantined") && show.err.split(separator: "\n").count == 1, "\(show.err)")
        #expect(show.out.contains("QUARANTINED") && show.out.contains("not audio"), "\(show.out)")
        let showJSON = try #require(try json(try callrec(["show", "1732467600.9", "--json", "--data", data], env: env).out) as? [String: Any])
        #expect(showJSON["status"] as? String == "quarantined")
        let entry = try #require((showJSON["quarantine"] as? [[String: Any]])?.first)
        #expect((entry["reason"] as? String)?.contains("not audio") == true)
        #expect((entry["path"] as? String).map { FileManager.default.fileExists(atPath: $0) } == true)
        #expect(entry["at"] is String)

        // quarantine list / show.
        let list = try #require(try json(try callrec(["quarantine", "list", "--json", "--data", data]).out) as? [[String: Any]])
        #expect(list.count == 1)
        let id = try #require(list.first?["id"] as? Int)
        #expect(list.first?["uniqueid"] as? String == "1732467600.9")
        #expect(list.first?["source_name"] as? String == "1732467600.9.wav")
        let one = try callrec(["quarantine", "show", "\(id)", "--data", data])
        #expect(one.status == 0 && one.out.contains("not audio") && one.out.contains("1732467600.9.wav"), "\(one)")
        let missing = try callrec(["quarantine", "show", "999", "--data", data])
        #expect(missing.status != 0 && missing.err == "callrec: no quarantine entry 999\n", "\(missing.err)")

        // retry: back into the spool, same bytes; never over a file already there.
        try Data("other".utf8).write(to: URL(fileURLWithPath: bad))
        let refused = try callrec(["quarantine", "retry", "\(id)", "--spool", spool, "--data", data])
        #expect(refused.status != 0 && refused.err.contains("already exists"), "\(refused.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: bad)) == Data("other".utf8))
        try FileManager.default.removeItem(atPath: bad)
        let retry = try callrec(["quarantine", "retry", "\(id)", "--spool", spool, "--data", data])
        #expect(retry.status == 0, "\(retry.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: bad)) == original)
        #expect(try callrec(["quarantine", "list", "--data", data]).out.isEmpty)
        // Now it is pending: its file is in the spool.
        let pending = try callrec(["show", "1732467600.9", "--json", "--data", data], env: env)
        #expect(pending.status != 0)
        let p = try #require(try json(pending.out) as? [String: Any])
        #expect(p["status"] as? String == "pending")
        #expect(p["spool_files"] as? [String] == [bad])
    }

    /// Metadata registered before the audio: pending, not "no recording".
    @Test func showSaysPendingForMetadataWithoutAudio() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let catalog = try Catalog(data: DataDirectory(data))
        try catalog.setMetadata("1732467600.77", Metadata(company: "42", agent: "1001"))
        let r = try callrec(["show", "1732467600.77", "--data", data], env: ["CALLREC_SPOOL": dir.file("spool")])
        #expect(r.status != 0)
        #expect(r.err == "callrec: recording 1732467600.77 is pending: metadata registered, no audio yet\n", "\(r.err)")
        #expect(r.out.contains("PENDING") && r.out.contains("company 42"))
        let unknown = try callrec(["show", "1.1", "--data", data])
        #expect(unknown.err == "callrec: no recording 1.1\n")
    }

    /// What the CLI creates is not readable by other local users, whatever the caller's umask.
    @Test func ingestCreatesPrivateFiles() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let src = dir.file("1732467600.42.wav")
        try placeFixture("speech.wav", at: src)
        let r = try run("/bin/sh", ["-c", "umask 022 && exec \"$0\" \"$@\"", Paths.binary, "ingest", "--data", data, src])
        #expect(r.status == 0, "\(r.err)")
        func mode(_ p: String) -> mode_t {
            var st = stat()
            return lstat(p, &st) == 0 ? st.st_mode & 0o777 : 0
        }
        #expect(mode(data) == 0o750)
        #expect(mode(data + "/catalog.sqlite") == 0o640)
        #expect(mode(data + "/audio/2024/11/24") == 0o750)
        #expect(mode(data + "/audio/2024/11/24/1732467600.42.opus") == 0o640)
        for f in (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [] where f.hasPrefix("catalog.sqlite") {
            #expect(mode(data + "/" + f) == 0o640, "\(f)")
        }
    }
}
