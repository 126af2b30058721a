import CallrecCatalog
import CallrecTestSupport
import Foundation
import GRDB
import Testing

/// `callrec purge` killed with SIGKILL at random moments, then run again: in the end every
/// expired recording is gone (row and file), the held one stays, and nothing is left half-removed.
@Suite(.offThePool)
struct PurgeKillTests {
    @Test func purgeSurvivesSIGKILL() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let src = dir.file("1732467600.0.wav")
        try placeFixture("speech.wav", at: src)
        #expect(try callrec(["ingest", "--data", data, src]).status == 0)
        // 3,000 more recordings: copies of that row, their files hard links to its file.
        let catalog = try Catalog(data: DataDirectory(data))
        let first = try #require(try catalog.recording("1732467600.0"))
        let count = 3000
        try cloneRecording(first, count: count, in: catalog)
        #expect(try callrec(["hold", "1732467600.7", "--reason", "court", "--data", data]).status == 0)
        let env = ["CALLREC_RETENTION_DAYS": "30"]
        func tombstones() throws -> Int { try catalog.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tombstone")! } }
        func filesOnDisk() -> Int {
            (FileManager.default.enumerator(atPath: data + "/audio")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".opus") }.count
        }
        var kills = 0
        var partial = 0  // kills that landed in the middle of the work: some rows removed, not all
        var cutShort = 0  // kills that left files of removed rows on disk (the next run must finish them)
        for _ in 0..<12 {
            let before = try tombstones()
            let purge = try CallrecProcess(["purge", "--data", data], env: env)  // SIGKILLed if dropped: used to the end
            let p = purge.process
            // Once this run's work has visibly begun (a batch committed), a little later: mid-work.
            _ = eventually(30) { !p.isRunning || ((try? tombstones()) ?? 0) > before }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.05))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            p.waitUntilExit()
            let removed = try tombstones()
            if p.terminationReason == .uncaughtSignal && removed > before && removed < count { partial += 1 }
            if p.terminationReason == .uncaughtSignal && filesOnDisk() > count + 1 - removed { cutShort += 1 }
            if p.terminationReason == .exit && p.terminationStatus == 0 { break }
            withExtendedLifetime(purge) {}
        }
        let final = try callrec(["purge", "--json", "--data", data], env: env)
        #expect(final.status == 0)
        print("purge SIGKILL test: \(kills) kill(s), \(partial) in the middle of the work, \(cutShort) with removed rows' files left")
        // Like WebhookKillTests: proven that a kill landed with work half done.
        #expect(partial > 0, "no kill landed in the middle of the work (\(kills) kills)")
        #expect(try catalog.count() == 1)
        #expect(try catalog.recording("1732467600.7")?.legalHold == true)
        let files = (FileManager.default.enumerator(atPath: data + "/audio")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".opus") }
        #expect(files.map { ($0 as NSString).lastPathComponent } == ["1732467600.7.opus"], "\(files.count) files left")
        let tombstones = try catalog.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tombstone")! }
        #expect(tombstones == count)  // 3,001 recordings, one held
    }
}
