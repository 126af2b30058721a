import CallrecMedia
import Foundation
import GRDB
import CallrecSupport

/// The webhook outbox. Events are written inside the transaction of the change they report
/// (contract: at-least-once, in order per recording, kept across restarts); delivering them is
/// the webhook sender's job.
extension Catalog {
    public enum EventType: String, Sendable {
        case recordingReady = "recording.ready"
        case recordingDeleted = "recording.deleted"
        case exportCompleted = "export.completed"
    }

    /// `{"id": "evt_…", "type": …, "created_at": …, <key>: <object>}`, inserted with `db`.
    func recordEvent(_ db: Database, type: EventType, uniqueid: String?, key: String, object: [String: Any], now: Date) throws {
        guard recordsEvents else { return }
        let id = "evt_" + randomHex(bytes: 12)
        let event: [String: Any] = ["id": id, "type": type.rawValue, "created_at": RecordingTags.iso(now), key: object]
        let body = try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys, .withoutEscapingSlashes])
        try db.execute(
            sql: "INSERT INTO outbox (id, type, uniqueid, created_at, body) VALUES (?, ?, ?, ?, ?)",
            arguments: [id, type.rawValue, uniqueid, Int64(now.timeIntervalSince1970), body])
        let bell = outboxBell
        db.afterNextTransaction(onCommit: { _ in bell.ring() })
    }

    /// The contract's recording JSON plus its `url`, as a JSON object.
    static func recordingObject(_ row: RecordingRow) throws -> [String: Any] {
        var object = try JSONSerialization.jsonObject(with: JSONEncoder.callrec.encode(RecordingJSON(row))) as? [String: Any] ?? [:]
        object["url"] = "/recordings/\(row.uniqueid).opus"
        return object
    }

    public struct OutboxEvent: Sendable, Equatable {
        public var seq: Int64
        public var id: String
        public var type: String
        public var uniqueid: String?
        public var body: Data
        public var attempts: Int
        public var delivered: Bool
    }

    public func outbox(limit: Int = 1000) throws -> [OutboxEvent] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT seq, id, type, uniqueid, body, attempts, delivered_at FROM outbox ORDER BY seq LIMIT ?", arguments: [limit]).map {
                OutboxEvent(seq: $0[0], id: $0[1], type: $0[2], uniqueid: $0[3], body: $0[4], attempts: $0[5], delivered: ($0[6] as Int64?) != nil)
            }
        }
    }
}

extension Catalog {
    /// Undelivered events due at `now`, oldest first, skipping any whose recording has an older
    /// undelivered event, due or not (events of one recording go out in order: a later one waits
    /// until the earlier one is delivered, through all its retries). So at most one event of a
    /// recording is ever returned; events without a recording (`export.completed`) are unordered.
    public func dueEvents(now: Date, limit: Int = 50) throws -> [OutboxEvent] {
        try reading { try Self.dueEvents($0, now: now, limit: limit) }
    }

    /// `dueEvents(now:limit:)` on GRDB's reader queue.
    public func nextDueEvents(now: Date, limit: Int = 50) async throws -> [OutboxEvent] {
        try await pool.read { try Self.dueEvents($0, now: now, limit: limit) }
    }

    static func dueEvents(_ db: Database, now: Date, limit: Int) throws -> [OutboxEvent] {
        do {
            return try Row.fetchAll(db, sql: """
                SELECT seq, id, type, uniqueid, body, attempts, delivered_at FROM outbox AS o
                WHERE delivered_at IS NULL AND next_attempt_at <= ?
                  AND (uniqueid IS NULL OR NOT EXISTS (
                    SELECT 1 FROM outbox AS p WHERE p.uniqueid = o.uniqueid AND p.delivered_at IS NULL AND p.seq < o.seq))
                ORDER BY seq LIMIT ?
                """, arguments: [Int64(now.timeIntervalSince1970), limit]).map {
                OutboxEvent(seq: $0[0], id: $0[1], type: $0[2], uniqueid: $0[3], body: $0[4], attempts: $0[5], delivered: false)
            }
        }
    }

    public func markDelivered(_ seq: Int64, now: Date) throws {
        try settle(delivered: [seq], failed: [], now: now)
    }

    public func markFailed(_ seq: Int64, error: String, retryAt: Date) throws {
        try settle(delivered: [], failed: [(seq, error, retryAt)], now: Date())
    }

    /// Records the outcome of many attempts in one transaction (one fsync for a burst of
    /// deliveries instead of one each): `delivered` are done; `failed` are retried at `retryAt`.
    public func settle(delivered: [Int64], failed: [(seq: Int64, error: String, retryAt: Date)], now: Date) throws {
        guard !delivered.isEmpty || !failed.isEmpty else { return }
        try writing { try Self.settle($0, delivered: delivered, failed: failed, now: now) }
    }

    /// `settle(delivered:failed:now:)` on GRDB's writer queue.
    public func settleDeliveries(delivered: [Int64], failed: [(seq: Int64, error: String, retryAt: Date)], now: Date) async throws {
        guard !delivered.isEmpty || !failed.isEmpty else { return }
        let failures = failed.map { Failure(seq: $0.seq, error: $0.error, retryAt: $0.retryAt) }
        try await pool.write { try Self.settle($0, delivered: delivered, failed: failures.map { ($0.seq, $0.error, $0.retryAt) }, now: now) }
    }

    private struct Failure: Sendable { var seq: Int64; var error: String; var retryAt: Date }

    static func settle(_ db: Database, delivered: [Int64], failed: [(seq: Int64, error: String, retryAt: Date)], now: Date) throws {
        do {
            let done = try db.makeStatement(sql: "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE seq = ?")
            for seq in delivered { try done.execute(arguments: [Int64(now.timeIntervalSince1970), seq]) }
            let retry = try db.makeStatement(sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE seq = ?")
            for f in failed {
                try retry.execute(arguments: [String(f.error.prefix(500)), Int64(f.retryAt.timeIntervalSince1970.rounded(.up)), f.seq])
            }
        }
    }

    /// Undelivered events: (pending, of which failing at least once), and their details.
    public func undeliveredEvents() throws -> [(id: String, type: String, uniqueid: String?, attempts: Int, nextAttemptAt: Int64, lastError: String?)] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT id, type, uniqueid, attempts, next_attempt_at, last_error FROM outbox WHERE delivered_at IS NULL ORDER BY seq").map {
                (id: $0[0], type: $0[1], uniqueid: $0[2], attempts: $0[3], nextAttemptAt: $0[4], lastError: $0[5])
            }
        }
    }

    /// Forgets delivered events older than `cutoff`.
    public func pruneDelivered(before cutoff: Date) throws {
        guard try reading({ try Self.deliveredCount($0, cutoff) }) > 0 else { return }
        try writing { try Self.prune($0, cutoff) }
    }

    /// `pruneDelivered(before:)` on GRDB's queues.
    public func pruneDeliveredEvents(before cutoff: Date) async throws {
        guard try await pool.read({ try Self.deliveredCount($0, cutoff) }) > 0 else { return }
        try await pool.write { try Self.prune($0, cutoff) }
    }

    static func deliveredCount(_ db: Database, _ cutoff: Date) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE delivered_at < ?", arguments: [Int64(cutoff.timeIntervalSince1970)]) ?? 0
    }

    static func prune(_ db: Database, _ cutoff: Date) throws {
        try db.execute(sql: "DELETE FROM outbox WHERE delivered_at < ?", arguments: [Int64(cutoff.timeIntervalSince1970)])
    }
}

/// Wakes one waiter (the webhook sender) when events have been committed; a ring with nobody
/// waiting is kept for the next wait.
public final class OutboxBell: @unchecked Sendable {
    private let lock = NSLock()
    private var rung = false
    private var waiter: CheckedContinuation<Void, Never>?

    public init() {}

    public func ring() {
        lock.lock()
        let w = waiter
        waiter = nil
        if w == nil { rung = true }
        lock.unlock()
        w?.resume()
    }

    /// Returns when rung (or rung since the last wait), after `timeout`, or on cancellation.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForRing() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                lock.lock()
                if rung || Task.isCancelled {
                    rung = false
                    lock.unlock()
                    c.resume()
                } else {
                    waiter = c
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let w = waiter
            waiter = nil
            lock.unlock()
            w?.resume()
        }
    }
}
