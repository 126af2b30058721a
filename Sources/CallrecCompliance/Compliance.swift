// CallrecCompliance — what compliance staff and operators do with the stored recordings.
// Owns: retention purges, LGPD erasure, integrity checks (verify), and ZIP exports with manifests.
// Works on the catalog and the audio files; the CLI and the HTTP API are two faces over it.

import CallrecCatalog
import CallrecMedia
import Crypto
import Foundation
import CallrecSupport

/// Removals in batches: one transaction per batch of rows (each with its tombstone and audit
/// entry), then the files. Interrupted anywhere, a new run goes on where it stopped and start-up
/// recovery removes any file whose row is already gone.
public struct Remover: Sendable {
    public let catalog: Catalog
    public var batch = 500

    public init(catalog: Catalog) { self.catalog = catalog }

    /// Crypto-shredding first — the data keys go (the tombstones are committed already) — then the
    /// files. Keys that cannot be destroyed now keep their files, for `finishRemovals` to retry:
    /// a file is never unlinked while its key lives on (a backup copy would stay readable).
    func removeFiles(_ rows: [RecordingRow]) {
        do { try catalog.keys.destroy(uniqueids: rows.map(\.uniqueid)) } catch { return }
        var dirs = Set<String>()
        for row in rows {
            let path = catalog.data.absolute(row.opusPath)
            unlink(path)
            dirs.insert(parentDirectory(of: path))
        }
        for d in dirs { try? syncDirectory(d) }
    }

    static func add(_ rows: [RecordingRow], to report: inout RemovalReport) {
        for r in rows {
            report.count += 1
            report.audioSeconds += r.durationMs / 1000
            report.bytes += r.opusBytes
            report.uniqueids.append(r.uniqueid)
        }
    }

    /// Removes the files of removals a crash cut short (row gone, tombstone written, file still
    /// there), checking each file's SHA-256 against its tombstone. Returns how many.
    @discardableResult
    public func finishRemovals(since: Date? = nil) throws -> Int {
        var finished = 0
        for (uniqueid, rel, sha) in try catalog.tombstonesWithFiles(since: since) {
            let path = catalog.data.absolute(rel)
            guard FileManager.default.fileExists(atPath: path), catalog.isRemovedFile(path, tombstone: sha) else { continue }
            // A recording ingested again under the same uniqueid has a row (and no tombstone).
            try catalog.keys.destroy(uniqueids: [uniqueid])
            if unlink(path) == 0 { finished += 1 }
        }
        return finished
    }

    /// Applies the retention policy at `now`: CALLREC_RETENTION_DAYS, per-company overrides.
    /// It first finishes the removals an interrupted purge left behind.
    public func purge(now: Date, defaultDays: Int, dryRun: Bool, progress: (Int) -> Void = { _ in }) throws -> RemovalReport {
        var report = RemovalReport()
        report.held = try catalog.heldPastRetention(now: now, defaultDays: defaultDays)
        if !dryRun { try finishRemovals() }
        if dryRun {
            Self.add(try catalog.expired(now: now, defaultDays: defaultDays, limit: Int.max), to: &report)
            progress(report.count)
            return report
        }
        while true {
            let due = try catalog.expired(now: now, defaultDays: defaultDays, limit: batch)
            if due.isEmpty { break }
            let removed = try catalog.remove(due, reason: "purge", actor: "retention", now: now)
            removeFiles(removed)
            Self.add(removed, to: &report)
            progress(report.count)
            if removed.isEmpty { break }
        }
        return report
    }

    /// LGPD erasure of a phone number: every recording and metadata of it (of `company` only, when
    /// given: a company-scoped admin erases its own calls), except those on hold (reported). The
    /// audit keeps a keyed HMAC of the number (`numberKey`), which cannot be reversed by trying
    /// every phone number as a bare hash could. Afterwards the number is nowhere in the catalog:
    /// rows, outbox events, free pages (`secure_delete`) or the write-ahead log (checkpointed).
    public func erase(leadNumber: String, company: String? = nil, actor: String, now: Date, numberKey: String? = nil) throws -> RemovalReport {
        var report = RemovalReport()
        let rows = try catalog.recordings(leadNumber: leadNumber, company: company)
        report.held = rows.filter(\.legalHold).map(\.uniqueid)
        var pending = rows.filter { !$0.legalHold }
        while !pending.isEmpty {
            let chunk = Array(pending.prefix(batch))
            pending.removeFirst(chunk.count)
            let removed = try catalog.remove(chunk, reason: "erasure", actor: actor, now: now)
            removeFiles(removed)
            Self.add(removed, to: &report)
        }
        _ = try catalog.forgetPendingMetadata(leadNumber: leadNumber, company: company)
        let key = try numberKey ?? Secrets.value(.audit, data: catalog.data)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(leadNumber.utf8), using: SymmetricKey(data: Data(key.utf8)))
        let digest = Array(mac).hexString
        try catalog.audit([AuditEntry(at: now, actor: actor, role: nil, company: company, action: "erasure", uniqueid: nil,
                                      detail: "lead_number hmac-sha256 \(digest): \(report.count) removed, \(report.held.count) held")])
        try? catalog.checkpoint()
        return report
    }
}

/// The result of `verify`.
public struct VerifyReport: Codable, Sendable, Equatable {
    public var checked = 0
    public var ok = 0
    public var missing: [String] = []
    public var damaged: [String] = []
    /// Sealed files whose data key was destroyed (crypto-shredded): noise by design, not damage.
    public var shredded: [String] = []
    public init() {}
}

/// Re-hashes every stored file against the catalog.
public struct IntegrityChecker: Sendable {
    public let catalog: Catalog
    public init(catalog: Catalog) { self.catalog = catalog }

    public func verify(progress: (Int, Int) -> Void = { _, _ in }) throws -> VerifyReport {
        var report = VerifyReport()
        let rows = try catalog.everyRecording()
        for row in rows {
            report.checked += 1
            let path = catalog.data.absolute(row.opusPath)
            if !FileManager.default.fileExists(atPath: path) {
                report.missing.append(row.uniqueid)
            } else {
                do {
                    if try StoredFile.sha256(of: path) == row.opusSHA256 { report.ok += 1 } else { report.damaged.append(row.uniqueid) }
                } catch let e as SealError where e.kind == .shredded {
                    report.shredded.append(row.uniqueid)
                } catch {
                    report.damaged.append(row.uniqueid)
                }
            }
            progress(report.checked, rows.count)
        }
        return report
    }
}
