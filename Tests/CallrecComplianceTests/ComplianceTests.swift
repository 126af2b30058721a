import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

@testable import CallrecCompliance

/// A catalog with real recordings in it.
final class Store {
    let dir = TempDir()
    let catalog: Catalog
    let ingestor: Ingestor

    init() throws {
        catalog = try Catalog(data: DataDirectory(dir.file("data")))
        var logger = Logger(label: "test")
        logger.logLevel = .error
        ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
    }

    @discardableResult
    func add(_ uniqueid: String, company: String? = nil, lead: String? = nil, fixture: String = "speech.wav") throws -> RecordingRow {
        let path = try placeFixture(fixture, at: dir.file("\(uniqueid).wav"))
        try catalog.setMetadata(uniqueid, Metadata(company: company, leadNumber: lead))
        guard case .ingested = ingestor.ingest(path: path) else { throw DecodeError(message: "ingest failed") }
        return try catalog.recording(uniqueid)!
    }

    func hold(_ id: String) throws {
        try catalog.setHold(id, on: true, reason: "court", audit: AuditEntry(at: Date(), actor: "t", role: nil, company: nil, action: "hold", uniqueid: id))
    }

    func audioExists(_ row: RecordingRow) -> Bool { FileManager.default.fileExists(atPath: catalog.data.absolute(row.opusPath)) }
}

@Suite(.offThePool)
struct RetentionTests {
    /// 2024-11-24 calls are long past 90 days in 2026; a company override keeps its calls; held
    /// ones stay whatever their age; each removal leaves a tombstone and an audit entry.
    @Test func purgeHonoursRetentionOverridesAndHolds() throws {
        let s = try Store()
        let a = try s.add("1732467600.1", company: "1")
        let b = try s.add("1732467600.2", company: "2")
        let c = try s.add("1732467600.3", company: "1")
        let fresh = try s.add("1764060000.4", company: "1")  // 2025-11-25
        try s.hold(c.uniqueid)
        try s.catalog.setRetention(company: "2", days: 10_000)
        let now = Date(timeIntervalSince1970: 1_764_064_800)  // 2025-11-25T10:00Z

        let dry = try Remover(catalog: s.catalog).purge(now: now, defaultDays: 90, dryRun: true)
        #expect(dry.uniqueids == [a.uniqueid] && dry.held == [c.uniqueid])
        #expect(try s.catalog.count() == 4)

        let report = try Remover(catalog: s.catalog).purge(now: now, defaultDays: 90, dryRun: false)
        #expect(report.uniqueids == [a.uniqueid])
        #expect(report.audioSeconds == 6 && report.bytes == a.opusBytes)
        #expect(try s.catalog.recording(a.uniqueid) == nil && !s.audioExists(a))
        for kept in [b, c, fresh] { #expect(try s.catalog.recording(kept.uniqueid) != nil && s.audioExists(kept)) }
        #expect(try s.catalog.tombstone(a.uniqueid) == a.opusSHA256)
        #expect(try s.catalog.auditLog(from: nil, to: nil).contains { $0.action == "purge" && $0.uniqueid == a.uniqueid && $0.company == nil })
        // Again: nothing more to do.
        #expect(try Remover(catalog: s.catalog).purge(now: now, defaultDays: 90, dryRun: false).count == 0)
    }

    /// A purge that died between its commit and removing the files: recovery finishes it, and
    /// never brings the recording back.
    @Test func interruptedPurgeIsFinished() throws {
        let s = try Store()
        let a = try s.add("1732467600.1")
        _ = try s.catalog.remove([a], reason: "purge", actor: "retention", now: Date())  // the commit, and then the crash
        #expect(s.audioExists(a))
        let report = s.ingestor.recover(pendingUniqueids: [])
        #expect(report.finishedRemovals == 1 && report.adoptedFiles == 0)
        #expect(!s.audioExists(a))
        #expect(try s.catalog.recording(a.uniqueid) == nil)
    }

    @Test func erasureKeepsHeldAndForgetsPendingMetadata() throws {
        let s = try Store()
        let a = try s.add("1732467600.1", lead: "5511999990000")
        let b = try s.add("1732467600.2", lead: "5511999990000")
        let other = try s.add("1732467600.3", lead: "5511888880000")
        try s.catalog.setMetadata("1732467700.9", Metadata(leadNumber: "5511999990000"))  // audio yet to come
        try s.hold(b.uniqueid)
        let report = try Remover(catalog: s.catalog).erase(leadNumber: "5511999990000", actor: "dpo", now: Date())
        #expect(report.uniqueids == [a.uniqueid] && report.held == [b.uniqueid])
        #expect(try s.catalog.recording(a.uniqueid) == nil && !s.audioExists(a))
        #expect(try s.catalog.recording(b.uniqueid) != nil && s.audioExists(b))
        #expect(try s.catalog.recording(other.uniqueid) != nil)
        #expect(try s.catalog.metadata(for: "1732467700.9") == nil)
        let log = try s.catalog.auditLog(from: nil, to: nil)
        #expect(log.contains { $0.action == "erasure" && $0.detail?.contains("sha256") == true })
        #expect(!log.contains { $0.detail?.contains("5511999990000") == true }, "the audit keeps no phone number")
    }
}

@Suite(.offThePool)
struct IntegrityTests {
    @Test func verifyCatchesOneFlippedByteAndAMissingFile() throws {
        let s = try Store()
        let a = try s.add("1732467600.1")
        let b = try s.add("1732467600.2", fixture: "u8.wav")
        _ = try s.add("1732467600.3", fixture: "silence.wav")
        #expect(try IntegrityChecker(catalog: s.catalog).verify() == { var r = VerifyReport(); r.checked = 3; r.ok = 3; return r }())
        let path = s.catalog.data.absolute(a.opusPath)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        try FileManager.default.removeItem(atPath: s.catalog.data.absolute(b.opusPath))
        let report = try IntegrityChecker(catalog: s.catalog).verify()
        #expect(report.damaged == [a.uniqueid] && report.missing == [b.uniqueid] && report.ok == 1)
    }

    /// The catalog lost: reindex takes every file back from its tags, same ids, hashes and times.
    @Test func reindexGivesBackTheCatalog() throws {
        let s = try Store()
        let rows = try [s.add("1732467600.1", company: "42", lead: "5511"), s.add("1732467600.2", fixture: "stereo16k.wav")]
        try s.catalog.pool.write { try $0.execute(sql: "DELETE FROM recording; DELETE FROM metadata") }
        #expect(s.ingestor.recover(pendingUniqueids: []).adoptedFiles == 2)
        for row in rows {
            let back = try #require(try s.catalog.recording(row.uniqueid))
            #expect(back.startedAt == row.startedAt && back.opusSHA256 == row.opusSHA256 && back.sourceSHA256 == row.sourceSHA256)
            #expect(back.company == row.company && back.leadNumber == row.leadNumber)
            #expect(back.samples == row.samples && back.channels == row.channels && back.sampleRate == row.sampleRate)
        }
    }
}

@Suite(.offThePool)
struct ExportTests {
    /// A real unzip opens it, and every file matches the manifest.
    @Test func exportOpensAndMatchesItsManifest() throws {
        let s = try Store()
        try s.add("1732467600.1", company: "42")
        try s.add("1732467700.2", company: "42", fixture: "stereo16k.wav")
        try s.add("1732467600.3", company: "7")
        try s.add("1732640400.4", company: "42")  // two days later: outside the range
        let out = s.dir.file("export.zip")
        let day = try TimeParsing.parse("2024-11-24", zone: TimeZone(identifier: "UTC")!)
        let summary = try Exporter(catalog: s.catalog).export(ListQuery(from: day, to: day.addingTimeInterval(86400), company: "42"), to: out)
        #expect(summary.recordings == 2)
        #expect(try run("unzip", ["-tq", out]).status == 0)
        let unpacked = s.dir.file("unzipped")
        #expect(try run("unzip", ["-q", out, "-d", unpacked]).status == 0)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: unpacked + "/manifest.json"))) as? [String: Any])
        let items = try #require(manifest["recordings"] as? [[String: Any]])
        #expect(items.map { $0["uniqueid"] as? String } == ["1732467600.1", "1732467700.2"])
        for item in items {
            let file = unpacked + "/" + (item["file"] as! String)
            #expect(try Transcoder.sha256(of: file) == item["sha256"] as? String)
            #expect(try OpusVerifier.inspect(path: file).tags["UNIQUEID"] == item["uniqueid"] as? String)
        }
        let csv = try String(contentsOfFile: unpacked + "/manifest.csv", encoding: .utf8)
        #expect(csv.split(separator: "\r\n").count == 3)
        #expect(!s.dir.contents.contains { $0.contains(".partial-") })
    }

    /// A damaged file fails the export; nothing is left at OUT.
    @Test func damagedFileFailsTheExport() throws {
        let s = try Store()
        let a = try s.add("1732467600.1")
        let path = s.catalog.data.absolute(a.opusPath)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[100] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let out = s.dir.file("export.zip")
        #expect(throws: ExportError.self) { try Exporter(catalog: s.catalog).export(ListQuery(), to: out) }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// A call at 22:30 in São Paulo on the 24th is the 25th in UTC: it belongs to the 24th there.
    @Test func timeZoneEdges() throws {
        let s = try Store()
        try s.add("1732498200.1")  // 2024-11-25T01:30:00Z = 2024-11-24 22:30 in São Paulo (UTC−3)
        let sp = TimeZone(identifier: "America/Sao_Paulo")!
        let from = try TimeParsing.parse("2024-11-24", zone: sp)
        let to = try TimeParsing.parse("2024-11-25", zone: sp)
        #expect(try s.catalog.list(ListQuery(from: from, to: to)).items.count == 1)
        let utcFrom = try TimeParsing.parse("2024-11-24", zone: TimeZone(identifier: "UTC")!)
        #expect(try s.catalog.list(ListQuery(from: utcFrom, to: utcFrom.addingTimeInterval(86400))).items.isEmpty)
        #expect(throws: TimeParsing.Invalid.self) { try TimeParsing.parse("2024-02-30", zone: sp) }
        #expect(try TimeParsing.parse("2024-11-24T22:30:00-03:00", zone: sp) == Date(timeIntervalSince1970: 1_732_498_200))
        // The formatter alone took these as March 2nd and the next day.
        for impossible in ["2026-02-30T00:00:00Z", "2026-11-24T24:00:00Z", "2026-11-24T23:60:00Z", "2026-13-01T00:00:00Z", "2026-11-24T10:00:00+24:00", "2025-02-29T00:00:00Z"] {
            #expect(throws: TimeParsing.Invalid.self, "\(impossible)") { try TimeParsing.parse(impossible, zone: sp) }
        }
        #expect(try TimeParsing.parse("2024-02-29T23:59:59.5Z", zone: sp).timeIntervalSince1970 == 1_709_251_199.5)
    }

    @Test func csvFieldsAreSafe() {
        #expect(Exporter.csvField("a,b") == "\"a,b\"")
        #expect(Exporter.csvField("=cmd()") == "'=cmd()")
        #expect(Exporter.csvField("-12.5") == "-12.5")
        // Spreadsheets strip a leading TAB or CR before looking for a formula.
        #expect(Exporter.csvField("\t=HYPERLINK(\"http://x\")") == "\"'\t=HYPERLINK(\"\"http://x\"\")\"")
        #expect(Exporter.csvField("\r=1+1") == "\"'\r=1+1\"")
        #expect(Exporter.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
    }
}
