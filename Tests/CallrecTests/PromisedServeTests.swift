import CallrecCatalog
import CallrecTestSupport
import Foundation
import Testing

/// What README promises of `callrec serve`'s own schedules: the daily purge at
/// `CALLREC_PURGE_AT`, export jobs restarted after a restart, exports removed after their TTL.
@Suite(.offThePool)
struct PromisedServeTests {
    /// `serve` purges on its own at `CALLREC_PURGE_AT` (set to the next minute, in UTC): an
    /// expired recording goes (row, file; `show` says removed), a recent one stays, and not
    /// before the time. Checked to fail: with the PurgeService left out of serve's services.
    @Test func serveRunsTheDailyPurgeAtCALLREC_PURGE_AT() async throws {
        let dir = TempDir()
        let data = dir.file("data"), spool = dir.file("spool")
        let old = "1732467600.5"  // 2024: past the 90-day default
        let recent = "\(Int(Date().timeIntervalSince1970) - 3600).6"
        for id in [old, recent] {
            try FileManager.default.copyItem(atPath: Paths.fixture("speech.wav"), toPath: dir.file("\(id).wav"))
        }
        #expect(try callrec(["ingest", "--data", data, dir.file("\(old).wav"), dir.file("\(recent).wav")]).status == 0)
        let oldFile = try #require(try callrec(["show", old, "--data", data]).out.split(separator: " ").first { $0.hasPrefix("/") && $0.hasSuffix(".opus") })

        // The next whole minute at least 5 s away (the purge time has a minute's resolution).
        var due = (Date().timeIntervalSince1970 / 60).rounded(.up) * 60
        if due - Date().timeIntervalSince1970 < 5 { due += 60 }
        let t = Promised.utcHourMinute(Date(timeIntervalSince1970: due))
        let at = String(format: "%02ld:%02ld", t.hour, t.minute)
        let serve = try ServeProcess(data: data, spool: spool, env: ["CALLREC_PURGE_AT": at, "CALLREC_TZ": "UTC"], log: dir.file("serve.log"))
        #expect(try callrec(["show", old, "--data", data]).status == 0, "purged before \(at)")

        let purged = await eventuallyAsync(due - Date().timeIntervalSince1970 + 45) {
            (try? callrec(["show", old, "--data", data]))?.out.contains("REMOVED") == true
        }
        #expect(purged, "not purged by \(at) UTC: \(serve.text().suffix(2000))")
        #expect(Date().timeIntervalSince1970 >= due - 1, "purged before \(at)")
        #expect(!FileManager.default.fileExists(atPath: String(oldFile)))
        #expect(try callrec(["show", recent, "--data", data]).status == 0, "a recent recording was purged")
        #expect(await eventuallyAsync(10) { serve.text().contains("retention purge") })
        #expect(serve.stop() == 0)
    }

    /// An export job that a stopped `serve` left running is run again from the start by the next
    /// one, and once finished for longer than `CALLREC_EXPORT_TTL_HOURS` its ZIP is removed and
    /// the job says expired. Checked to fail: with `requeueInterruptedJobs` not called at start.
    @Test func anInterruptedExportRunsAgainAfterARestartAndGoesAfterItsTTL() async throws {
        let dir = TempDir()
        let data = dir.file("data"), spool = dir.file("spool")
        let id = "1732467600.8"
        try FileManager.default.copyItem(atPath: Paths.fixture("speech.wav"), toPath: dir.file("\(id).wav"))
        #expect(try callrec(["ingest", "--data", data, dir.file("\(id).wav")]).status == 0)

        // What a serve killed in the middle of an export leaves: a job marked running.
        let jobID = String(repeating: "ab", count: 16)
        do {
            let catalog = try Catalog(data: DataDirectory(data))
            var job = ExportJob(
                id: jobID, from: Date(timeIntervalSince1970: 1_732_406_400), to: Date(timeIntervalSince1970: 1_732_492_800), company: nil,
                requestedBy: "tester", now: Date())
            job.status = .running
            job.done = 1
            job.total = 1
            try await catalog.saveJob(job)
        }
        let token = try callrec(["token", "--role", "compliance", "--data", data]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let ttlHours = 0.002  // 7.2 s
        let serve = try ServeProcess(data: data, spool: spool, env: ["CALLREC_EXPORT_TTL_HOURS": "\(ttlHours)"], log: dir.file("serve.log"))
        func status() throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: serve.get("/exports/\(jobID)", token: token).body) as? [String: Any] ?? [:]
        }
        #expect(await eventuallyAsync(30) { (try? status())?["status"] as? String == "completed" }, "\((try? status()) ?? [:])")
        let completed = Date()
        let download = try serve.get("/exports/\(jobID)/download", token: token)
        #expect(download.status == 200)
        try download.body.write(to: URL(fileURLWithPath: dir.file("export.zip")))
        #expect(try run("unzip", ["-t", dir.file("export.zip")]).status == 0)
        #expect(String(decoding: try run("zipinfo", ["-1", dir.file("export.zip")]).out, as: UTF8.self).contains("\(id).opus"))
        let zip = data + "/exports/\(jobID).zip"
        #expect(FileManager.default.fileExists(atPath: zip))

        #expect(await eventuallyAsync(40) { (try? status())?["status"] as? String == "expired" }, "\((try? status()) ?? [:])")
        #expect(Date().timeIntervalSince(completed) >= ttlHours * 3600 - 1.5, "removed before its TTL")
        #expect(!FileManager.default.fileExists(atPath: zip))
        #expect(try serve.get("/exports/\(jobID)/download", token: token).status == 409)
        #expect(serve.stop() == 0)
    }
}

extension Promised {
    /// The UTC hour and minute of a date.
    static func utcHourMinute(_ date: Date) -> (hour: Int, minute: Int) {
        var t = time_t(date.timeIntervalSince1970)
        var fields = tm()
        gmtime_r(&t, &fields)
        return (Int(fields.tm_hour), Int(fields.tm_min))
    }
}
