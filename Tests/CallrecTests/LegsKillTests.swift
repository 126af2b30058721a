import CallrecCatalog
import CallrecTestSupport
import Foundation
import Testing

/// `callrec serve` with MixMonitor r()/t() legs arriving apart: killed (SIGKILL) between them,
/// started again, and a leg whose partner never comes.
@Suite(.offThePool)
struct LegsKillTests {
    static let real = "asterisk-22/1795635600.57"

    @Test func serveKilledBetweenLegsThenALegThatNeverPairs() throws {
        let dir = TempDir()
        let data = dir.file("data"), spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let env = ["CALLREC_LEG_WAIT": "30"]
        var serve: ServeProcess? = try ServeProcess(data: data, spool: spool, env: env, log: dir.file("serve1.log"))
        try placeFixture(Self.real + "-r.wav", at: spool + "/1795635600.57-r.wav")
        // Many settle times and scan ages: the leg is waited for, not taken alone.
        Thread.sleep(forTimeInterval: 3)
        #expect(FileManager.default.fileExists(atPath: spool + "/1795635600.57-r.wav"))
        #expect(serve?.stop(SIGKILL) == SIGKILL)
        serve = nil
        let catalog = try Catalog(data: DataDirectory(data))
        #expect(try catalog.count() == 0)

        // The partner arrives while serve is down; serve starts again and pairs them.
        try placeFixture(Self.real + "-t.wav", at: spool + "/1795635600.57-t.wav")
        serve = try ServeProcess(data: data, spool: spool, env: env, log: dir.file("serve2.log"))
        #expect(try eventually(60) { try catalog.recording("1795635600.57") != nil })
        let row = try #require(try catalog.recording("1795635600.57"))
        #expect(row.channels == 2 && row.samples == 95840 && row.parts == 2 && row.loneLeg == nil)
        #expect(!FileManager.default.fileExists(atPath: spool + "/1795635600.57-r.wav"))
        #expect(!FileManager.default.fileExists(atPath: spool + "/1795635600.57-t.wav"))
        _ = serve?.stop()

        // A leg that never pairs, with a short wait: stored mono and flagged once the wait is over.
        serve = try ServeProcess(data: data, spool: spool, env: ["CALLREC_LEG_WAIT": "3"], log: dir.file("serve3.log"))
        try placeFixture(Self.real + "-t.wav", at: spool + "/1795635601.58-t.wav")
        let dropped = Date()
        #expect(try eventually(60) { try catalog.recording("1795635601.58") != nil })
        #expect(Date().timeIntervalSince(dropped) >= 2.5)
        let lone = try #require(try catalog.recording("1795635601.58"))
        #expect(lone.channels == 1 && lone.loneLeg == "write")
        _ = serve?.stop()
    }

    /// `callrec ingest` with the legs and the mix given together: one stereo recording, the mix
    /// verified and removed; `show --json` carries the contract's speakers.
    @Test func ingestCommandPairsLegs() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let files = ["", "-r", "-t"].map { dir.file("in/1795635600.57\($0).wav") }
        for (f, suffix) in zip(files, ["", "-r", "-t"]) { try placeFixture(Self.real + suffix + ".wav", at: f) }
        let r = try callrec(["ingest", "--data", data] + files)
        #expect(r.status == 0, "\(r.err)")
        #expect(files.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        let show = try callrec(["show", "--json", "--data", data, "1795635600.57"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(show.out.utf8)) as? [String: Any])
        #expect(json["channels"] as? Int == 2 && json["parts"] as? Int == 3)
        let speakers = try #require(json["speakers"] as? [[String: Any]])
        #expect(speakers.first?["zero_runs"] as? [[Int]] == [[2960, 5000], [7980, 9000]])
        #expect(json["overtalk_ms"] as? Int == 8900 && json["dead_air_ms"] as? Int == 0)
    }
}
