import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import Foundation
import Logging
import ServiceLifecycle
import CallrecSupport

/// Runs the export jobs of `POST /exports`, one at a time, from the catalog: a job a stop or a
/// crash interrupted is started again from the beginning at the next start. Finished exports are
/// removed after `keep` (`CALLREC_EXPORT_TTL_HOURS`, default 24).
public final class ExportService: Service, @unchecked Sendable {
    let catalog: Catalog
    let logger: Logger
    let keep: TimeInterval
    private let poked = ManagedFlag()

    public init(catalog: Catalog, logger: Logger, keep: TimeInterval = 24 * 3600) {
        self.catalog = catalog
        self.logger = logger
        self.keep = keep
    }

    /// A new job is waiting.
    public func poke() { poked.set() }

    func path(of id: String) -> String { catalog.data.exportsRoot + "/\(id).zip" }

    public func run() async throws {
        let (catalog, keep) = (self.catalog, self.keep)
        try? await catalog.requeueInterrupted()
        var idle = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for job in (try? await catalog.expireFinishedJobs(before: Date().addingTimeInterval(-keep))) ?? [] {
                unlink(path(of: job.id))
                logger.info("export expired", metadata: ["export": "\(job.id)"])
            }
            if let job = try? await catalog.claimNextJob() {
                await runJob(job)
                continue
            }
            // Idle: look again after 100 ms when poked, else every 2 s (jobs may also come from
            // another process sharing the catalog), until the stop.
            idle = 0
            while !poked.take() && idle < 20 && !Task.isShuttingDownGracefully && !Task.isCancelled {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(100)) }
                idle += 1
            }
        }
    }

    func runJob(_ job: ExportJob) async {
        let catalog = self.catalog
        let out = path(of: job.id)
        let query = ListQuery(from: Date(timeIntervalSince1970: TimeInterval(job.fromAt)), to: Date(timeIntervalSince1970: TimeInterval(job.toAt)), company: job.company)
        let export = Worker(name: "callrec-export") {
            var last = Date.distantPast
            return try Exporter(catalog: catalog, recipient: try job.recipient.map(AgeRecipient.init)).export(query, to: out) { n, total in
                if n == total || Date().timeIntervalSince(last) > 0.5 {
                    last = Date()
                    try? catalog.updateProgress(job.id, done: n, total: total)
                }
            }
        }
        let result: Result<ExportSummary, any Error>
        do { result = .success(try await export.value()) } catch { result = .failure(error) }
        var finished = (try? await catalog.job(job.id)) ?? job
        finished.finishedAt = Int64(Date().timeIntervalSince1970)
        switch result {
        case .success(let s):
            finished.status = .completed
            finished.done = s.recordings
            finished.total = s.recordings
            finished.path = "exports/\(job.id).zip"
            finished.bytes = s.zipBytes
            finished.sha256 = s.zipSHA256
            logger.notice("export completed", metadata: ["export": "\(job.id)", "recordings": "\(s.recordings)", "bytes": "\(s.zipBytes)"])
        case .failure(let e):
            finished.status = .failed
            finished.error = "\(e)"
            logger.error("export failed", metadata: ["export": "\(job.id)", "error": "\(e)"])
        }
        let done = finished
        let entry = AuditEntry(
            at: Date(), actor: job.requestedBy, role: nil, company: job.company, action: "export", uniqueid: nil,
            detail: "\(job.id) \(done.status.rawValue) \(done.sha256 ?? done.error ?? "")")
        do {
            try await catalog.completeJob(done, download: done.status == .completed ? "/exports/\(job.id)/download" : nil, audit: entry)
        } catch {
            logger.error("cannot record the end of an export", metadata: ["export": "\(job.id)", "error": "\(error)"])
        }
    }
}

/// A flag set by one task and taken by another.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    func take() -> Bool { lock.lock(); defer { value = false; lock.unlock() }; return value }
}
