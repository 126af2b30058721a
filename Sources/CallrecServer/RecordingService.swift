import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import Foundation
import CallrecSupport
import NIOPosix

/// The one way from a request to the catalog and the audio files. It owns:
/// - finding a recording for a principal: the company scope (`Scope`) is applied here and only
///   here, for every route, the fast path and every change; another company's recording answers
///   exactly like a missing one;
/// - the audit policy: reads (audio, exports) are batched through `AuditWriter`; every change is
///   audited in the same transaction as the change;
/// - the row cache: invalidated by the catalog after each commit in this process (ingest, metadata,
///   holds, removals), re-read when the file it points to is gone.
/// Every catalog call here is async on GRDB's own queues: none runs on an event loop.
final class RecordingService: Sendable {
    let catalog: Catalog
    let audit: AuditWriter
    let rows = RowCache()
    /// Audio files held open for the fast path; dropped with the row on every change.
    let openFiles = OpenAudioCache()
    /// List pages computed at once: all cores but one (at least one).
    let listGate = Gate(permits: max(1, ProcessInfo.processInfo.activeProcessorCount - 1))
    let now: @Sendable () -> Date
    /// Free bytes of the file system holding `path` (injected by tests).
    let freeBytes: @Sendable (String) -> Int64?
    /// Export jobs one principal may have queued or running at once, and completed ones kept.
    let maxActiveExports: Int
    let maxKeptExports: Int
    /// Free space an export must leave on the data directory's file system.
    let exportReserveBytes: Int64

    init(
        catalog: Catalog, audit: AuditWriter, now: @escaping @Sendable () -> Date = Date.init,
        freeBytes: @escaping @Sendable (String) -> Int64? = FileSystemSpace.free,
        maxActiveExports: Int = 2, maxKeptExports: Int = 20, exportReserveBytes: Int64 = 256 << 20
    ) {
        self.catalog = catalog
        self.audit = audit
        self.now = now
        self.freeBytes = freeBytes
        self.maxActiveExports = maxActiveExports
        self.maxKeptExports = maxKeptExports
        self.exportReserveBytes = exportReserveBytes
        let (rows, openFiles) = (self.rows, self.openFiles)
        // Every commit that touches a recording (ingest and append, encryption, metadata, holds,
        // delete, purge, erasure, quarantine) drops its row and its open file at once, before the
        // file itself is renamed over or removed.
        catalog.changes.listen { ids in
            for id in ids {
                rows.invalidate(id)
                openFiles.invalidate(id)
            }
        }
    }

    static func notFound(_ id: String) -> APIError { APIError(.notFound, "not_found", "no recording \(id)") }

    // MARK: finding

    /// The recording, if it exists and the principal may see it; else 404 either way.
    func find(_ id: String, for principal: Principal) async throws -> RecordingRow {
        guard let row = try await catalog.find(id), principal.scope.allows(row.company) else { throw Self.notFound(id) }
        return row
    }

    /// The row through the cache (a player's many ranges share one read).
    func cachedFind(_ id: String, for principal: Principal) async throws -> RecordingRow {
        let row: RecordingRow?
        switch rows.lookup(id) {
        case .hit(let r): row = r
        case .miss(let epoch):
            row = try await catalog.find(id)
            rows.store(id, row, epoch: epoch)
        }
        guard let row, principal.scope.allows(row.company) else { throw Self.notFound(id) }
        return row
    }

    /// The stored Ogg Opus of a recording the principal may see (404 whether missing or not
    /// theirs; 503 when the row exists but its file does not).
    func audio(_ id: String, for principal: Principal) async throws -> StoredAudio {
        var row = try await cachedFind(id, for: principal)
        var st = stat()
        if stat(catalog.data.absolute(row.opusPath), &st) != 0 {
            // Removed meanwhile (by another process, whose change this cache cannot hear of): ask again.
            rows.invalidate(id)
            row = try await find(id, for: principal)
            guard stat(catalog.data.absolute(row.opusPath), &st) == 0 else {
                throw APIError(.serviceUnavailable, "audio_unavailable", "the audio of \(id) is not on disk")
            }
        }
        let path = catalog.data.absolute(row.opusPath)
        return StoredAudio(row: row, path: path, stat: st, sealed: SealFormat.isSealed(path: path))
    }

    /// For `AudioFastPath`, on an event loop: the audio, held open (`OpenAudioCache`), only when
    /// the row is in the cache (no catalog call on the loop) and visible; nil sends the request
    /// to the router, whose lookup fills the cache. A sealed file only when its key is in memory
    /// and its size is the catalog's (which stands in for authenticating its last segment: a
    /// sealed file cut short has another size).
    func cachedOpenedAudio(_ id: String, for principal: Principal) -> (StoredAudio, OpenAudio)? {
        guard case .hit(let found) = rows.lookup(id), let row = found, principal.scope.allows(row.company) else { return nil }
        let path = catalog.data.absolute(row.opusPath)
        guard let file = openFiles.open(id, path: path) else { return nil }
        if let sealed = file.sealed, sealed.size != row.opusBytes { return nil }
        return (StoredAudio(row: row, path: path, stat: file.stat, sealed: file.sealed != nil), file)
    }

    func waveform(_ id: String, for principal: Principal) async throws -> (RecordingRow, Data) {
        let row = try await find(id, for: principal)
        guard let json = try await catalog.waveform(id) else { throw APIError(.notFound, "not_found", "no waveform for \(id)") }
        return (row, json)
    }

    /// A page of the principal's recordings as the API's JSON, encoded on GRDB's reader queue,
    /// at most `listGate` at once: a page of 1,000 rows is 50–80 ms of a core, and four clients
    /// repeating them kept both cores busy, pushing a signed range's p99 past 10 ms
    /// (scripts/bench-list-load). One core is always left to the event loops.
    func listJSON(_ query: ListQuery, for principal: Principal) async throws -> Data {
        try await listGate.run { try await self.pageJSON(query, for: principal) }
    }

    private func pageJSON(_ query: ListQuery, for principal: Principal) async throws -> Data {
        var q = query
        // Another company's recordings are not there, as far as a scoped token can tell: an empty page.
        if let asked = q.company, !principal.scope.allows(asked) { return try JSONEncoder.callrec.encode(PageJSON(items: [], nextCursor: nil)) }
        q.company = try principal.scope.restrict(q.company)
        do {
            return try await catalog.list(q) { page in
                try JSONEncoder.callrec.encode(PageJSON(items: page.items.map(RecordingJSON.init), nextCursor: page.nextCursor))
            }
        } catch let e as CatalogError {
            throw APIError(.badRequest, "invalid_cursor", e.description)
        }
    }

    // MARK: audit

    /// An audit entry of `principal`, for a change (written in the change's transaction) or a read.
    func entry(_ principal: Principal, _ action: String, _ id: String?, company: String? = nil, detail: String? = nil, client: String?) -> AuditEntry {
        AuditEntry(
            at: now(), actor: principal.actor, role: principal.role?.rawValue, company: company ?? principal.company, action: action,
            uniqueid: id, detail: detail, client: client)
    }

    /// Audits a read (audio, waveform): batched, never on the request's critical path.
    func recordRead(_ principal: Principal, _ action: String, _ id: String, detail: String?, client: String?) {
        audit.record(entry(principal, action, id, detail: detail, client: client))
    }

    // MARK: changes

    /// Metadata for a call, before or after its audio. Fields left out keep their values. A
    /// company-scoped token changes only its company's calls (another's answers 404), never moves
    /// one to another company (403), and claims a call with no company yet for its own company.
    func setMetadata(_ id: String, _ patch: MetadataPatch, by principal: Principal, client: String?) async throws -> Metadata {
        var patch = patch
        let scope = principal.scope
        if case .company(let own) = scope {
            switch patch.company {
            case .keep: patch.company = .set(own)
            case .set(let c) where c == own: break
            default:
                throw APIError(.forbidden, "forbidden", "a token limited to company \(own) cannot move a call to another company")
            }
        }
        let detail = [("company", patch.company), ("agent", patch.agent), ("lead_number", patch.leadNumber)]
            .compactMap { name, f -> String? in f == .keep ? nil : name }.joined(separator: ",")
        do {
            let (merged, _) = try await catalog.setMetadata(
                id, patch, now: now(),
                check: { current in
                    // Known metadata (the recording's, or registered before the audio) of another
                    // company, or of none, is not a scoped token's to see or change.
                    if let current, !scope.allows(current.company) { throw Self.notFound(id) }
                },
                audit: entry(principal, "metadata.set", id, detail: detail.isEmpty ? nil : detail, client: client))
            return merged
        }
    }

    func setHold(_ id: String, on: Bool, reason: String?, by principal: Principal, client: String?) async throws -> RecordingRow {
        let scope = principal.scope
        do {
            return try await catalog.setHold(
                id, on: on, reason: on ? reason : nil, audit: entry(principal, on ? "hold" : "release", id, detail: reason, client: client),
                visible: { scope.allows($0.company) })
        } catch HoldError.notFound {
            throw Self.notFound(id)
        }
    }

    /// Deletes a recording now (409 under hold): the row, tombstone and audit entry in one
    /// transaction, then the file. A file that cannot be removed is logged; its tombstone lets the
    /// next purge or start-up finish the removal.
    func delete(_ id: String, by principal: Principal, client: String?) async throws -> String? {
        let scope = principal.scope
        let row: RecordingRow
        do {
            row = try await catalog.delete(
                id, reason: "deleted by \(principal.actor)", audit: entry(principal, "delete", id, client: client), visible: { scope.allows($0.company) })
        } catch HoldError.held(let reason) {
            throw APIError(.conflict, "legal_hold", "\(id) is under legal hold\(reason.map { " (\($0))" } ?? ""); release it first")
        } catch HoldError.notFound {
            throw Self.notFound(id)
        }
        let path = catalog.data.absolute(row.opusPath)
        // Crypto-shredding after the tombstone, before the file: a key that cannot be destroyed
        // now keeps its file for the next purge or start-up, which destroy the key first.
        let keys = catalog.keys
        do { try await NIOThreadPool.singleton.runIfActive { try keys.destroy(uniqueids: [id]) } } catch {
            return "cannot destroy the data key of \(id): \(error); the next purge or start-up finishes the removal"
        }
        if unlink(path) != 0 && errno != ENOENT {
            return "cannot remove \(path): \(String(cString: strerror(errno))); the next purge or start-up finishes the removal"
        }
        return nil
    }

    func holdByQuery(_ query: ListQuery, reason: String, by principal: Principal, client: String?) async throws -> [String] {
        var q = query
        q.company = try principal.scope.restrict(q.company)
        do {
            return try await catalog.holdAll(matching: q, reason: reason, actor: principal.actor, role: principal.role?.rawValue, client: client, now: now())
        } catch let e as CatalogError {
            throw APIError(.badRequest, "invalid_query", e.description)
        }
    }

    /// LGPD erasure of a phone number, within the principal's company when scoped.
    func erase(leadNumber: String, by principal: Principal) async throws -> RemovalReport {
        let (catalog, company, actor, at) = (self.catalog, principal.scope.company, principal.actor, now())
        return try await Worker(name: "callrec-erase") {
            try Remover(catalog: catalog).erase(leadNumber: leadNumber, company: company, actor: actor, now: at)
        }.value()
    }

    func retention(for principal: Principal) async throws -> [String: Int] {
        try await catalog.retentionOverrides(company: principal.scope.company)
    }

    /// Sets or clears a company's retention; a scoped token only its own company's (403 otherwise).
    func setRetention(company: String, days: Int?, by principal: Principal, client: String?) async throws -> [String: Int] {
        _ = try principal.scope.restrict(company)
        try await catalog.setRetention(
            company: company, days: days,
            audit: entry(principal, "retention.set", nil, company: company, detail: days.map { "\($0) days" } ?? "default", client: client))
        return try await catalog.retentionOverrides(company: principal.scope.company)
    }

    // MARK: exports

    /// Queues an export of the principal's recordings in `from..<to`: 429 past the per-principal
    /// job limits, 507 when the export would not leave the reserve free on the data's file system.
    func createExport(from: Date, to: Date, company: String?, recipient: String? = nil, by principal: Principal) async throws -> ExportJob {
        let company = try principal.scope.restrict(company)
        let counts = try await catalog.jobCounts(requestedBy: principal.actor)
        if counts.active >= maxActiveExports {
            throw APIError(
                .tooManyRequests, "too_many_exports",
                "\(counts.active) exports of yours are still queued or running (at most \(maxActiveExports)); wait for one to finish")
        }
        if counts.kept >= maxKeptExports {
            throw APIError(
                .tooManyRequests, "too_many_exports",
                "\(counts.kept) finished exports of yours are still kept (at most \(maxKeptExports)); they are removed after CALLREC_EXPORT_TTL_HOURS")
        }
        let (n, bytes) = try await catalog.footprint(ListQuery(from: from, to: to, company: company))
        let needed = Int64(bytes) + Int64(n) * 1024 + (1 << 20)
        if let free = freeBytes(catalog.data.exportsRoot), free - needed < exportReserveBytes {
            throw APIError(
                .init(code: 507, reasonPhrase: "Insufficient Storage"), "insufficient_storage",
                "the export needs about \(needed >> 20) MiB and the data directory has \(free >> 20) MiB free (\(exportReserveBytes >> 20) MiB are kept in reserve)")
        }
        let id = randomHex(bytes: 16)
        let job = ExportJob(id: id, from: from, to: to, company: company, requestedBy: principal.actor, now: now(), recipient: recipient)
        try await catalog.saveJob(job)
        return job
    }

    /// A job the principal may see: its company's, or any for unscoped principals and signed URLs.
    func job(_ id: String, for principal: Principal) async throws -> ExportJob {
        guard id.count == 32, id.allSatisfy(\.isHexDigit), let job = try await catalog.job(id), principal.scope.allows(job.company)
        else { throw APIError(.notFound, "not_found", "no export \(id.prefix(64))") }
        return job
    }

}

/// Free space where a path lives.
public enum FileSystemSpace {
    /// Bytes available to this user on the file system holding `path` (nil when it cannot be told).
    @Sendable public static func free(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }
}

/// The stored Ogg Opus of a recording: where it is, its size (the plaintext's, for a sealed
/// file: derived from the file's size) and time.
struct StoredAudio: Sendable {
    let row: RecordingRow
    let path: String
    let size: Int
    let modified: Date
    /// Encrypted at rest (Sealed.swift): read through `SealedBody`, never sent as it is.
    let sealed: Bool

    init(row: RecordingRow, path: String, stat st: stat, sealed: Bool = false) {
        self.row = row
        self.path = path
        self.sealed = sealed
        size = sealed ? SealFormat.plaintextSize(sealedSize: Int(st.st_size)) ?? 0 : Int(st.st_size)
        modified = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec))
    }

    var opusETag: String { "\"\(row.opusSHA256.prefix(32))\"" }
    var wavETag: String { "\"wav-\(row.opusSHA256.prefix(32))\"" }
    static let opusType = "audio/ogg; codecs=opus"
}

/// At most `permits` operations at once; the others wait their turn, in order, without holding a thread.
actor Gate {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(permits: Int) { free = permits }

    func run<T: Sendable>(_ work: @Sendable () async throws -> T) async throws -> T {
        if free > 0 {
            free -= 1
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
        defer {
            if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
        }
        return try await work()
    }
}
