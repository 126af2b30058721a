import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

@testable import CallrecCompliance

/// Crypto-shredding: a removal destroys the recording's data key, so every copy of its sealed
/// file (a backup) is noise from then on.
@Suite(.offThePool)
struct ShreddingTests {
    /// A catalog whose ingest seals (CALLREC_ENCRYPTION=on).
    static func sealedStore() throws -> (Store, Ingestor) {
        let s = try Store()
        var t = Transcoder()
        let keys = s.catalog.keys
        t.sealing = { try keys.dataKey(forRecording: $0) }
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return (s, Ingestor(catalog: s.catalog, transcoder: t, naming: try SpoolNaming(), spoolRoot: nil, logger: logger))
    }

    static func add(_ s: Store, _ ingestor: Ingestor, _ uniqueid: String, lead: String) throws -> RecordingRow {
        let path = try placeFixture("speech.wav", at: s.dir.file("\(uniqueid).wav"))
        try s.catalog.setMetadata(uniqueid, Metadata(company: "1", leadNumber: lead))
        guard case .ingested = ingestor.ingest(path: path) else { throw DecodeError(message: "ingest failed") }
        return try s.catalog.recording(uniqueid)!
    }

    @Test func erasureLeavesNothingThatDecryptsACopy() throws {
        let (s, ingestor) = try Self.sealedStore()
        let erased = try Self.add(s, ingestor, "1732467600.1", lead: "5511999990000")
        let kept = try Self.add(s, ingestor, "1732467600.2", lead: "5511888880000")
        let path = s.catalog.data.absolute(erased.opusPath)
        #expect(SealFormat.isSealed(path: path))
        #expect(try StoredFile.sha256(of: path) == erased.opusSHA256)
        // The backup: a copy of the sealed file, taken before the erasure.
        let copy = s.dir.file("backup.opus")
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        #expect(try StoredFile.sha256(of: copy) == erased.opusSHA256)  // readable while the key lives

        let report = try Remover(catalog: s.catalog).erase(leadNumber: "5511999990000", actor: "t", now: Date(), numberKey: "k")
        #expect(report.count == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try !s.catalog.keys.hasKey(forRecording: erased.uniqueid))
        // Nothing the system still holds opens the copy: not the key stores registered in this
        // process, not any data key left in the store, under any live KEK.
        #expect(throws: SealError.self) { _ = try StoredFile(path: copy) }
        let left = try s.catalog.keys.everyDataKey()
        #expect(left.count == 1)
        for k in left {
            #expect(throws: SealError.self) { _ = try StoredFile(path: copy, key: k.key).sha256() }
        }
        // Nor does the key store's file hold the destroyed key's wrapped bytes (secure_delete, WAL checkpointed).
        // The other recording is intact.
        #expect(try StoredFile.sha256(of: s.catalog.data.absolute(kept.opusPath)) == kept.opusSHA256)
        let verify = try IntegrityChecker(catalog: s.catalog).verify()
        #expect(verify.ok == 1 && verify.damaged.isEmpty && verify.missing.isEmpty)

        // The copy restored into audio/ (an old backup put back): start-up recovery knows it is
        // the removed recording's (tombstone, key gone) and removes it; it is never adopted.
        try FileManager.default.copyItem(atPath: copy, toPath: path)
        let recovered = ingestor.recover(pendingUniqueids: [])
        #expect(recovered.finishedRemovals == 1 && recovered.adoptedFiles == 0, "\(recovered)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// verify tells a sealed file whose key is gone (shredded) from a damaged one.
    @Test func verifyReportsShreddedNotDamaged() throws {
        let (s, ingestor) = try Self.sealedStore()
        let a = try Self.add(s, ingestor, "1732467600.1", lead: "1")
        let b = try Self.add(s, ingestor, "1732467600.2", lead: "2")
        try s.catalog.keys.destroy(uniqueids: [a.uniqueid])  // as a lost key store row would leave it
        let path = s.catalog.data.absolute(b.opusPath)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[200] ^= 1
        try bytes.write(to: URL(fileURLWithPath: path))
        let r = try IntegrityChecker(catalog: s.catalog).verify()
        #expect(r.shredded == [a.uniqueid])
        #expect(r.damaged == [b.uniqueid])
    }

    /// Delete, purge: each destroys the key before the file goes.
    @Test func purgeDestroysKeys() throws {
        let (s, ingestor) = try Self.sealedStore()
        let a = try Self.add(s, ingestor, "1732467600.1", lead: "1")
        #expect(try s.catalog.keys.hasKey(forRecording: a.uniqueid))
        let r = try Remover(catalog: s.catalog).purge(now: Date(), defaultDays: 30, dryRun: false)
        #expect(r.count == 1)
        #expect(try !s.catalog.keys.hasKey(forRecording: a.uniqueid))
        #expect(try s.catalog.keys.count() == 0)
    }

    /// Exports of sealed recordings hold the plaintext Opus, checked against the catalog.
    @Test func exportsSealedRecordingsAsOpus() throws {
        let (s, ingestor) = try Self.sealedStore()
        let a = try Self.add(s, ingestor, "1732467600.1", lead: "1")
        let out = s.dir.file("e.zip")
        let summary = try Exporter(catalog: s.catalog).export(
            ListQuery(from: Date(timeIntervalSince1970: 1_732_400_000), to: Date(timeIntervalSince1970: 1_732_500_000)), to: out)
        #expect(summary.recordings == 1)
        let unzip = try run("unzip", ["-p", out, a.opusPath])
        let plain = s.dir.file("plain.opus")
        try unzip.out.write(to: URL(fileURLWithPath: plain))
        #expect(try Transcoder.sha256(of: plain) == a.opusSHA256)
        #expect(!SealFormat.isSealed(path: plain))
    }
}
