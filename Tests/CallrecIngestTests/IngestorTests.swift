import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

@testable import CallrecIngest

/// A spool and a data directory in a temporary folder, and an ingestor over them.
final class Bench {
    let dir = TempDir()
    let spool: String
    let data: DataDirectory
    let catalog: Catalog
    let ingestor: Ingestor

    init(pattern: String? = nil) throws {
        spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        data = DataDirectory(dir.file("data"))
        catalog = try Catalog(data: data)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(pattern: pattern), spoolRoot: spool, logger: logger)
    }

    /// Copies a fixture into the spool under `name`.
    @discardableResult
    func drop(_ fixture: String, as name: String) throws -> String {
        try placeFixture(fixture, at: spool + "/" + name)
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Every file under the data directory's audio folder.
    var audioFiles: [String] {
        (FileManager.default.enumerator(atPath: data.audioRoot)?.allObjects as? [String] ?? []).filter { !$0.hasSuffix("/") && $0.contains(".") }
    }
}

@Suite(.offThePool)
struct IngestorTests {
    @Test func ingestsOnceAndRemovesTheSource() throws {
        let b = try Bench()
        let src = try b.drop("speech.wav", as: "1732467600.42.wav")
        #expect(b.ingestor.ingest(path: src) == .ingested(uniqueid: "1732467600.42", parts: 1))
        #expect(!b.exists(src))
        let row = try #require(try b.catalog.recording("1732467600.42"))
        #expect(row.opusPath == "audio/2024/11/24/1732467600.42.opus")
        #expect(b.exists(b.data.absolute(row.opusPath)))
        #expect(row.samples == 48000 && row.durationMs == 6000)
        #expect(row.sourceSHA256 == (try Transcoder.sha256(of: Paths.fixture("speech.wav"))))
        #expect(row.opusSHA256 == (try Transcoder.sha256(of: b.data.absolute(row.opusPath))))
        #expect(try b.catalog.waveform("1732467600.42") != nil)

        // The same file again (a copy restored from backup, a second spool scan): one recording.
        let again = try b.drop("speech.wav", as: "1732467600.42.wav")
        #expect(b.ingestor.ingest(path: again) == .duplicate(uniqueid: "1732467600.42"))
        #expect(!b.exists(again))
        #expect(try b.catalog.count() == 1)
        #expect(b.audioFiles == ["2024/11/24/1732467600.42.opus"])
    }

    /// MixMonitor's `a` option: a later file with the same uniqueid is the rest of the call, and
    /// the stored audio is part 1 then part 2: part 1's Opus packets kept, and decoded
    /// (libopusfile), its first 6 s are the speech of part 1 and its last 2 s the 440 Hz tone of part 2.
    @Test func appendsTheRestOfTheCall() throws {
        let b = try Bench()
        try b.catalog.setMetadata("1732467600.7", Metadata(company: "42", leadNumber: "5511999990000"))
        let tone = (0..<16000).map { Int16(12000 * sin(2 * Double.pi * 440 * Double($0) / 8000)) }
        let tonePath = b.dir.file("tone.wav")
        try (MixMonitorWriter.header(dataBytes: tone.count * 2, sampleRate: 8000) + tone.withUnsafeBytes { Data($0) }).write(to: URL(fileURLWithPath: tonePath))
        #expect(b.ingestor.ingest(path: try b.drop("speech.wav", as: "1732467600.7.wav")) == .ingested(uniqueid: "1732467600.7", parts: 1))
        let stored = try OggLayout.file(b.data.absolute(try #require(try b.catalog.recording("1732467600.7")).opusPath))
        #expect(b.ingestor.ingest(path: try b.drop(tonePath, as: "1732467600.7.wav")) == .ingested(uniqueid: "1732467600.7", parts: 2))
        let row = try #require(try b.catalog.recording("1732467600.7"))
        // Part 1 did not go through the codec again: its packets before the seam (48,000 samples =
        // 300 frames of 160) are in the file as they were stored (OggAppend.swift).
        #expect(Array(try OggLayout.file(b.data.absolute(row.opusPath)).audio.prefix(300)) == Array(stored.audio.prefix(300)))
        #expect(row.samples == 48000 + 16000)
        #expect(row.parts == 2)
        #expect(row.company == "42" && row.leadNumber == "5511999990000")
        let parts = try b.catalog.parts(of: "1732467600.7")
        #expect(parts.map(\.samples) == [48000, 16000])
        let info = try OpusVerifier.inspect(path: b.data.absolute(row.opusPath), decodeRate: 8000)
        #expect(info.samples(at: 8000) == 64000)
        #expect(info.sourceSHA256s == parts.map(\.sha256))
        #expect(info.tags["COMPANY"] == "42")
        #expect(row.durationMs == 8000)

        // Order: decoded at 48 kHz, taken at 8 kHz, against each part's own samples.
        let decoded48 = try opusfileDecode(b.data.absolute(row.opusPath)).pcm
        let decoded = stride(from: 0, to: decoded48.count, by: 6).map { Double(decoded48[$0]) }
        try #require(decoded.count == 64000)
        let speech = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        let part1 = stride(from: 0, to: speech.count - 1, by: 2).map { Double(Int16(bitPattern: UInt16(speech[$0]) | UInt16(speech[$0 + 1]) << 8)) }
        let part2 = tone.map(Double.init)
        /// Normalised correlation of `a` with `decoded` from `offset`, over `a[range]`.
        func similarity(_ a: [Double], _ range: Range<Int>, at offset: Int) -> Double {
            var ab = 0.0, aa = 0.0, bb = 0.0
            for i in range {
                ab += a[i] * decoded[offset + i]
                aa += a[i] * a[i]
                bb += decoded[offset + i] * decoded[offset + i]
            }
            return ab / max(1, (aa * bb).squareRoot())
        }
        let first = similarity(part1, 400..<47600, at: 0)
        let second = similarity(part2, 400..<15600, at: 48000)
        #expect(first > 0.7, "the first 6 s are not part 1 (similarity \(first))")
        #expect(second > 0.7, "the last 2 s are not part 2 (similarity \(second))")
        // And not the other way round.
        #expect(similarity(part2, 400..<15600, at: 0) < 0.3)
    }

    @Test func metadataFromThePath() throws {
        let b = try Bench(pattern: "{company}/{agent}-{lead_number}-{uniqueid}.{ext}")
        let src = try b.drop("speech.WAV", as: "42/1001-5511999990000-1732467600.8.WAV")
        #expect(b.ingestor.ingest(path: src) == .ingested(uniqueid: "1732467600.8", parts: 1))
        let row = try #require(try b.catalog.recording("1732467600.8"))
        #expect(row.company == "42" && row.agent == "1001" && row.leadNumber == "5511999990000")
        #expect(row.sourceFormat == "wav")
    }

    @Test func badAudioIsQuarantinedNeverDeleted() throws {
        let b = try Bench()
        let src = try b.drop("bad-random.wav", as: "1732467600.9.wav")
        guard case .quarantined(let reason) = b.ingestor.ingest(path: src) else {
            Issue.record("not quarantined")
            return
        }
        #expect(reason.contains("not audio"))
        #expect(!b.exists(src))
        let q = try #require(try b.catalog.quarantined().first)
        #expect(q.sourceName == "1732467600.9.wav")
        let kept = b.data.absolute(q.path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: kept)) == Data(contentsOf: URL(fileURLWithPath: Paths.fixture("bad-random.wav"))))
        #expect(try String(contentsOfFile: kept + ".reason.txt", encoding: .utf8).contains("not audio"))
        #expect(try b.catalog.count() == 0)
    }

    /// No uniqueid in the name and nothing usable as one: quarantined with that reason.
    @Test func unnamedFile() throws {
        let b = try Bench()
        let src = try b.drop("speech.wav", as: "call recording (1).wav")
        guard case .quarantined(let reason) = b.ingestor.ingest(path: src) else {
            Issue.record("not quarantined")
            return
        }
        #expect(reason.contains("uniqueid"))
    }

    /// Trouble on the machine is not the audio's fault: the source stays for a retry.
    @Test func unwritableDataDirectoryDefers() throws {
        let b = try Bench()
        let src = try b.drop("speech.wav", as: "1732467600.10.wav")
        try FileManager.default.createDirectory(atPath: b.data.audioRoot + "/2024", withIntermediateDirectories: true)
        // A file where the day's folder should be: the pipeline cannot create its output.
        try Data().write(to: URL(fileURLWithPath: b.data.audioRoot + "/2024/11"))
        guard case .deferred = b.ingestor.ingest(path: src) else {
            Issue.record("not deferred")
            return
        }
        #expect(b.exists(src))
        try FileManager.default.removeItem(atPath: b.data.audioRoot + "/2024/11")
        #expect(b.ingestor.ingest(path: src) == .ingested(uniqueid: "1732467600.10", parts: 1))
    }
}

/// Start-up recovery after a crash at each step of the transaction.
@Suite(.offThePool)
struct RecoveryTests {
    @Test func strayTemporaryFilesAreRemoved() throws {
        let b = try Bench()
        let dir = b.data.audioRoot + "/2024/11/24"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("half".utf8).write(to: URL(fileURLWithPath: dir + "/.1732467600.42.opus.partial-1a2b")) 
        let report = b.ingestor.recover(pendingUniqueids: [])
        #expect(report.removedTemporaryFiles == 1)
        #expect(b.audioFiles.isEmpty)
    }

    /// Crash after the commit, before the source was removed: the source is only removed.
    @Test func committedRowWithSourceStillInSpool() throws {
        let b = try Bench()
        let src = try b.drop("speech.wav", as: "1732467600.42.wav")
        let keep = b.dir.file("keep.wav")
        try FileManager.default.copyItem(atPath: src, toPath: keep)
        _ = b.ingestor.ingest(path: src)
        try FileManager.default.moveItem(atPath: keep, toPath: src)  // as if unlink never happened
        let opus = try #require(try b.catalog.recording("1732467600.42")).opusSHA256
        #expect(b.ingestor.ingest(path: src) == .duplicate(uniqueid: "1732467600.42"))
        #expect(!b.exists(src))
        #expect(try b.catalog.recording("1732467600.42")?.opusSHA256 == opus)
    }

    /// Crash after the rename, before the commit: a file with no row. With its source still in
    /// the spool, the ingest redoes it; with no source, recovery takes it in from its tags.
    @Test func fileWithNoRow() throws {
        let b = try Bench()
        let src = try b.drop("speech.wav", as: "1732467600.42.wav")
        _ = b.ingestor.ingest(path: src)
        let row = try #require(try b.catalog.recording("1732467600.42"))
        let firstParts = try b.catalog.parts(of: "1732467600.42")
        try b.catalog.pool.write { try $0.execute(sql: "DELETE FROM recording") }

        // Source still there: ingesting it redoes it exactly — measured from the source, as the
        // first ingest was, not adopted from the stored (lossy) audio — and gives one recording.
        try b.drop("speech.wav", as: "1732467600.42.wav")
        #expect(b.ingestor.recover(pendingUniqueids: ["1732467600.42"]).adoptedFiles == 0)
        #expect(b.ingestor.ingest(path: src) == .ingested(uniqueid: "1732467600.42", parts: 1))
        #expect(!b.exists(src))
        let redone = try #require(try b.catalog.recording("1732467600.42"))
        #expect(redone.samples == 48000)
        #expect(redone.silence == row.silence)
        #expect(redone.peakDBFS == row.peakDBFS && redone.rmsDBFS == row.rmsDBFS && redone.clippedSamples == row.clippedSamples)
        #expect(redone.sourceBytes == row.sourceBytes && redone.sourceFormat == row.sourceFormat)
        let redoneParts = try b.catalog.parts(of: "1732467600.42")
        #expect(redoneParts.map(\.sha256) == firstParts.map(\.sha256))
        #expect(redoneParts.map(\.bytes) == firstParts.map(\.bytes) && redoneParts.map(\.name) == firstParts.map(\.name))
        #expect(b.audioFiles == ["2024/11/24/1732467600.42.opus"])

        // Source gone (the catalog was lost): recovery adopts the file from its tags and audio.
        try b.catalog.pool.write { try $0.execute(sql: "DELETE FROM recording") }
        let report = b.ingestor.recover(pendingUniqueids: [])
        #expect(report.adoptedFiles == 1)
        let adopted = try #require(try b.catalog.recording("1732467600.42"))
        #expect(adopted.samples == redone.samples)
        #expect(adopted.startedAt == redone.startedAt)
        #expect(adopted.opusSHA256 == redone.opusSHA256)
        #expect(adopted.sourceSHA256 == redone.sourceSHA256)
        #expect(try b.catalog.parts(of: "1732467600.42").map(\.sha256) == [redone.sourceSHA256])
    }
}

extension IngestorTests {
    /// Two calls can have identical bytes (two silent calls of the same length): both are kept.
    @Test func identicalBytesUnderTwoUniqueids() throws {
        let b = try Bench()
        #expect(b.ingestor.ingest(path: try b.drop("silence.wav", as: "1732467600.1.wav")) == .ingested(uniqueid: "1732467600.1", parts: 1))
        #expect(b.ingestor.ingest(path: try b.drop("silence.wav", as: "1732467600.2.wav")) == .ingested(uniqueid: "1732467600.2", parts: 1))
        #expect(try b.catalog.count() == 2)
    }
}
