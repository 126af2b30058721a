import CallrecMedia
import CallrecTestSupport
import Foundation
import GRDB
import Testing

@testable import CallrecCatalog

/// A row as the ingest would commit it, with made-up measurements.
func sampleRow(_ id: String, startedAt: Int, company: String? = nil, lead: String? = nil) -> RecordingRow {
    let silence = Silence(thresholdDBFS: -40, minMs: 500, totalMs: 0, ratio: 0, longestMs: 0, leadingMs: 0, trailingMs: 0, segments: [])
    let m = Measurements(samples: 8000, sampleRate: 8000, channels: 1, silence: silence, levels: Levels(peakDBFS: -3, rmsDBFS: -20, clippedSamples: 0))
    return RecordingRow(
        uniqueid: id, startedAt: Date(timeIntervalSince1970: TimeInterval(startedAt)), metadata: Metadata(company: company, leadNumber: lead),
        measurements: m, source: ("wav", 16044, String(repeating: "a", count: 64)),
        opusPath: DataDirectory.audioRelativePath(uniqueid: id, startedAt: Date(timeIntervalSince1970: TimeInterval(startedAt))),
        opus: (2000, 16000, String(repeating: "b", count: 64)), parts: 1, now: Date())
}

func part(_ id: String, sha: String) -> SourcePartRow {
    SourcePartRow(uniqueid: id, part: 1, sha256: sha, bytes: 16044, format: "wav", name: "\(id).wav", samples: 8000, ingestedAt: 0)
}

@Suite(.offThePool)
struct CatalogTests {
    @Test func commitAndRead() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        let row = sampleRow("1732467600.42", startedAt: 1_732_467_600, company: "42")
        try catalog.commit(recording: row, parts: [part(row.uniqueid, sha: "s1")], waveform: Data("{}".utf8))
        #expect(try catalog.recording("1732467600.42") == row)
        #expect(try catalog.parts(of: "1732467600.42").map(\.sha256) == ["s1"])
        #expect(try catalog.waveform("1732467600.42") == Data("{}".utf8))
        #expect(row.opusPath == "audio/2024/11/24/1732467600.42.opus")
        let json = RecordingJSON(row)
        #expect(json.startedAt == "2024-11-24T17:00:00Z")
        #expect(json.durationMs == 1000)
    }

    /// A second process — the built `callrec`, as the CLI runs while `serve` holds the catalog —
    /// writes while this one holds it open and writes too: each sees the other's rows.
    @Test func aSecondProcessWritesAndReadsTheSameFile() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        try catalog.commit(recording: sampleRow("1732467600.42", startedAt: 1_732_467_600), parts: [], waveform: Data())
        let source = try placeFixture("speech.wav", at: dir.file("spool/1732467600.43.wav"))
        let ingest = try CallrecProcess(["ingest", "--data", dir.path, source])
        let cli = ingest.process
        // Commits here while the other process runs: truly concurrent writers on one file.
        var during = 0
        while cli.isRunning && during < 500 {
            try catalog.commit(recording: sampleRow("1732467700.\(during)", startedAt: 1_732_467_700), parts: [], waveform: Data())
            during += 1
        }
        cli.waitUntilExit()
        #expect(cli.terminationStatus == 0, "\(ingest.err)")
        #expect(during > 0, "no commit here while the other process ran")
        #expect(try catalog.recording("1732467600.43")?.samples == 48000, "this process sees the other's row")
        let list = try callrec(["list", "--json", "--data", dir.path])
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]]).compactMap { $0["uniqueid"] as? String }
        #expect(Set(ids) == Set(["1732467600.42", "1732467600.43"] + (0..<during).map { "1732467700.\($0)" }), "the other process sees this one's rows")
    }

    @Test func metadataBeforeAudio() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        try catalog.setMetadata("1732467600.50", Metadata(company: "7", leadNumber: "5511"))
        try catalog.setMetadata("1732467600.50", Metadata(agent: "1001"))
        #expect(try catalog.metadata(for: "1732467600.50") == Metadata(company: "7", agent: "1001", leadNumber: "5511"))
        try catalog.commit(recording: sampleRow("1732467600.50", startedAt: 1_732_467_600), parts: [], waveform: Data())
        try catalog.setMetadata("1732467600.50", Metadata(company: "8"))
        #expect(try catalog.recording("1732467600.50")?.company == "8")
    }

    @Test func legalHoldSurvivesARecommit() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        var row = sampleRow("1732467600.1", startedAt: 1_732_467_600)
        try catalog.commit(recording: row, parts: [], waveform: Data())
        try catalog.pool.write { try $0.execute(sql: "UPDATE recording SET legal_hold = 1") }
        row.samples = 16000
        try catalog.commit(recording: row, parts: [], waveform: Data())
        #expect(try catalog.recording(row.uniqueid)?.legalHold == true)
        #expect(try catalog.recording(row.uniqueid)?.samples == 16000)
    }

    @Test func pagesAreStableAndFiltered() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        // 25 calls over three companies, several starting in the same second.
        for i in 0..<25 {
            let row = sampleRow("17324676\(String(format: "%02d", i / 3)).\(i)", startedAt: 1_732_467_600 + i / 3, company: "\(i % 3)", lead: i % 5 == 0 ? "5511" : nil)
            try catalog.commit(recording: row, parts: [], waveform: Data())
        }
        var seen: [String] = []
        var q = ListQuery(limit: 4)
        repeat {
            let page = try catalog.list(q)
            #expect(page.items.count <= 4)
            seen += page.items.map(\.uniqueid)
            q.cursor = page.nextCursor
        } while q.cursor != nil
        #expect(seen.count == 25)
        #expect(Set(seen).count == 25)
        let all = try catalog.list(ListQuery(limit: 100)).items
        #expect(seen == all.map(\.uniqueid))
        #expect(all.map(\.startedAt) == all.map(\.startedAt).sorted())

        let company1 = try catalog.list(ListQuery(company: "1", limit: 100)).items
        #expect(company1.count == 8 && company1.allSatisfy { $0.company == "1" })
        let range = try catalog.list(ListQuery(from: Date(timeIntervalSince1970: 1_732_467_601), to: Date(timeIntervalSince1970: 1_732_467_603), limit: 100)).items
        #expect(range.count == 6)
        #expect(try catalog.list(ListQuery(leadNumber: "5511", limit: 100)).items.count == 5)
        #expect(throws: CatalogError.self) { try catalog.list(ListQuery(cursor: "not-a-cursor")) }
    }

    /// Rows committed between pages — before the cursor's position, in its very second, after
    /// it — never make a page repeat a row or skip one that was there: every row present at the
    /// start is seen exactly once, in order, and so is every row committed ahead of the cursor.
    @Test func cursorsAreStableWhileRowsArrive() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        var original: [String] = []
        for i in 0..<25 {
            let row = sampleRow("17324676\(String(format: "%02d", i / 3)).\(i)", startedAt: 1_732_467_600 + i / 3)
            try catalog.commit(recording: row, parts: [], waveform: Data())
            original.append(row.uniqueid)
        }
        var seen: [RecordingRow] = []
        var ahead: [String] = []  // committed after the cursor's position: must be seen
        var q = ListQuery(limit: 4)
        var n = 0
        repeat {
            let page = try catalog.list(q)
            seen += page.items
            q.cursor = page.nextCursor
            guard let last = page.items.last, q.cursor != nil else { break }  // the last page: nothing after it is asked for
            // Behind the cursor (earlier start), in the cursor's second (before and after its
            // uniqueid), and far ahead.
            let behind = sampleRow("1732467500.\(n)", startedAt: 1_732_467_500)
            let sameBefore = sampleRow(String(last.uniqueid.prefix { $0 != "." }) + ".0\(n)", startedAt: Int(last.startedAt))
            let sameAfter = sampleRow(last.uniqueid + "9", startedAt: Int(last.startedAt))
            let later = sampleRow("1732469000.\(n)", startedAt: 1_732_469_000 + n)
            for r in [behind, sameBefore, sameAfter, later] { try catalog.commit(recording: r, parts: [], waveform: Data()) }
            ahead += [sameAfter.uniqueid, later.uniqueid]
            n += 1
        } while q.cursor != nil && n < 100
        let ids = seen.map(\.uniqueid)
        #expect(Set(ids).count == ids.count, "a row seen twice: \(ids)")
        #expect(original.allSatisfy(ids.contains), "a row skipped")
        #expect(ahead.allSatisfy(ids.contains), "a row committed ahead of the cursor skipped")
        let keys = seen.map { ($0.startedAt, $0.uniqueid) }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0.0 < $0.1 }, "not in order")
    }

    @Test func migrationsAreIdempotent() throws {
        let dir = TempDir()
        _ = try Catalog(data: DataDirectory(dir.path))
        let again = try Catalog(data: DataDirectory(dir.path))
        let applied = try again.pool.read { try Catalog.migrator.appliedMigrations($0) }
        #expect(applied == Catalog.migrator.migrations)
        #expect(applied.first == "v1-recordings")
        let indexes = try again.pool.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'recording_%'") }
        #expect(Set(indexes) == ["recording_started_at", "recording_company_started_at", "recording_agent_started_at", "recording_lead_started_at", "recording_held_started_at"])
    }

    /// "Held only" reads an index of the held recordings, in start order, not the whole table.
    @Test func heldOnlyListUsesItsIndex() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        var q = ListQuery(limit: 50)
        q.heldOnly = true
        var (sql, args) = Catalog.filters(q, select: "*")
        sql += " ORDER BY started_at, uniqueid LIMIT 51"
        let plan = try catalog.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: StatementArguments(args)).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("recording_held_started_at") }, "\(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
    }
}

/// Webhook events are written with the change they report, and only when webhooks are on.
@Suite(.offThePool)
struct OutboxTests {
    @Test func eventsGoInTheSameTransactionAsTheirChange() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path), recordsEvents: true)
        let row = sampleRow("1732467600.42", startedAt: 1_732_467_600, company: "42")
        try catalog.commit(recording: row, parts: [], waveform: Data())
        _ = try catalog.remove([row], reason: "purge", actor: "retention", now: Date())
        var job = ExportJob(id: String(repeating: "a", count: 32), from: Date(), to: Date(), company: "42", requestedBy: "t", now: Date())
        job.status = .completed
        try catalog.finishJob(job, download: "/exports/\(job.id)/download")
        let events = try catalog.outbox()
        #expect(events.map(\.type) == ["recording.ready", "recording.deleted", "export.completed"])
        #expect(Set(events.map(\.id)).count == 3 && events.allSatisfy { $0.id.hasPrefix("evt_") })
        let ready = try #require(try JSONSerialization.jsonObject(with: events[0].body) as? [String: Any])
        let recording = try #require(ready["recording"] as? [String: Any])
        #expect(recording["url"] as? String == "/recordings/1732467600.42.opus")
        #expect(recording["uniqueid"] as? String == "1732467600.42" && ready["created_at"] is String)
        let export = try #require(try JSONSerialization.jsonObject(with: events[2].body) as? [String: Any])
        #expect((export["export"] as? [String: Any])?["download"] as? String == "/exports/\(job.id)/download")

        // The TempDir must live to the end of the test: a temporary one is freed (its folder
        // removed) at once, and the catalog then re-creates the folder, which nothing removes.
        let quietDir = TempDir()
        let quiet = try Catalog(data: DataDirectory(quietDir.path), recordsEvents: false)
        try quiet.commit(recording: row, parts: [], waveform: Data())
        #expect(try quiet.outbox().isEmpty)
    }

    /// A change that fails writes no event: the event is in the change's own transaction. The
    /// last step of each change is made to fail (as a full disk would) with a trigger.
    @Test func aFailedChangeWritesNoEvent() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path), recordsEvents: true)
        let row = sampleRow("1732467600.42", startedAt: 1_732_467_600, company: "42")
        try catalog.pool.write { try $0.execute(sql: "CREATE TRIGGER fail_waveform BEFORE INSERT ON waveform BEGIN SELECT RAISE(ABORT, 'disk full'); END") }
        #expect(throws: (any Error).self) { try catalog.commit(recording: row, parts: [part(row.uniqueid, sha: "s1")], waveform: Data()) }
        #expect(try catalog.recording(row.uniqueid) == nil)
        #expect(try catalog.outbox().isEmpty, "an event for a commit that failed")

        try catalog.pool.write { try $0.execute(sql: "DROP TRIGGER fail_waveform") }
        try catalog.commit(recording: row, parts: [part(row.uniqueid, sha: "s1")], waveform: Data())
        try catalog.pool.write { try $0.execute(sql: "CREATE TRIGGER fail_tombstone BEFORE INSERT ON tombstone BEGIN SELECT RAISE(ABORT, 'disk full'); END") }
        let audit = AuditEntry(at: Date(), actor: "t", role: nil, company: nil, action: "delete", uniqueid: row.uniqueid)
        #expect(throws: (any Error).self) { try catalog.delete(row.uniqueid, reason: "test", audit: audit) }
        #expect(try catalog.recording(row.uniqueid) != nil)
        #expect(try catalog.outbox().map(\.type) == ["recording.ready"], "an event for a removal that failed")
    }

    /// A recording's later event waits until its earlier one is delivered, through every failed
    /// attempt and back-off; other recordings and export events are not held up by it.
    @Test func aFailedEventHoldsBackItsRecordingsLaterEvents() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path), recordsEvents: true)
        let a = sampleRow("1732467600.1", startedAt: 1_732_467_600), b = sampleRow("1732467600.2", startedAt: 1_732_467_600)
        try catalog.commit(recording: a, parts: [], waveform: Data())  // A ready
        try catalog.commit(recording: b, parts: [], waveform: Data())  // B ready
        _ = try catalog.remove([a], reason: "purge", actor: "retention", now: Date())  // A deleted
        try catalog.pool.write { try catalog.recordEvent($0, type: .exportCompleted, uniqueid: nil, key: "export", object: [:], now: Date()) }
        let all = try catalog.outbox()
        #expect(all.map(\.type) == ["recording.ready", "recording.ready", "recording.deleted", "export.completed"])
        let now = Date()
        #expect(try catalog.dueEvents(now: now).map(\.seq) == [all[0].seq, all[1].seq, all[3].seq], "one event per recording at a time")

        // A's ready fails and waits for its retry: A's deleted must not overtake it.
        try catalog.markFailed(all[0].seq, error: "HTTP 500", retryAt: now.addingTimeInterval(60))
        #expect(try catalog.dueEvents(now: now).map(\.seq) == [all[1].seq, all[3].seq])
        try catalog.settle(delivered: [all[1].seq, all[3].seq], failed: [], now: now)
        #expect(try catalog.dueEvents(now: now).isEmpty)
        // At its retry time only A's ready is due; once it is delivered, A's deleted.
        #expect(try catalog.dueEvents(now: now.addingTimeInterval(61)).map(\.seq) == [all[0].seq])
        try catalog.settle(delivered: [all[0].seq], failed: [], now: now)
        #expect(try catalog.dueEvents(now: now).map(\.seq) == [all[2].seq])
        #expect(try catalog.undeliveredEvents().map(\.id) == [all[2].id])

        // The ordering check is an index look-up, not a scan of the pending events.
        let plan = try catalog.pool.read {
            try Row.fetchAll($0, sql: """
                EXPLAIN QUERY PLAN SELECT 1 FROM outbox AS o WHERE delivered_at IS NULL AND NOT EXISTS (
                  SELECT 1 FROM outbox AS p WHERE p.uniqueid = o.uniqueid AND p.delivered_at IS NULL AND p.seq < o.seq)
                """).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("outbox_pending_uniqueid") }, "\(plan)")
    }

    @Test func interruptedExportJobsAreQueuedAgain() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.path))
        try catalog.saveJob(ExportJob(id: String(repeating: "b", count: 32), from: Date(), to: Date(), company: nil, requestedBy: "t", now: Date()))
        let claimed = try #require(try catalog.claimJob())
        #expect(claimed.status == .running)
        #expect(try catalog.claimJob() == nil)
        try catalog.requeueInterruptedJobs()  // as at the next start after a crash
        #expect(try catalog.claimJob()?.id == claimed.id)
    }
}
