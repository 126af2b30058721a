import CallrecCatalog
import CallrecMedia
import CallrecSupport
import Foundation

/// What `callrec encrypt` / `callrec decrypt` did.
public struct ConversionReport: Codable, Sendable, Equatable {
    public var checked = 0
    /// Files converted by this run.
    public var converted = 0
    /// Already in the wanted form (a run cut short is resumed past them).
    public var already = 0
    public var missing: [String] = []
    /// Files that do not match the catalog's SHA-256, or whose key is gone: left as they are.
    public var failed: [String] = []
    public init() {}
}

/// Seals the stored plaintext recordings in place, or opens sealed ones back to plaintext. Each
/// file, under its uniqueid's lock (so an ingest appending to it waits): the data key committed
/// to the key store first; the new form written to a hidden temporary file beside it, checked
/// against the catalog's SHA-256 as it is written and read back in full, fsynced, given the old
/// file's times, renamed over it, the folder fsynced. Killed anywhere, each recording is either
/// its old file or its new one, both readable with what the key store holds; a new run skips
/// what is done and redoes the rest (start-up recovery removes the temporary files). The catalog
/// does not change: its size and SHA-256 are the plaintext Opus's, whatever the form on disk.
public struct AtRestConverter: Sendable {
    public let catalog: Catalog
    public init(catalog: Catalog) { self.catalog = catalog }

    public func encrypt(progress: (Int, Int) -> Void = { _, _ in }) throws -> ConversionReport {
        try convert(seal: true, progress: progress)
    }

    public func decrypt(progress: (Int, Int) -> Void = { _, _ in }) throws -> ConversionReport {
        try convert(seal: false, progress: progress)
    }

    func convert(seal: Bool, progress: (Int, Int) -> Void) throws -> ConversionReport {
        var report = ConversionReport()
        let rows = try catalog.everyRecording()
        for row in rows {
            report.checked += 1
            defer { progress(report.checked, rows.count) }
            let path = catalog.data.absolute(row.opusPath)
            let lock = try UniqueidLock(data: catalog.data, uniqueid: row.uniqueid)
            defer { lock.release() }
            guard FileManager.default.fileExists(atPath: path) else {
                report.missing.append(row.uniqueid)
                continue
            }
            if SealFormat.isSealed(path: path) == seal {
                report.already += 1
                continue
            }
            do {
                try convertOne(path: path, uniqueid: row.uniqueid, sha256: row.opusSHA256, seal: seal)
                report.converted += 1
            } catch let e as SealError {
                report.failed.append("\(row.uniqueid): \(e)")
            } catch let e as MediaError where e.kind == .verification {
                report.failed.append("\(row.uniqueid): \(e)")
            }
        }
        return report
    }

    func convertOne(path: String, uniqueid: String, sha256: String, seal: Bool) throws {
        let input = try StoredFile(path: path)
        guard try input.sha256() == sha256 else {
            throw MediaError(.verification, "\(path) does not match the catalog's SHA-256 (run callrec verify); left as it is")
        }
        let temp = Transcoder.temporaryPath(for: path)
        var keep = false
        defer { if !keep { unlink(temp) } }
        if seal {
            let key = try catalog.keys.dataKey(forRecording: uniqueid)
            try copyFile(input, to: temp, sealing: SealContext(key: key))
        } else {
            try copyFile(input, to: temp)
        }
        // Read back in full, through the same reader every other reader uses.
        let back = try StoredFile(path: temp)
        guard back.isSealed == seal, try back.sha256() == sha256 else {
            throw MediaError(.verification, "\(temp) does not read back as \(path)")
        }
        var st = stat()
        if fstat(input.descriptor, &st) == 0 {
            var times = [st.st_atim, st.st_mtim]
            utimensat(AT_FDCWD, temp, &times, 0)  // Last-Modified stays the recording's
        }
        guard rename(temp, path) == 0 else { throw MediaError.posix("cannot rename into", path) }
        keep = true
        try syncDirectory(parentDirectory(of: path))
    }
}
