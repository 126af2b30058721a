import CallrecTestSupport
import Foundation
import Testing

/// The built `callrec` binary, as a user runs it.
@Suite(.offThePool)
struct CommandLineTests {
    @Test func ingestShowList() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let a = dir.file("1732467600.42.wav")
        let b = dir.file("1732500000.7.WAV")  // 2024-11-25T02:00Z: the 25th in UTC, still the 24th in São Paulo
        try placeFixture("speech.wav", at: a)
        try placeFixture("crashed.WAV", at: b)
        let ingest = try callrec(["ingest", "--data", data, a, b])
        #expect(ingest.status == 0, "\(ingest.err)")
        #expect(!FileManager.default.fileExists(atPath: a) && !FileManager.default.fileExists(atPath: b))

        let show = try callrec(["show", "1732467600.42", "--json", "--data", data])
        #expect(show.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(show.out.utf8)) as? [String: Any])
        for key in ["uniqueid", "company", "agent", "lead_number", "started_at", "samples", "sample_rate", "channels", "duration_ms", "source", "opus", "silence", "levels", "legal_hold"] {
            #expect(json.keys.contains(key), "missing \(key)")
        }
        #expect(json["started_at"] as? String == "2024-11-24T17:00:00Z")
        #expect(json["duration_ms"] as? Int == 6000)
        let silence = try #require(json["silence"] as? [String: Any])
        #expect(silence["segments"] as? [[Int]] == [[0, 700], [2120, 3440], [4800, 6000]])

        // Dates are read in CALLREC_TZ; --to is exclusive.
        let day = try callrec(["list", "--from", "2024-11-24", "--to", "2024-11-25", "--json", "--data", data])
        let items = try #require(try JSONSerialization.jsonObject(with: Data(day.out.utf8)) as? [[String: Any]])
        #expect(items.map { $0["uniqueid"] as? String } == ["1732467600.42"])
        // The same dates in São Paulo (UTC−3): 2024-11-25T02:00Z is 23:00 on the 24th there, so
        // it moves from the 25th to the 24th; 17:00Z on the 24th stays on the 24th.
        let utc25 = try callrec(["list", "--from", "2024-11-25", "--to", "2024-11-26", "--data", data], env: ["CALLREC_TZ": "UTC"])
        #expect(utc25.out.contains("1732500000.7") && !utc25.out.contains("1732467600.42"), "\(utc25.out)")
        let sp24 = try callrec(["list", "--from", "2024-11-24", "--to", "2024-11-25", "--data", data], env: ["CALLREC_TZ": "America/Sao_Paulo"])
        #expect(sp24.out.contains("1732500000.7") && sp24.out.contains("1732467600.42"), "\(sp24.out)")
        let sp25 = try callrec(["list", "--from", "2024-11-25", "--to", "2024-11-26", "--data", data], env: ["CALLREC_TZ": "America/Sao_Paulo"])
        #expect(sp25.status == 0 && !sp25.out.contains("1732500000.7"), "\(sp25.out)")
        let all = try callrec(["list", "--data", data])
        #expect(all.out.split(separator: "\n").count == 2)
    }

    @Test func failuresAreOneLineAndNonZero() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let bad = dir.file("1732467600.9.wav")
        try placeFixture("bad-text.wav", at: bad)
        let r = try callrec(["ingest", "--data", data, bad])
        #expect(r.status != 0)
        #expect(r.err.hasPrefix("callrec: "))
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(r.out.contains("quarantined"))
        #expect(!FileManager.default.fileExists(atPath: bad))
        #expect(FileManager.default.fileExists(atPath: data + "/quarantine"))

        let missing = try callrec(["show", "1.1", "--data", data])
        #expect(missing.status != 0 && missing.err == "callrec: no recording 1.1\n")
        let badDate = try callrec(["list", "--from", "yesterday", "--data", data])
        #expect(badDate.status != 0 && badDate.err.split(separator: "\n").count == 1)
        let badTZ = try callrec(["list", "--data", data], env: ["CALLREC_TZ": "Mars/Olympus"])
        #expect(badTZ.status != 0 && badTZ.err.contains("CALLREC_TZ"))

        for input in ["bad-empty.wav", "bad-channels.wav", "bad-zerohz.wav"] {
            let out = dir.file("o.opus")
            let t = try callrec(["transcode", Paths.fixture(input), out])
            #expect(t.status != 0)
            #expect(t.err.hasPrefix("callrec: ") && t.err.split(separator: "\n").count == 1, "\(t.err)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    @Test func transcodeWritesJSONAndPeaks() throws {
        let dir = TempDir()
        let r = try callrec(["transcode", Paths.fixture("stale.wav"), dir.file("o.opus"), "--json", "--waveform", dir.file("p.json")])
        #expect(r.status == 0, "\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(json["samples"] as? Int == 48000)
        #expect((json["source"] as? [String: Any])?["recovered_header"] as? Bool == true)
        let peaks = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("p.json")))) as? [String: Any])
        #expect(peaks["version"] as? Int == 2 && peaks["bits"] as? Int == 8)
    }
}
