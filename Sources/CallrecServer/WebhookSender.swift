import CallrecCatalog
import Crypto
import Foundation
import Logging
import Metrics
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Delivers the outbox to `CALLREC_WEBHOOK_URL`: at least once, in order per recording, signed
/// `Callrec-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, retried with
/// exponential back-off and jitter on a non-2xx answer or a timeout, across restarts.
public final class WebhookSender: Service, @unchecked Sendable {
    let catalog: Catalog
    let url: URL
    let key: SymmetricKey
    let logger: Logger
    let timeout: TimeInterval
    let backoff: TimeInterval
    let maxBackoff: TimeInterval
    let poll: Duration
    private let session: URLSession

    public init(catalog: Catalog, url: URL, secret: String, logger: Logger, timeout: TimeInterval = 10, backoff: TimeInterval = 2,
                maxBackoff: TimeInterval = 600, poll: Duration = .milliseconds(250)) {
        self.catalog = catalog
        self.url = url
        key = SymmetricKey(data: Data(secret.utf8))
        self.logger = logger
        self.timeout = timeout
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.poll = poll
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        session = URLSession(configuration: config)
    }

    /// `t=<unix>,v1=<hex>` for a body sent at `t`.
    public static func signature(body: Data, at t: Int, key: SymmetricKey) -> String {
        var signed = Data("\(t).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return "t=\(t),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    public func run() async throws {
        var lastPrune = Date.distantPast
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let due = (try? catalog.dueEvents(now: Date())) ?? []
            for event in due {
                if Task.isShuttingDownGracefully { break }
                await deliver(event)
            }
            if Date().timeIntervalSince(lastPrune) > 3600 {
                try? catalog.pruneDelivered(before: Date().addingTimeInterval(-7 * 86400))
                lastPrune = Date()
            }
            if due.isEmpty { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.poll) } }
        }
    }

    func deliver(_ event: Catalog.OutboxEvent) async {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = event.body
        request.timeoutInterval = timeout
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("callrec", forHTTPHeaderField: "User-Agent")
        request.setValue(Self.signature(body: event.body, at: Int(Date().timeIntervalSince1970), key: key), forHTTPHeaderField: "Callrec-Signature")
        let outcome: Result<Int, any Error> = await withCheckedContinuation { done in
            session.dataTask(with: request) { _, response, error in
                if let error { done.resume(returning: .failure(error)) } else { done.resume(returning: .success((response as? HTTPURLResponse)?.statusCode ?? 0)) }
            }.resume()
        }
        switch outcome {
        case .success(let status) where (200..<300).contains(status):
            try? catalog.markDelivered(event.seq, now: Date())
            Counter(label: "callrec_webhooks_delivered_total").increment()
        case .success(let status):
            failed(event, "HTTP \(status)")
        case .failure(let error):
            failed(event, "\(error.localizedDescription)")
        }
    }

    func failed(_ event: Catalog.OutboxEvent, _ reason: String) {
        // 2, 4, 8 … seconds up to maxBackoff, ±20 % so that retries do not come in waves.
        let delay = min(maxBackoff, backoff * pow(2, Double(event.attempts))) * Double.random(in: 0.8...1.2)
        try? catalog.markFailed(event.seq, error: reason, retryAt: Date().addingTimeInterval(delay))
        Counter(label: "callrec_webhooks_failed_attempts_total").increment()
        logger.warning("webhook not delivered; will retry", metadata: ["event": "\(event.id)", "type": "\(event.type)", "error": "\(reason)", "retry_in_s": "\(Int(delay))"])
    }
}
