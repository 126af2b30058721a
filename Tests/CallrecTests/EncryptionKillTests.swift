import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import GRDB
import Testing

/// `callrec encrypt`, `callrec keys rotate` and `callrec decrypt` killed with SIGKILL at random
/// moments, then run again to the end: no recording lost, every file readable with what the key
/// store holds, every data key kept through the rotation.
@Suite(.offThePool)
struct EncryptionKillTests {
    @Test func encryptRotateDecryptSurviveSIGKILL() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let src = dir.file("1732467600.0.wav")
        try placeFixture("speech.wav", at: src)
        #expect(try callrec(["ingest", "--data", data, src]).status == 0)
        // 300 more recordings: copies of that row, their files hard links to its file (each
        // becomes a file of its own when sealed: rename replaces one name).
        let catalog = try Catalog(data: DataDirectory(data))
        let first = try #require(try catalog.recording("1732467600.0"))
        let count = 300
        try cloneRecording(first, count: count, in: catalog)
        let rows = try catalog.everyRecording()
        func sealedFiles() -> Int { rows.filter { SealFormat.isSealed(path: catalog.data.absolute($0.opusPath)) }.count }
        func everyFileReads() -> Bool {
            rows.allSatisfy { (try? StoredFile.sha256(of: catalog.data.absolute($0.opusPath))) == $0.opusSHA256 }
        }

        /// Starts `args` up to `rounds` times, each killed once `progressed(before)` shows work
        /// done plus a random moment; the number of kills that landed mid-work.
        func killRepeatedly(_ args: [String], rounds: Int, progress: () -> Int, total: Int) throws -> (kills: Int, partial: Int) {
            var kills = 0, partial = 0
            for _ in 0..<rounds {
                let before = progress()
                let run = try CallrecProcess(args + ["--data", data])
                let p = run.process
                _ = eventually(30) { !p.isRunning || progress() > before }
                Thread.sleep(forTimeInterval: Double.random(in: 0...0.03))
                if p.isRunning {
                    kill(p.processIdentifier, SIGKILL)
                    kills += 1
                }
                p.waitUntilExit()
                let done = progress()
                if p.terminationReason == .uncaughtSignal && done > 0 && done < total { partial += 1 }
                // Between kills: nothing lost, everything readable.
                #expect(everyFileReads(), "after a kill of \(args)")
                if p.terminationReason == .exit { break }
                withExtendedLifetime(run) {}
            }
            return (kills, partial)
        }

        // encrypt
        let e = try killRepeatedly(["encrypt"], rounds: 8, progress: sealedFiles, total: rows.count)
        let finished = try callrec(["encrypt", "--json", "--data", data])
        #expect(finished.status == 0, "\(finished.err)")
        #expect(sealedFiles() == rows.count)
        #expect(everyFileReads())
        let verify = try callrec(["verify", "--json", "--data", data])
        #expect(verify.status == 0 && verify.out.contains("\"ok\" : \(rows.count)"), "\(verify.out)")

        // keys rotate, one key per batch so that kills land mid-rotation
        let keys = try catalog.keys.everyDataKey()
        #expect(keys.count == rows.count)
        let oldKEK = try catalog.keys.currentKEK().id
        func rewrapped() -> Int {
            ((try? catalog.keys.countsByKEK()) ?? [:]).filter { $0.key != oldKEK }.values.reduce(0, +)
        }
        let r = try killRepeatedly(["keys", "rotate", "--batch", "1"], rounds: 6, progress: rewrapped, total: rows.count)
        let rotated = try callrec(["keys", "rotate", "--json", "--data", data])
        #expect(rotated.status == 0, "\(rotated.err)")
        let fresh = KeyStore(data: DataDirectory(data), environment: [:])
        let counts = try fresh.countsByKEK()
        #expect(counts.count == 1 && counts.values.first == rows.count, "\(counts)")
        let after = try fresh.everyDataKey()
        func bytes(_ k: DataKey) -> [UInt8] { k.key.withUnsafeBytes { Array($0) } }
        #expect(Dictionary(uniqueKeysWithValues: after.map { ($0.id, bytes($0)) }) == Dictionary(uniqueKeysWithValues: keys.map { ($0.id, bytes($0)) }))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data + "/secrets/kek").filter { $0.hasSuffix(".kek") }.count == 1)
        #expect(everyFileReads())

        // decrypt
        let d = try killRepeatedly(["decrypt"], rounds: 6, progress: { rows.count - sealedFiles() }, total: rows.count)
        #expect(try callrec(["decrypt", "--data", data]).status == 0)
        #expect(sealedFiles() == 0 && everyFileReads())
        print("encryption SIGKILL test: encrypt \(e), rotate \(r), decrypt \(d) (kills, mid-work)")
        #expect(e.partial > 0 && r.partial > 0, "no kill landed in the middle of the work")
    }

    /// CALLREC_ENCRYPTION=on through the binary: the ingest seals, show/verify/keys status work,
    /// a later part appended to a sealed recording stays sealed and holds both parts; a bad
    /// value is refused.
    @Test func ingestSealsWhenOn() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let env = ["CALLREC_ENCRYPTION": "on"]
        #expect(try callrec(["ingest", "--data", data, placeFixture("speech.wav", at: dir.file("a/1732467600.5.wav"))], env: env).status == 0)
        let catalog = try Catalog(data: DataDirectory(data))
        let first = try #require(try catalog.recording("1732467600.5"))
        let path = catalog.data.absolute(first.opusPath)
        #expect(SealFormat.isSealed(path: path))
        #expect(try StoredFile.sha256(of: path) == first.opusSHA256)
        // MixMonitor's `a`: a later part of the same call.
        // Other bytes (the same bytes again would be a duplicate, only removed).
        let second = try placeFixture("speech.wav", at: dir.file("b/1732467600.5.wav"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: second))
        bytes[bytes.count - 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: second))
        #expect(try callrec(["ingest", "--data", data, second], env: env).status == 0)
        let both = try #require(try catalog.recording("1732467600.5"))
        #expect(both.samples == 2 * first.samples && both.parts == 2)
        let bothSHA = try StoredFile.sha256(of: path)
        #expect(SealFormat.isSealed(path: path) && bothSHA == both.opusSHA256)
        let verify = try callrec(["verify", "--data", data])
        #expect(verify.status == 0 && verify.out.contains("1 ok"), "\(verify.out)")
        let status = try callrec(["keys", "status", "--json", "--data", data])
        #expect(status.status == 0 && status.out.contains("\"keys\" : 1"), "\(status.out)")
        let bad = try callrec(["verify", "--data", data], env: ["CALLREC_ENCRYPTION": "yes"])
        #expect(bad.status != 0 && bad.err.contains("CALLREC_ENCRYPTION"))
    }
}
