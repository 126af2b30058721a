import CallrecCatalog
import CallrecMedia
import Foundation
import CallrecSupport

extension Ingestor {
    /// Puts a quarantined file back into the spool under the name it came with, for the watcher
    /// (or `callrec ingest`) to take again after a fix; then forgets its quarantine record and
    /// reason file. Never replaces a file in the spool and never loses this one: it is in the
    /// spool before the record goes (a crash in between leaves it in the spool, and the record).
    /// `name` (relative to the spool) puts it back under another name: for a name that was the
    /// problem. Returns the path in the spool.
    public func restore(_ entry: QuarantineRow, as name: String? = nil) async throws -> String {
        guard let root = spoolRoot else { throw MediaError(.unreadable, "no spool to put the file back into") }
        guard let id = entry.id else { throw MediaError(.unreadable, "quarantine entry has no id") }
        let from = catalog.data.absolute(entry.path)
        // The name came from the spool (relative) or from `callrec ingest` (a bare file name);
        // never let it climb out of the spool.
        let parts = (name ?? entry.sourceName).split(separator: "/").filter { $0 != ".." && $0 != "." && !$0.isEmpty }
        guard !parts.isEmpty else { throw MediaError(.unreadable, "quarantine entry \(id) has no usable source name") }
        let to = root + "/" + parts.joined(separator: "/")
        var st = stat()
        guard lstat(from, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw MediaError.posix("cannot find", from) }
        try FileManager.default.createDirectory(atPath: parentDirectory(of: to), withIntermediateDirectories: true)
        switch renameNoReplace(from, to) {
        case 0: break
        case EEXIST: throw MediaError(.io, "\(to) already exists in the spool: left in quarantine")
        case EXDEV:
            // Another file system: a hidden copy (the watcher ignores it), fsynced, then its name.
            let temp = parentDirectory(of: to) + "/.callrec-retry-\(id)-\(UInt32.random(in: 0...UInt32.max))"
            do {
                try FileManager.default.copyItem(atPath: from, toPath: temp)
                let fd = open(temp, O_RDONLY | O_CLOEXEC)
                if fd >= 0 {
                    fsync(fd)
                    close(fd)
                }
                let code = renameNoReplace(temp, to)
                guard code == 0 else {
                    throw code == EEXIST ? MediaError(.io, "\(to) already exists in the spool: left in quarantine") : MediaError.posix("cannot move into", to, code)
                }
            } catch {
                unlink(temp)
                throw error
            }
            try syncDirectory(parentDirectory(of: to))
            guard unlink(from) == 0 || errno == ENOENT else { throw MediaError.posix("cannot remove", from) }
        case let code: throw MediaError.posix("cannot move \(from) to", to, code)
        }
        try? syncDirectory(parentDirectory(of: to))
        try? syncDirectory(parentDirectory(of: from))
        unlink(from + ".reason.txt")
        try await catalog.removeQuarantineEntry(id: id)
        logger.notice("quarantined file put back into the spool", metadata: ["file": "\(to)", "quarantine_id": "\(id)"])
        return to
    }

    /// The uniqueid a quarantined file's source name carries, if any (as the ingest reads names).
    public func uniqueid(ofSourceName name: String) -> String? {
        (naming.parse(name) ?? Self.fallbackName(name))?.uniqueid
    }
}
