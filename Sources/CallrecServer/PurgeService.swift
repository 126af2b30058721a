import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import Foundation
import Logging
import ServiceLifecycle
import CallrecSupport

/// The daily retention purge of `callrec serve`, at `CALLREC_PURGE_AT` (local time in
/// `CALLREC_TZ`, default 03:00). A purge cut short by a stop resumes at the next run.
public struct PurgeService: Service {
    let catalog: Catalog
    let at: (hour: Int, minute: Int)
    let zone: TimeZone
    let defaultDays: Int
    let logger: Logger

    public init(catalog: Catalog, at: (hour: Int, minute: Int), zone: TimeZone, defaultDays: Int, logger: Logger) {
        self.catalog = catalog
        self.at = at
        self.zone = zone
        self.defaultDays = defaultDays
        self.logger = logger
    }

    /// The next `at` after `now`, in `zone`.
    public static func next(after now: Date, at: (hour: Int, minute: Int), zone: TimeZone) -> Date {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = zone
        return cal.nextDate(after: now, matching: DateComponents(hour: at.hour, minute: at.minute, second: 0), matchingPolicy: .nextTime)
            ?? now.addingTimeInterval(86400)
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let due = Self.next(after: Date(), at: at, zone: zone)
            logger.info("next retention purge", metadata: ["at": "\(RecordingTags.iso(due))"])
            do {
                let wait = max(1, due.timeIntervalSinceNow)
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(wait)) }
            } catch { return }
            if Task.isShuttingDownGracefully { return }
            let catalog = self.catalog, days = defaultDays
            let report = try? await Worker(name: "callrec-purge") {
                try Remover(catalog: catalog).purge(now: Date(), defaultDays: days, dryRun: false)
            }.value()
            if let report {
                logger.notice("retention purge", metadata: ["removed": "\(report.count)", "audio_seconds": "\(report.audioSeconds)", "bytes": "\(report.bytes)", "held": "\(report.held.count)"])
            } else {
                logger.error("retention purge failed; it will run again at the next purge time")
            }
        }
    }
}
