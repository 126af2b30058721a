import CallrecCatalog
import Crypto
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import CallrecSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Delivers the outbox to `CALLREC_WEBHOOK_URL`: at least once, in order per recording, signed
/// `Callrec-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, retried with
/// exponential back-off and jitter on a non-2xx answer or a timeout, across restarts.
///
/// Up to `concurrency` events are in flight at once, each of a different recording: the catalog
/// hands out only the oldest undelivered event of a recording (`Catalog.dueEvents`), so a later
/// event of a recording is posted only after the earlier one was delivered and recorded so. The
/// outcomes of a burst are written to the catalog in one transaction, not one each; an outcome lost
/// in a crash means the event is sent again (receivers deduplicate on `id`).
public final class WebhookSender: Service, @unchecked Sendable {
    /// Deliveries in flight at once when `init` is not told otherwise.
    public static let defaultConcurrency = 16

    let catalog: Catalog
    let url: URL
    let key: SymmetricKey
    let logger: Logger
    let timeout: TimeInterval
    let backoff: TimeInterval
    let maxBackoff: TimeInterval
    let poll: Duration
    let concurrency: Int
    private let session: URLSession

    public init(catalog: Catalog, url: URL, secret: String, logger: Logger, timeout: TimeInterval = 10, backoff: TimeInterval = 2,
                maxBackoff: TimeInterval = 600, poll: Duration = .milliseconds(250), concurrency: Int = WebhookSender.defaultConcurrency) {
        self.catalog = catalog
        self.url = url
        key = SymmetricKey(data: Data(secret.utf8))
        self.logger = logger
        self.timeout = timeout
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.poll = poll
        self.concurrency = max(1, concurrency)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.httpMaximumConnectionsPerHost = self.concurrency
        session = URLSession(configuration: config)
    }

    /// `t=<unix>,v1=<hex>` for a body sent at `t`.
    public static func signature(body: Data, at t: Int, key: SymmetricKey) -> String {
        var signed = Data("\(t).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return "t=\(t),v1=" + Array(mac).hexString
    }

    /// What became of one child task of `run`.
    enum Outcome: Sendable {
        case delivered(Int64)
        case failed(Catalog.OutboxEvent, String)
        /// Cut short by cancellation: nothing is recorded, the event goes out again next time.
        case cancelled(Int64)
        /// The poll interval passed (or shutdown began): look for due events again.
        case tick
    }

    public func run() async throws {
        await withTaskGroup(of: Outcome.self) { group in
            var queue: ArraySlice<Catalog.OutboxEvent> = []  // due, not started yet
            var unsettled = Set<Int64>()  // started, outcome not in the catalog yet: not to be fetched again
            var running = 0
            var ticking = false
            var delivered: [Int64] = []
            var failed: [(seq: Int64, error: String, retryAt: Date)] = []
            var lastPrune = Date.distantPast

            // Catalog work runs on GRDB's queues, off the event loops: a burst's transaction is fsynced.
            let catalog = self.catalog
            func settle() async {
                guard !delivered.isEmpty || !failed.isEmpty else { return }
                let (d, f) = (delivered, failed)
                do {
                    try await catalog.settleDeliveries(delivered: d, failed: f, now: Date())
                } catch {
                    // Still undelivered in the catalog: they go out again (at least once).
                    logger.error("webhook outcomes not recorded", metadata: ["error": "\(error)", "events": "\(delivered.count + failed.count)"])
                }
                for seq in delivered { unsettled.remove(seq) }
                for f in failed { unsettled.remove(f.seq) }
                delivered.removeAll(keepingCapacity: true)
                failed.removeAll(keepingCapacity: true)
            }
            func take(_ outcome: Outcome) {
                switch outcome {
                case .tick:
                    ticking = false
                case .delivered(let seq):
                    running -= 1
                    delivered.append(seq)
                    Counter(label: "callrec_webhooks_delivered_total").increment()
                case .failed(let event, let reason):
                    running -= 1
                    failed.append((event.seq, reason, Date().addingTimeInterval(retryDelay(attempts: event.attempts))))
                    Counter(label: "callrec_webhooks_failed_attempts_total").increment()
                    logger.warning("webhook not delivered; will retry", metadata: [
                        "event": "\(event.id)", "type": "\(event.type)", "error": "\(reason)",
                        "retry_in_s": "\(Int(failed.last!.retryAt.timeIntervalSinceNow.rounded()))",
                    ])
                case .cancelled(let seq):
                    running -= 1
                    unsettled.remove(seq)
                }
            }

            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if queue.isEmpty && running < concurrency {
                    // Record what is done first: a recording's next event is due only then.
                    await settle()
                    let limit = 4 * concurrency + unsettled.count
                    let due = (try? await catalog.nextDueEvents(now: Date(), limit: limit)) ?? []
                    queue = due.filter { !unsettled.contains($0.seq) }[...]
                } else if delivered.count + failed.count >= concurrency {
                    await settle()
                }
                while running < concurrency, let event = queue.popFirst() {
                    unsettled.insert(event.seq)
                    running += 1
                    group.addTask { await self.deliver(event) }
                }
                if Date().timeIntervalSince(lastPrune) > 3600 {
                    try? await catalog.pruneDeliveredEvents(before: Date().addingTimeInterval(-7 * 86400))
                    lastPrune = Date()
                }
                // Wait for a delivery to end or, with room for more, for the next poll.
                if running < concurrency && !ticking {
                    ticking = true
                    group.addTask {
                        // The next poll, or sooner when this process commits an event.
                        await cancelWhenGracefulShutdown { await self.catalog.outboxBell.wait(timeout: self.poll) }
                        return .tick
                    }
                }
                guard let outcome = await group.next() else { break }
                take(outcome)
            }
            // Shutting down: nothing new starts; deliveries in flight end (cancelled, on
            // cancellation) and what they achieved is recorded.
            while let outcome = await group.next() { take(outcome) }
            await settle()
        }
    }

    /// 2, 4, 8 … seconds up to maxBackoff, ±20 % so that retries do not come in waves.
    func retryDelay(attempts: Int) -> TimeInterval {
        min(maxBackoff, backoff * pow(2, Double(attempts))) * Double.random(in: 0.8...1.2)
    }

    /// One POST of `event`; records nothing (`run` does).
    func deliver(_ event: Catalog.OutboxEvent) async -> Outcome {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = event.body
        request.timeoutInterval = timeout
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("callrec", forHTTPHeaderField: "User-Agent")
        request.setValue(Self.signature(body: event.body, at: Int(Date().timeIntervalSince1970), key: key), forHTTPHeaderField: "Callrec-Signature")
        let handle = DataTaskHandle()
        let outcome: Result<Int, any Error>? = await withTaskCancellationHandler {
            await withCheckedContinuation { done in
                let task = session.dataTask(with: request) { _, response, error in
                    if let error { done.resume(returning: .failure(error)) } else { done.resume(returning: .success((response as? HTTPURLResponse)?.statusCode ?? 0)) }
                }
                if handle.attach(task) { task.resume() } else { done.resume(returning: nil) }
            }
        } onCancel: {
            handle.cancel()
        }
        switch outcome {
        case nil:
            return .cancelled(event.seq)
        case .failure where Task.isCancelled:
            return .cancelled(event.seq)
        case .success(let status) where (200..<300).contains(status):
            return .delivered(event.seq)
        case .success(let status):
            return .failed(event, "HTTP \(status)")
        case .failure(let error):
            return .failed(event, error.localizedDescription)
        }
    }
}

/// A data task that a cancellation, perhaps before the task exists, cancels.
private final class DataTaskHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var task: URLSessionDataTask?
    private var cancelled = false

    /// Keeps `task`; false when already cancelled (then it is not to be started).
    func attach(_ task: URLSessionDataTask) -> Bool {
        lock.withLock {
            self.task = task
            return !cancelled
        }
    }

    func cancel() {
        let task = lock.withLock {
            cancelled = true
            return self.task
        }
        task?.cancel()
    }
}
