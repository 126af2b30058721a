import CallrecCatalog
import Foundation
import Logging
import ServiceLifecycle

/// Writes audit entries in batches: every audio request is audited, and one fsynced SQLite
/// transaction per request would cap serving at about 1,600 requests/s (measured with
/// scripts/bench-serve). Entries are flushed every `interval` (or sooner, when `batch` are waiting)
/// in one transaction, and on graceful shutdown; a crash can lose at most the last interval's.
public final class AuditWriter: Service, @unchecked Sendable {
    let catalog: Catalog
    let logger: Logger
    let interval: Duration
    let batch: Int
    private let lock = NSLock()
    private var pending: [AuditEntry] = []

    public init(catalog: Catalog, logger: Logger, interval: Duration = .milliseconds(200), batch: Int = 512) {
        self.catalog = catalog
        self.logger = logger
        self.interval = interval
        self.batch = batch
    }

    public func record(_ entry: AuditEntry) {
        lock.lock()
        pending.append(entry)
        let full = pending.count >= batch
        lock.unlock()
        if full { flush() }
    }

    /// Writes what is waiting, in one transaction.
    public func flush() {
        lock.lock()
        let entries = pending
        pending.removeAll(keepingCapacity: true)
        lock.unlock()
        guard !entries.isEmpty else { return }
        do {
            try catalog.audit(entries)
        } catch {
            logger.error("cannot write the audit log; keeping the entries for the next try", metadata: ["error": "\(error)", "entries": "\(entries.count)"])
            lock.lock()
            pending.insert(contentsOf: entries, at: 0)
            lock.unlock()
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: interval)
            flush()
        }
        flush()
    }
}
