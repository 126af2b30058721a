import CallrecTestSupport
import Foundation
import Testing

/// `callrec serve` as a subprocess: a real spool, a real catalog file, a real port.
@Suite(.serialized, .offThePool)
struct ServeTests {
    @Test func servesIngestsAndStopsCleanly() throws {
        let dir = TempDir()
        let spool = dir.file("spool")
        let serve = try ServeProcess(data: dir.file("data"), spool: spool, log: dir.file("serve.log"))
        let health = try serve.get("/healthz")
        #expect(health.status == 200)
        #expect(health.text.contains(#""status":"ok""#))

        let writer = try MixMonitorWriter(path: spool + "/1732467600.42.wav", pcm: try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav")))
        try writer.record(frames: 300)
        try writer.close()
        #expect(eventually(20) { !FileManager.default.fileExists(atPath: spool + "/1732467600.42.wav") })
        let metrics = try serve.get("/metrics").text
        #expect(metrics.contains("callrec_ingested_total 1"))
        let missing = try serve.get("/nowhere")
        #expect(missing.status == 404)
        #expect(missing.text.contains(#""error""#))

        #expect(serve.stop(SIGTERM) == 0, "\(serve.text())")
    }

    /// Kill -9 at random moments while calls flow in; restart; repeat. In the end every call is in
    /// the catalog exactly once, whole, with no temporary or orphan files and an empty spool.
    @Test func survivesSIGKILLAnywhere() throws {
        let dir = TempDir()
        let spool = dir.file("spool")
        let data = dir.file("data")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        var expected: [String: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        let rounds = 10
        var interrupted = 0  // kills that landed with calls of the round still in the spool
        for round in 0..<rounds {
            let serve = try ServeProcess(data: data, spool: spool, log: dir.file("serve.log"))
            // Calls of different lengths, written while the service runs.
            for i in 0..<5 {
                let id = "17324\(String(format: "%05d", round * 10 + i)).\(round * 10 + i)"
                let w = try MixMonitorWriter(path: spool + "/\(id).wav", pcm: pcm)
                let frames = Int.random(in: 50...400, using: &rng)
                try w.record(frames: frames)
                try w.close()
                expected[id] = frames * 160
            }
            // Half the rounds are killed at once (the calls certainly pending), half a little later.
            Thread.sleep(forTimeInterval: round % 2 == 0 ? 0 : Double.random(in: 0...0.8, using: &rng))
            #expect(serve.stop(SIGKILL) == SIGKILL)
            // Counted once the process is gone, so nothing can be taken after the count.
            if ((try? FileManager.default.contentsOfDirectory(atPath: spool))?.count ?? 0) > 0 { interrupted += 1 }
        }
        print("SIGKILL test: \(interrupted) of \(rounds) kills landed with calls still in the spool")
        // Like WebhookKillTests: proven that kills landed with work pending, which the next start must finish.
        #expect(interrupted > 0, "no kill landed with calls pending")
        // A last run with no kill: everything must arrive.
        let serve = try ServeProcess(data: data, spool: spool, log: dir.file("serve.log"))
        _ = eventually(60) { (try? FileManager.default.contentsOfDirectory(atPath: spool))?.isEmpty ?? false }
        #expect(serve.stop(SIGTERM) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty, "spool not drained")

        let list = try callrec(["list", "--json", "--data", data])
        let items = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]])
        let got = Dictionary(items.map { ($0["uniqueid"] as! String, $0["samples"] as! Int) }, uniquingKeysWith: { a, _ in a })
        #expect(items.count == expected.count, "each recording exactly once")
        #expect(got == expected)
        #expect(items.allSatisfy { ($0["parts"] as? Int) == 1 })
        // No temporary files, and one audio file per row.
        let audio = (FileManager.default.enumerator(atPath: data + "/audio")?.allObjects as? [String] ?? []).filter { $0.contains(".") }
        #expect(audio.filter { $0.contains(".partial-") }.isEmpty, "\(audio)")
        #expect(audio.filter { $0.hasSuffix(".opus") }.count == expected.count)
        let quarantined = (try? FileManager.default.contentsOfDirectory(atPath: data + "/quarantine")) ?? []
        #expect(quarantined.isEmpty)
    }

    /// SIGTERM while an ingest is in flight (its temporary Opus file is being written): serve
    /// lets it finish — the recording is catalogued whole, its source removed — and exits 0.
    @Test func sigtermLetsIngestsInFlightFinish() throws {
        let dir = TempDir()
        let spool = dir.file("spool"), data = dir.file("data")
        let serve = try ServeProcess(data: data, spool: spool, log: dir.file("serve.log"))
        // Fifteen minutes of speech: long enough to be caught in the middle of its transcoding.
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        let writer = try MixMonitorWriter(path: spool + "/1732467600.77.wav", pcm: pcm)
        try writer.record(frames: 15 * 60 * 50)
        try writer.close()
        func temporaryFiles() -> [String] {
            (FileManager.default.enumerator(atPath: data + "/audio")?.allObjects as? [String] ?? []).filter { $0.contains(".partial-") }
        }
        let inFlight = eventually(60) { !temporaryFiles().isEmpty }
        try #require(inFlight, "the ingest never started: \(serve.text())")
        #expect(serve.stop(SIGTERM) == 0, "\(serve.text())")
        let log = serve.text()
        #expect(log.contains("stopping (1 ingests finishing)"), "\(log)")
        #expect(!FileManager.default.fileExists(atPath: spool + "/1732467600.77.wav"), "source left in the spool")
        #expect(temporaryFiles().isEmpty)
        let show = try callrec(["show", "1732467600.77", "--json", "--data", data])
        #expect(show.status == 0, "\(show.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(show.out.utf8)) as? [String: Any])
        #expect(json["samples"] as? Int == writer.samplesWritten)
    }
}
