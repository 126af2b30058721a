import CallrecCatalog
import Foundation
import Logging
import ServiceLifecycle

/// Writes audit entries in batches: every audio request is audited, and one fsynced SQLite
/// transaction per request would cap serving at about 1,600 requests/s (measured with
/// scripts/bench-serve). Entries are flushed every `interval` (or sooner, when `batch` are waiting)
/// in one transaction, on a thread of its own — a flush blocks on SQLite and an fsync, which must
/// never happen on an event loop (a request that filled the batch used to pay for it) — and on
/// graceful shutdown. A crash can lose at most the last interval's entries.
public final class AuditWriter: Service, @unchecked Sendable {
    let catalog: Catalog
    let logger: Logger
    let interval: Duration
    let batch: Int
    private let condition = NSCondition()
    private var pending: [AuditEntry] = []
    private var stopping = false
    private var exited = false

    public init(catalog: Catalog, logger: Logger, interval: Duration = .milliseconds(200), batch: Int = 512) {
        self.catalog = catalog
        self.logger = logger
        self.interval = interval
        self.batch = batch
    }

    public func record(_ entry: AuditEntry) {
        condition.lock()
        pending.append(entry)
        if pending.count == batch { condition.signal() }
        condition.unlock()
    }

    /// Writes what is waiting, in one transaction.
    public func flush() {
        condition.lock()
        let entries = pending
        pending.removeAll(keepingCapacity: true)
        condition.unlock()
        guard !entries.isEmpty else { return }
        do {
            try catalog.audit(entries)
        } catch {
            logger.error("cannot write the audit log; keeping the entries for the next try", metadata: ["error": "\(error)", "entries": "\(entries.count)"])
            condition.lock()
            pending.insert(contentsOf: entries, at: 0)
            condition.unlock()
        }
    }

    /// The writer thread: flushes every `interval`, or when a batch is full, until stopped.
    private func loop() {
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        while true {
            condition.lock()
            if pending.count < batch && !stopping { _ = condition.wait(until: Date().addingTimeInterval(seconds)) }
            let stop = stopping
            condition.unlock()
            flush()
            if stop { break }
        }
        condition.lock()
        exited = true
        condition.broadcast()
        condition.unlock()
    }

    /// Asks the thread to write what is left and waits until it has.
    private func stopAndWait() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !exited { condition.wait() }
        condition.unlock()
    }

    public func run() async throws {
        let thread = Thread { [self] in loop() }
        thread.name = "callrec-audit"
        thread.start()
        // Ends on graceful shutdown or on cancellation; either way the thread writes what is left.
        try? await gracefulShutdown()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread { [self] in
                stopAndWait()
                done.resume()
            }.start()
        }
    }
}
