import CallrecCatalog
import CallrecMedia
import Foundation
import Logging
import Metrics

/// What became of one file.
public enum IngestOutcome: Sendable, Equatable {
    /// A new recording, or a later part appended to one (`parts` > 1).
    case ingested(uniqueid: String, parts: Int)
    /// The file was already in the catalog (ingested before a crash, or twice): source removed.
    case duplicate(uniqueid: String)
    /// The file cannot be ingested (not audio, unsupported): moved to quarantine with the reason.
    case quarantined(reason: String)
    /// Trouble on the machine (disk full, permissions, a busy catalog): the source stays; try later.
    case deferred(reason: String)
    /// The file disappeared or is not a regular file: nothing to do.
    case skipped(reason: String)
}

/// The crash-safe ingest transaction, in this order: hash the source; Opus to a temporary file,
/// fsync, verify by decoding, rename into `audio/YYYY/MM/DD/`, fsync the directory; commit the
/// catalog row; only then remove the source and fsync the spool directory. A crash at any point
/// leaves something `ingest` (run again on the same source) or `Recovery` finishes or undoes.
public final class Ingestor: Sendable {
    public let catalog: Catalog
    public let transcoder: Transcoder
    public let naming: SpoolNaming
    /// The spool root, to name files relative to it (for patterns and quarantine records).
    public let spoolRoot: String?
    let logger: Logger
    let now: @Sendable () -> Date

    public init(catalog: Catalog, transcoder: Transcoder, naming: SpoolNaming, spoolRoot: String?, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.catalog = catalog
        self.transcoder = transcoder
        self.naming = naming
        self.spoolRoot = spoolRoot.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.logger = logger
        self.now = now
    }

    func relative(_ path: String) -> String {
        if let root = spoolRoot, path.hasPrefix(root + "/") { return String(path.dropFirst(root.count + 1)) }
        return path.split(separator: "/").last.map(String.init) ?? path
    }

    /// Ingests one file. Never throws: every failure is an outcome.
    public func ingest(path: String) -> IngestOutcome {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .skipped(reason: "\(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IFMT == S_IFREG else { return .skipped(reason: "\(path) is not a regular file") }
        let name = relative(path)
        guard let parsed = naming.parse(name) ?? Self.fallbackName(name) else {
            return quarantine(path, name: name, reason: "the file name carries no Asterisk uniqueid", sha: nil)
        }
        let id = parsed.uniqueid
        var log = logger
        log[metadataKey: "uniqueid"] = "\(id)"
        log[metadataKey: "file"] = "\(name)"
        let lock: UniqueidLock
        do { lock = try UniqueidLock(data: catalog.data, uniqueid: id) } catch { return .deferred(reason: "\(error)") }
        defer { lock.release() }
        guard lstat(path, &st) == 0 else { return .skipped(reason: "\(path) was taken meanwhile") }
        do {
            let sha = try Transcoder.sha256(of: path)
            // The same bytes under the same uniqueid: already in. (Two calls may well have identical
            // bytes — two silent calls of one length — so other uniqueids do not count.)
            if try catalog.parts(of: id).contains(where: { $0.sha256 == sha }) {
                try removeSource(path)
                log.info("already ingested; source removed")
                return .duplicate(uniqueid: id)
            }
            var existing = try catalog.recording(id)
            if existing == nil {
                existing = try adoptOrphan(uniqueid: id, sourceSHA256: sha, log: log)
                if let row = existing, try catalog.parts(of: id).contains(where: { $0.sha256 == sha }) {
                    try removeSource(path)
                    log.info("recovered after a crash; source removed", metadata: ["recording": "\(row.uniqueid)"])
                    return .duplicate(uniqueid: id)
                }
            } else if let row = existing {
                // A crash after an append's rename, before its commit: the file already holds this part.
                let onDisk = try? OpusVerifier.inspect(path: catalog.data.absolute(row.opusPath))
                if let onDisk, onDisk.sourceSHA256s.contains(sha), onDisk.sha256 != row.opusSHA256 {
                    try adopt(path: catalog.data.absolute(row.opusPath), uniqueid: id, relative: row.opusPath, log: log)
                    try removeSource(path)
                    return .duplicate(uniqueid: id)
                }
            }
            let pathMeta = parsed.metadata
            var apiMeta = try catalog.metadata(for: id) ?? Metadata()
            if existing == nil, let pathCompany = pathMeta.company, let registered = apiMeta.company, registered != pathCompany {
                // The spool path is written by the PBX's dialplan: it is the authority on the company.
                // Metadata registered for this call under another company is dropped whole (its agent
                // and lead number were that company's claim) and the conflict is audited.
                let detail = "registered for company \(registered), filed by the spool under \(pathCompany): the spool path wins"
                try catalog.audit([AuditEntry(at: now(), actor: "ingest", role: nil, company: pathCompany, action: "metadata.conflict", uniqueid: id, detail: detail)])
                log.warning("registered metadata names another company than the spool path; the spool path wins", metadata: ["registered": "\(registered)", "spool": "\(pathCompany)"])
                apiMeta = Metadata()
            }
            let meta = (existing.map { Metadata(company: $0.company, agent: $0.agent, leadNumber: $0.leadNumber) } ?? Metadata())
                .overridden(by: pathMeta).overridden(by: apiMeta)
            let parts = try catalog.parts(of: id)
            let startedAt = existing?.startedAtDate ?? RecordingTags.epoch(ofUniqueID: id)
            var tags = RecordingTags(uniqueid: id, startedAt: startedAt, company: meta.company, agent: meta.agent, leadNumber: meta.leadNumber)
            tags.startedAt = startedAt

            let result: TranscodeResult
            let relativeOut: String
            if let row = existing {
                relativeOut = row.opusPath
                let previous = PreviousRecording(path: catalog.data.absolute(row.opusPath), sourceSHA256s: parts.map(\.sha256))
                result = try transcoder.transcode(input: path, output: catalog.data.absolute(relativeOut), tags: tags, appendingTo: previous, sourceSHA256: sha)
            } else {
                // The start is needed for the folder: from the uniqueid, else mtime − duration
                // (known after the pipeline), so the file is first written under today's folder.
                let provisional = startedAt ?? now()
                relativeOut = DataDirectory.audioRelativePath(uniqueid: id, startedAt: provisional)
                try makeDirectory(for: catalog.data.absolute(relativeOut))
                result = try transcoder.transcode(input: path, output: catalog.data.absolute(relativeOut), tags: tags, sourceSHA256: sha)
            }
            var finalRelative = relativeOut
            if existing == nil, startedAt == nil {
                let proper = DataDirectory.audioRelativePath(uniqueid: id, startedAt: result.startedAt)
                if proper != relativeOut {
                    try makeDirectory(for: catalog.data.absolute(proper))
                    guard rename(catalog.data.absolute(relativeOut), catalog.data.absolute(proper)) == 0 else {
                        throw MediaError.posix("cannot rename into", proper)
                    }
                    try syncDirectory(Transcoder.directoryOf(catalog.data.absolute(proper)))
                    finalRelative = proper
                }
            }
            let partRow = SourcePartRow(
                uniqueid: id, part: parts.count + 1, sha256: sha, bytes: result.source.bytes, format: result.source.format.name,
                name: name, samples: result.measurements.samples - result.previousSamples, ingestedAt: Int64(now().timeIntervalSince1970))
            let row = RecordingRow(
                uniqueid: id, startedAt: result.startedAt, metadata: meta, measurements: result.measurements,
                source: (result.source.format.name, parts.reduce(0) { $0 + $1.bytes } + result.source.bytes, sha),
                opusPath: finalRelative, opus: (result.opus.bytes, result.bitrate, result.opus.sha256), parts: parts.count + 1, now: now())
            try catalog.commit(recording: row, parts: parts + [partRow], waveform: try JSONEncoder.callrec.encode(result.waveform))
            try removeSource(path)
            Counter(label: "callrec_ingested_total").increment()
            Counter(label: "callrec_audio_seconds_total").increment(by: Int64(result.measurements.durationMs / 1000))
            Counter(label: "callrec_bytes_saved_total").increment(by: Int64(max(0, result.source.bytes - result.opus.bytes)))
            log.info(
                existing == nil ? "ingested" : "appended",
                metadata: ["duration_ms": "\(result.measurements.durationMs)", "opus_bytes": "\(result.opus.bytes)", "parts": "\(parts.count + 1)"])
            return .ingested(uniqueid: id, parts: parts.count + 1)
        } catch let e as MediaError where e.isPermanent {
            return quarantine(path, name: name, reason: e.message, sha: try? Transcoder.sha256(of: path))
        } catch {
            log.warning("ingest deferred", metadata: ["error": "\(error)"])
            Counter(label: "callrec_ingest_deferred_total").increment()
            return .deferred(reason: "\(error)")
        }
    }

    /// When no pattern matches, a file named like a uniqueid-less recording still gets an id: its
    /// name without the extension, if that is safe as a file name.
    static func fallbackName(_ relative: String) -> SpoolName? {
        let file = relative.split(separator: "/").last.map(String.init) ?? relative
        guard let dot = file.lastIndex(of: "."), dot != file.startIndex else { return nil }
        let stem = String(file[..<dot])
        let ok = stem.count <= 128 && stem.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0)
        }
        guard ok, !stem.hasPrefix(".") else { return nil }
        return SpoolName(uniqueid: stem, metadata: Metadata(), ext: String(file[file.index(after: dot)...]))
    }

    /// An audio file at the recording's place with no catalog row (a crash between rename and
    /// commit, or a lost catalog): take it into the catalog from its own tags and audio.
    func adoptOrphan(uniqueid: String, sourceSHA256: String, log: Logger) throws -> RecordingRow? {
        guard let startedAt = RecordingTags.epoch(ofUniqueID: uniqueid) else { return nil }
        let relative = DataDirectory.audioRelativePath(uniqueid: uniqueid, startedAt: startedAt)
        let absolute = catalog.data.absolute(relative)
        guard FileManager.default.fileExists(atPath: absolute) else { return nil }
        return try adopt(path: absolute, uniqueid: uniqueid, relative: relative, log: log)
    }

    @discardableResult
    public func adopt(path: String, uniqueid: String, relative: String, log: Logger) throws -> RecordingRow {
        let (m, w, info) = try transcoder.analyze(opus: path)
        let started = info.tags["STARTED_AT"].flatMap { ISO8601DateFormatter().date(from: $0) } ?? RecordingTags.epoch(ofUniqueID: uniqueid) ?? now()
        let meta = Metadata(company: info.tags["COMPANY"], agent: info.tags["AGENT"], leadNumber: info.tags["LEAD_NUMBER"])
            .overridden(by: try catalog.metadata(for: uniqueid) ?? Metadata())
        let old = try catalog.parts(of: uniqueid)
        let parts = info.sourceSHA256s.enumerated().map { i, sha in
            old.first { $0.sha256 == sha }
                ?? SourcePartRow(uniqueid: uniqueid, part: i + 1, sha256: sha, bytes: 0, format: info.tags["SOURCE_FORMAT"] ?? "unknown", name: "", samples: 0, ingestedAt: Int64(now().timeIntervalSince1970))
        }.enumerated().map { i, p in var p = p; p.part = i + 1; return p }
        let bitrate = info.tags["ENCODER"].flatMap { e in e.split(separator: " ").first { $0.hasPrefix("bitrate=") }.flatMap { Int($0.dropFirst(8)) } } ?? transcoder.encoder.bitrate
        let row = RecordingRow(
            uniqueid: uniqueid, startedAt: started, metadata: meta, measurements: m,
            source: (info.tags["SOURCE_FORMAT"] ?? "unknown", parts.reduce(0) { $0 + $1.bytes }, info.sourceSHA256s.last ?? ""),
            opusPath: relative, opus: (info.bytes, bitrate, info.sha256), parts: max(parts.count, 1), now: now())
        try catalog.commit(recording: row, parts: parts, waveform: try JSONEncoder.callrec.encode(w))
        log.notice("adopted an audio file that had no catalog row", metadata: ["path": "\(relative)"])
        return row
    }

    /// Moves a file that cannot be ingested to `quarantine/YYYY-MM-DD/`, with its reason beside it
    /// and in the catalog. Never deletes it.
    func quarantine(_ path: String, name: String, reason: String, sha: String?) -> IngestOutcome {
        let day = ISO8601DateFormatter.string(from: now(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
        let dir = catalog.data.quarantineRoot + "/" + day
        let base = name.replacingOccurrences(of: "/", with: "_")
        var target = dir + "/" + base
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var n = 1
            while FileManager.default.fileExists(atPath: target) {
                n += 1
                target = dir + "/\(n)-" + base
            }
            var st = stat()
            let bytes = lstat(path, &st) == 0 ? Int(st.st_size) : 0
            try moveDurably(path, to: target)
            try Data("\(reason)\n".utf8).write(to: URL(fileURLWithPath: target + ".reason.txt"))
            try catalog.quarantine(QuarantineRow(
                sourceName: name, path: String(target.dropFirst(catalog.data.root.count + 1)), reason: reason, sha256: sha, bytes: bytes,
                at: Int64(now().timeIntervalSince1970)))
            Counter(label: "callrec_quarantined_total").increment()
            logger.warning("quarantined", metadata: ["file": "\(name)", "reason": "\(reason)", "to": "\(target)"])
            return .quarantined(reason: reason)
        } catch {
            logger.error("cannot quarantine", metadata: ["file": "\(name)", "error": "\(error)"])
            return .deferred(reason: "cannot quarantine (\(reason)): \(error)")
        }
    }

    /// rename(2), or copy + fsync + unlink across file systems; then fsync both directories.
    func moveDurably(_ from: String, to: String) throws {
        if rename(from, to) != 0 {
            guard errno == EXDEV else { throw MediaError.posix("cannot move", from) }
            try FileManager.default.copyItem(atPath: from, toPath: to)
            let fd = open(to, O_RDONLY)
            if fd >= 0 {
                fsync(fd)
                close(fd)
            }
            guard unlink(from) == 0 else { throw MediaError.posix("cannot remove", from) }
        }
        try syncDirectory(Transcoder.directoryOf(to))
        try syncDirectory(Transcoder.directoryOf(from))
    }

    func removeSource(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw MediaError.posix("cannot remove", path) }
        try? syncDirectory(Transcoder.directoryOf(path))
    }

    func makeDirectory(for file: String) throws {
        try FileManager.default.createDirectory(atPath: Transcoder.directoryOf(file), withIntermediateDirectories: true)
    }
}
