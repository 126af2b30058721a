import CallrecCatalog
import Foundation

/// Recording rows for the audio routes, kept for `ttl`: a player asks for many ranges of one
/// recording in a few seconds, and each used to cost a catalog read. Every commit in this process
/// (ingest, metadata, hold, removal) drops its rows at once (`Catalog.changes`); changes by another
/// process (the CLI) are seen within `ttl`. A row read before an invalidation is never stored
/// after it: `store` is given the epoch `lookup` saw, and any invalidation in between bumps it.
final class RowCache: @unchecked Sendable {
    private struct Entry {
        var row: RecordingRow?
        var at: UInt64
    }
    enum Lookup {
        case hit(RecordingRow?)
        /// Not cached (or stale): read the catalog, then `store` with this epoch.
        case miss(epoch: UInt64)
    }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var epoch: UInt64 = 0
    let ttlNanoseconds: UInt64
    let capacity: Int

    init(ttl: Double = 1, capacity: Int = 4096) {
        ttlNanoseconds = UInt64(ttl * 1e9)
        self.capacity = capacity
    }

    func lookup(_ uniqueid: String) -> Lookup {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        defer { lock.unlock() }
        // `e.at` may be later than `now`: another thread stored it after `now` was read.
        if let e = entries[uniqueid], e.at &+ ttlNanoseconds > now { return .hit(e.row) }
        return .miss(epoch: epoch)
    }

    func store(_ uniqueid: String, _ row: RecordingRow?, epoch seen: UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        defer { lock.unlock() }
        guard seen == epoch else { return }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[uniqueid] = Entry(row: row, at: now)
    }

    func invalidate(_ uniqueid: String) {
        lock.lock()
        entries[uniqueid] = nil
        epoch &+= 1
        lock.unlock()
    }
}
