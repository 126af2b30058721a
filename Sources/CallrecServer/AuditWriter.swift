import CallrecCatalog
import CallrecMedia
import Foundation
import Logging
import ServiceLifecycle
import CallrecSupport

/// Writes audit entries in batches: every audio request is audited, and one fsynced SQLite
/// transaction per request would cap serving at about 1,600 requests/s (measured with
/// scripts/bench-serve). Entries are flushed every `interval` (or sooner, when `batch` are waiting)
/// in one transaction, on a thread of its own — a flush blocks on SQLite and an fsync, which must
/// never happen on an event loop (a request that filled the batch used to pay for it) — and on
/// graceful shutdown. A crash can lose at most the last interval's entries.
///
/// When the catalog cannot be written (disk full, read-only), entries wait in memory, up to
/// `maxPending`, and the thread retries with back-off up to 5 s, never in a busy loop.
public final class AuditWriter: Service, @unchecked Sendable {
    let catalog: Catalog
    let logger: Logger
    let interval: Duration
    let batch: Int
    let maxPending: Int
    private let condition = NSCondition()
    private var pending: [AuditEntry] = []
    private var dropped = 0
    private var stopping = false
    private var exited = false

    public init(catalog: Catalog, logger: Logger, interval: Duration = .milliseconds(200), batch: Int = 512, maxPending: Int = 200_000) {
        self.catalog = catalog
        self.logger = logger
        self.interval = interval
        self.batch = batch
        self.maxPending = maxPending
    }

    public func record(_ entry: AuditEntry) {
        condition.lock()
        if pending.count >= maxPending {
            let n = pending.count - maxPending + 1
            pending.removeFirst(n)
            dropped += n
        }
        pending.append(entry)
        if pending.count == batch { condition.signal() }
        let late = exited
        condition.unlock()
        // After the writer thread ended (run cancelled while requests still come): write now, on a
        // thread of its own (this may be a request's task, which must not block on the catalog).
        if late { _ = Worker(name: "callrec-audit-late") { self.flush() } }
    }

    /// Writes what is waiting, in one transaction; false if the catalog refused (the entries are
    /// kept for the next try).
    @discardableResult
    public func flush() -> Bool {
        condition.lock()
        let entries = pending
        let lost = dropped
        pending.removeAll(keepingCapacity: true)
        dropped = 0
        condition.unlock()
        if lost > 0 {
            logger.error("audit entries dropped: the catalog could not be written for too long", metadata: ["dropped": "\(lost)"])
        }
        guard !entries.isEmpty else { return true }
        do {
            try catalog.audit(entries)
            return true
        } catch {
            logger.error("cannot write the audit log; keeping the entries for the next try", metadata: ["error": "\(error)", "entries": "\(entries.count)"])
            condition.lock()
            pending.insert(contentsOf: entries, at: 0)
            if pending.count > maxPending {
                dropped += pending.count - maxPending
                pending.removeFirst(pending.count - maxPending)
            }
            condition.unlock()
            return false
        }
    }

    /// The writer thread: flushes every `interval`, or when a batch is full, until stopped.
    private func loop() {
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        var pause = seconds  // grows while the catalog refuses
        while true {
            condition.lock()
            if (pending.count < batch || pause > seconds) && !stopping { _ = condition.wait(until: Date().addingTimeInterval(pause)) }
            let stop = stopping
            condition.unlock()
            var written = flush()
            pause = written ? seconds : min(5, pause * 2)
            if stop {
                // Last chance for what is left: a few tries before giving up.
                for _ in 0..<3 where !written {
                    Thread.sleep(forTimeInterval: 1)
                    written = flush()
                }
                break
            }
        }
        condition.lock()
        exited = true
        condition.unlock()
    }

    /// Asks the thread to write what is left and end.
    private func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    public func run() async throws {
        let writer = Worker(name: "callrec-audit") { [self] in loop() }
        // Ends on graceful shutdown or on cancellation; either way the thread writes what is left.
        try? await gracefulShutdown()
        stop()
        try? await writer.value()
    }
}
