import Foundation
import GRDB

/// An export requested over HTTP, kept in the catalog so it survives a restart.
public struct ExportJob: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "export_job"
    public enum Status: String, Codable, Sendable { case queued, running, completed, failed, expired }

    public var id: String
    public var status: Status
    public var fromAt: Int64
    public var toAt: Int64
    public var company: String?
    public var requestedBy: String
    public var createdAt: Int64
    public var finishedAt: Int64?
    public var done: Int
    public var total: Int
    public var path: String?
    public var bytes: Int?
    public var sha256: String?
    public var error: String?
    /// The age recipient (`age1…`) the ZIP is sealed for; nil: a plain ZIP.
    public var recipient: String?

    enum CodingKeys: String, CodingKey {
        case id, status, fromAt = "from_at", toAt = "to_at", company, requestedBy = "requested_by", createdAt = "created_at"
        case finishedAt = "finished_at", done, total, path, bytes, sha256, error, recipient
    }

    public init(id: String, from: Date, to: Date, company: String?, requestedBy: String, now: Date, recipient: String? = nil) {
        self.recipient = recipient
        self.id = id
        status = .queued
        fromAt = Int64(from.timeIntervalSince1970)
        toAt = Int64(to.timeIntervalSince1970)
        self.company = company
        self.requestedBy = requestedBy
        createdAt = Int64(now.timeIntervalSince1970)
        done = 0
        total = 0
    }
}

extension Catalog {
    public func saveJob(_ job: ExportJob) throws { try writing { try job.save($0) } }

    /// Records a finished job and, when it completed, its `export.completed` event, together.
    public func finishJob(_ job: ExportJob, download: String?) throws {
        try writing { db in try finishJob(db, job, download: download, audit: nil) }
    }

    /// The same with its audit entry, in one transaction on GRDB's writer queue.
    public func completeJob(_ job: ExportJob, download: String?, audit: AuditEntry) async throws {
        try await pool.write { db in try self.finishJob(db, job, download: download, audit: audit) }
    }

    func finishJob(_ db: Database, _ job: ExportJob, download: String?, audit: AuditEntry?) throws {
        try job.save(db)
        if var e = audit { try e.insert(db) }
        guard job.status == .completed else { return }
        var object = try JSONSerialization.jsonObject(with: JSONEncoder.callrec.encode(job)) as? [String: Any] ?? [:]
        object["download"] = download
        try recordEvent(db, type: .exportCompleted, uniqueid: nil, key: "export", object: object, now: Date())
    }

    public func job(_ id: String) throws -> ExportJob? { try reading { try ExportJob.fetchOne($0, key: id) } }

    public func job(_ id: String) async throws -> ExportJob? { try await pool.read { try ExportJob.fetchOne($0, key: id) } }

    public func saveJob(_ job: ExportJob) async throws { try await pool.write { try job.save($0) } }

    /// Jobs of `requestedBy` that are queued or running, and completed ones whose file is still kept.
    public func jobCounts(requestedBy: String) async throws -> (active: Int, kept: Int) {
        try await pool.read { db in
            let active = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM export_job WHERE requested_by = ? AND status IN ('queued', 'running')", arguments: [requestedBy]) ?? 0
            let kept = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM export_job WHERE requested_by = ? AND status = 'completed'", arguments: [requestedBy]) ?? 0
            return (active, kept)
        }
    }

    /// The oldest queued job, marked running; jobs a crash left running are queued again first.
    public func claimJob() throws -> ExportJob? { try writing(Self.claimJob) }

    /// `claimJob()` on GRDB's writer queue.
    public func claimNextJob() async throws -> ExportJob? { try await pool.write(Self.claimJob) }

    static func claimJob(_ db: Database) throws -> ExportJob? {
        guard var job = try ExportJob.filter(Column("status") == ExportJob.Status.queued.rawValue).order(Column("created_at")).fetchOne(db) else { return nil }
        job.status = .running
        try job.update(db)
        return job
    }

    public func requeueInterruptedJobs() throws { try writing(Self.requeue) }

    /// `requeueInterruptedJobs()` on GRDB's writer queue.
    public func requeueInterrupted() async throws { try await pool.write(Self.requeue) }

    static func requeue(_ db: Database) throws {
        try db.execute(sql: "UPDATE export_job SET status = 'queued', done = 0 WHERE status = 'running'")
    }

    public func updateProgress(_ id: String, done: Int, total: Int) throws {
        try writing { try $0.execute(sql: "UPDATE export_job SET done = ?, total = ? WHERE id = ?", arguments: [done, total, id]) }
    }

    /// Completed jobs finished before `cutoff`: their files go, the job stays as `expired`.
    public func expireJobs(before cutoff: Date) throws -> [ExportJob] {
        guard try reading({ try Self.expiring($0, cutoff).fetchCount($0) }) > 0 else { return [] }  // no write (and no fsync) when there is nothing to do
        return try writing { try Self.expire($0, cutoff) }
    }

    /// `expireJobs(before:)` on GRDB's queues.
    public func expireFinishedJobs(before cutoff: Date) async throws -> [ExportJob] {
        guard try await pool.read({ try Self.expiring($0, cutoff).fetchCount($0) }) > 0 else { return [] }
        return try await pool.write { try Self.expire($0, cutoff) }
    }

    static func expiring(_ db: Database, _ cutoff: Date) -> QueryInterfaceRequest<ExportJob> {
        ExportJob.filter(Column("status") == ExportJob.Status.completed.rawValue && Column("finished_at") < Int64(cutoff.timeIntervalSince1970))
    }

    static func expire(_ db: Database, _ cutoff: Date) throws -> [ExportJob] {
        let old = try expiring(db, cutoff).fetchAll(db)
        for var j in old {
            j.status = .expired
            try j.update(db)
        }
        return old
    }
}
