import CallrecSupport
import Foundation
import Logging
import ServiceLifecycle

/// The spool watcher as a `Service` of the application's ServiceGroup: it starts with the group,
/// and on graceful shutdown stops taking files and waits for the ingests in progress (the HTTP
/// server, added after it, is shut down first).
public struct IngestService: Service {
    public let watcher: SpoolWatcher

    public init(watcher: SpoolWatcher) { self.watcher = watcher }

    public func run() async throws {
        // Start-up recovery walks the audio folder and hashes what it finds: on a thread of its
        // own, never on an event loop (`serve` runs tasks on NIO's loops).
        let starting = watcher
        try await Worker(name: "callrec-recovery") { try starting.start() }.value()
        try? await gracefulShutdown()
        let watcher = self.watcher
        watcher.logger.notice("stopping (\(watcher.inProgress) ingests finishing)")
        try? await Worker(name: "callrec-ingest-stop") { watcher.stop() }.value()
    }
}
