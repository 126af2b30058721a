import CallrecCatalog
import CallrecMedia
import Foundation
import Logging

/// What start-up recovery found and did.
public struct RecoveryReport: Sendable, Equatable {
    public var removedTemporaryFiles = 0
    public var adoptedFiles = 0
    public var finishedRemovals = 0
    public var failures: [String] = []
}

extension Ingestor {
    /// Finishes or undoes what a crash interrupted, before the watcher starts:
    /// - temporary files of an interrupted pipeline (`.NAME.partial-…`) are removed;
    /// - an audio file with no catalog row is taken into the catalog from its tags and audio,
    ///   unless its source is still in the spool (the ingest that follows redoes it exactly), or
    ///   its recording was removed (a tombstone with its SHA-256): then the removal is finished.
    /// A committed row whose source is still in the spool needs nothing here: ingesting the source
    /// finds its SHA-256 in the catalog and only removes it.
    public func recover(pendingUniqueids: Set<String>) -> RecoveryReport {
        var report = RecoveryReport()
        let root = catalog.data.audioRoot
        guard let walker = FileManager.default.enumerator(atPath: root) else { return report }
        var rows: [String: String]
        do { rows = try catalog.allAudioPaths() } catch {
            report.failures.append("catalog: \(error)")
            return report
        }
        let known = Set(rows.values)
        while let item = walker.nextObject() as? String {
            let name = item.split(separator: "/").last.map(String.init) ?? item
            let absolute = root + "/" + item
            if name.hasPrefix("."), name.contains(".partial-") {
                if unlink(absolute) == 0 { report.removedTemporaryFiles += 1 }
                continue
            }
            guard name.hasSuffix(".opus") else { continue }
            let relative = "audio/" + item
            if known.contains(relative) { continue }
            let uniqueid = String(name.dropLast(5))
            if pendingUniqueids.contains(uniqueid) { continue }
            do {
                // Removed (deleted, purged, erased) but the crash came before the file went: finish.
                if let removed = try catalog.tombstone(uniqueid), catalog.isRemovedFile(absolute, tombstone: removed) {
                    try catalog.keys.destroy(uniqueids: [uniqueid])
                    if unlink(absolute) == 0 { report.finishedRemovals += 1 }
                    continue
                }
                try adopt(path: absolute, uniqueid: uniqueid, relative: relative, log: logger)
                report.adoptedFiles += 1
            } catch {
                report.failures.append("\(relative): \(error)")
                logger.error("cannot adopt an audio file with no catalog row", metadata: ["path": "\(relative)", "error": "\(error)"])
            }
        }
        if report.removedTemporaryFiles > 0 || report.adoptedFiles > 0 {
            logger.notice("recovered", metadata: ["temporary_files_removed": "\(report.removedTemporaryFiles)", "files_adopted": "\(report.adoptedFiles)"])
        }
        return report
    }
}

/// An exclusive lock per uniqueid, across threads and processes (`serve` and `callrec ingest`
/// may meet on the same call): flock(2) on one of 64 lock files in `<data>/locks/`.
struct UniqueidLock {
    private let fd: Int32

    init(data: DataDirectory, uniqueid: String) throws {
        let dir = data.root + "/locks"
        try makeDirectories(dir)
        var h: UInt32 = 2_166_136_261
        for b in uniqueid.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        let path = dir + "/\(h % 64).lock"
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, DataDirectory.fileMode)
        guard fd >= 0 else { throw MediaError.posix("cannot open lock", path) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR {
                close(fd)
                throw MediaError.posix("cannot lock", path)
            }
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
