import CallrecMedia
import Foundation
import GRDB

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
        let id = "evt_" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let event: [String: Any] = ["id": id, "type": type.rawValue, "created_at": RecordingTags.iso(now), key: object]
        let body = try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys, .withoutEscapingSlashes])
        try db.execute(
            sql: "INSERT INTO outbox (id, type, uniqueid, created_at, body) VALUES (?, ?, ?, ?, ?)",
            arguments: [id, type.rawValue, uniqueid, Int64(now.timeIntervalSince1970), body])
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
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, id, type, uniqueid, body, attempts, delivered_at FROM outbox ORDER BY seq LIMIT ?", arguments: [limit]).map {
                OutboxEvent(seq: $0[0], id: $0[1], type: $0[2], uniqueid: $0[3], body: $0[4], attempts: $0[5], delivered: ($0[6] as Int64?) != nil)
            }
        }
    }
}
