import CallrecCatalog
import Foundation

/// Recording rows for the audio routes, kept for `ttl`: a player asks for many ranges of one
/// recording in a few seconds, and each used to cost a catalog read. Changes made through this
/// server (metadata, hold, delete) drop the entry at once; changes by another process (the CLI)
/// are seen within `ttl`. The audio file itself is opened afresh on every request.
final class RowCache: @unchecked Sendable {
    private struct Entry {
        var row: RecordingRow?
        var at: UInt64
    }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    let ttlNanoseconds: UInt64
    let capacity: Int

    init(ttl: Double = 1, capacity: Int = 4096) {
        ttlNanoseconds = UInt64(ttl * 1e9)
        self.capacity = capacity
    }

    func row(_ uniqueid: String, load: () throws -> RecordingRow?) rethrows -> RecordingRow? {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        // `e.at` may be later than `now`: another thread stored it after `now` was read.
        if let e = entries[uniqueid], e.at &+ ttlNanoseconds > now {
            lock.unlock()
            return e.row
        }
        lock.unlock()
        let row = try load()
        lock.lock()
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[uniqueid] = Entry(row: row, at: now)
        lock.unlock()
        return row
    }

    func invalidate(_ uniqueid: String) {
        lock.lock()
        entries[uniqueid] = nil
        lock.unlock()
    }
}
