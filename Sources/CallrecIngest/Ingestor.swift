import CallrecCatalog
import CallrecMedia
import Foundation
import Logging
import Metrics
import CallrecSupport

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

    public func relative(_ path: String) -> String {
        if let root = spoolRoot, path.hasPrefix(root + "/") { return String(path.dropFirst(root.count + 1)) }
        return path.split(separator: "/").last.map(String.init) ?? path
    }

    /// Ingests one file. Never throws: every failure is an outcome.
    ///
    /// The file is opened once (`SpoolFile`: no symlink, no FIFO, a regular file) and hashed and
    /// decoded through that descriptor; its path is used again only to remove or quarantine it,
    /// and only while it still names the file examined.
    public func ingest(path: String) -> IngestOutcome {
        let source: SpoolFile
        switch SpoolFile.open(path) {
        case .success(let f): source = f
        case .failure(.notAFile(let reason)): return .skipped(reason: reason)
        case .failure(.transient(let reason)): return .deferred(reason: reason)
        }
        let name = relative(path)
        guard let parsed = naming.parse(name) ?? Self.fallbackName(name) else {
            return quarantine(source, name: name, reason: "the file name carries no Asterisk uniqueid", sha: nil)
        }
        if let unreachable = Self.unreachable(parsed) {
            return quarantine(source, name: name, reason: unreachable, sha: try? source.sha256())
        }
        let id = parsed.uniqueid
        var log = logger
        log[metadataKey: "uniqueid"] = "\(id)"
        log[metadataKey: "file"] = "\(name)"
        let lock: UniqueidLock
        do { lock = try UniqueidLock(data: catalog.data, uniqueid: id) } catch { return .deferred(reason: "\(error)") }
        defer { lock.release() }
        guard source.isStill(at: path) else { return .skipped(reason: "\(path) was taken meanwhile") }
        do {
            let sha = try source.sha256()
            // The same bytes under the same uniqueid: already in. (Two calls may well have identical
            // bytes — two silent calls of one length — so other uniqueids do not count.)
            if try catalog.parts(of: id).contains(where: { $0.sha256 == sha }) {
                try removeSource(source)
                log.info("already ingested; source removed")
                return .duplicate(uniqueid: id)
            }
            var existing = try catalog.recording(id)
            if let leg = parsed.leg, let row = existing {
                // One r()/t() leg, and the call is already stored (from the mix, the other leg alone,
                // or a stereo pair without this file): appending a leg would be wrong, dropping it a
                // loss. It is kept, in quarantine, with the reason.
                let what = row.loneLeg != nil ? "from its other leg alone (mono), stored when this one had not arrived in time"
                    : row.channels == 2 ? "in stereo from two other legs" : "from another file (the mix)"
                return quarantine(
                    source, name: name,
                    reason: "the \(leg.rawValue) leg of \(id) arrived after the call was stored \(what); kept here, not appended", sha: sha)
            }
            if existing == nil, try catalog.tombstone(id) != nil {
                // Deleted, purged or erased: its audio must not come back. A leftover audio file
                // (a removal cut short) is removed; the source is kept, in quarantine, never ingested.
                try finishRemoval(uniqueid: id, log: log)
                return quarantine(
                    source, name: name, reason: "recording \(id) was removed (deleted, purged or erased); its audio is not taken back in",
                    sha: sha)
            }
            if existing == nil {
                existing = try adoptOrphan(uniqueid: id, sourceSHA256: sha, log: log)
                if let row = existing, try catalog.parts(of: id).contains(where: { $0.sha256 == sha }) {
                    try removeSource(source)
                    log.info("recovered after a crash; source removed", metadata: ["recording": "\(row.uniqueid)"])
                    return .duplicate(uniqueid: id)
                }
            } else if let row = existing {
                // A crash after an append's rename, before its commit: the file already holds this part.
                let onDisk = try? OpusVerifier.inspect(path: catalog.data.absolute(row.opusPath))
                if let onDisk, onDisk.sourceSHA256s.contains(sha), onDisk.sha256 != row.opusSHA256 {
                    try adopt(path: catalog.data.absolute(row.opusPath), uniqueid: id, relative: row.opusPath, log: log)
                    try removeSource(source)
                    return .duplicate(uniqueid: id)
                }
            }
            let meta = try mergedMetadata(id, path: parsed.metadata, existing: existing, log: log)
            let parts = try catalog.parts(of: id)
            let startedAt = existing?.startedAtDate ?? RecordingTags.epoch(ofUniqueID: id)
            var tags = RecordingTags(uniqueid: id, startedAt: startedAt, company: meta.company, agent: meta.agent, leadNumber: meta.leadNumber)
            tags.startedAt = startedAt

            var transcoder = self.transcoder
            if let channels = parsed.channels { transcoder.rawChannels = channels }  // the pattern's {channels}
            let result: TranscodeResult
            let relativeOut: String
            if let row = existing {
                relativeOut = row.opusPath
                let previous = PreviousRecording(path: catalog.data.absolute(row.opusPath), sourceSHA256s: parts.map(\.sha256))
                result = try transcoder.transcode(
                    descriptor: source.fd, name: path, output: catalog.data.absolute(relativeOut), tags: tags, appendingTo: previous, sourceSHA256: sha)
            } else {
                // The start is needed for the folder: from the uniqueid, else mtime − duration
                // (known after the pipeline), so the file is first written under today's folder.
                let provisional = startedAt ?? now()
                relativeOut = DataDirectory.audioRelativePath(uniqueid: id, startedAt: provisional)
                try makeDirectory(for: catalog.data.absolute(relativeOut))
                result = try transcoder.transcode(
                    descriptor: source.fd, name: path, output: catalog.data.absolute(relativeOut), tags: tags, sourceSHA256: sha)
            }
            var finalRelative = relativeOut
            if existing == nil, startedAt == nil {
                let proper = DataDirectory.audioRelativePath(uniqueid: id, startedAt: result.startedAt)
                if proper != relativeOut {
                    try makeDirectory(for: catalog.data.absolute(proper))
                    guard rename(catalog.data.absolute(relativeOut), catalog.data.absolute(proper)) == 0 else {
                        throw MediaError.posix("cannot rename into", proper)
                    }
                    try syncDirectory(parentDirectory(of: catalog.data.absolute(proper)))
                    finalRelative = proper
                }
            }
            let partRow = SourcePartRow(
                uniqueid: id, part: parts.count + 1, sha256: sha, bytes: result.source.bytes, format: result.source.format.name,
                name: name, samples: result.measurements.samples - result.previousSamples, ingestedAt: Int64(now().timeIntervalSince1970))
            var row = RecordingRow(
                uniqueid: id, startedAt: result.startedAt, metadata: meta, measurements: result.measurements,
                source: (result.source.format.name, parts.reduce(0) { $0 + $1.bytes } + result.source.bytes, sha),
                opusPath: finalRelative, opus: (result.opus.bytes, result.bitrate, result.opus.sha256), parts: parts.count + 1, now: now())
            try addAMIFacts(to: &row, result, name: name)
            row.loneLeg = parsed.leg?.rawValue  // one leg whose partner never came: mono, flagged
            try catalog.commit(recording: row, parts: parts + [partRow], waveform: result.waveform)
            // Counted with the commit, before the source goes: whoever sees the spool empty sees the count.
            Counter(label: "callrec_ingested_total").increment()
            Counter(label: "callrec_audio_seconds_total").increment(by: Int64(result.measurements.durationMs / 1000))
            Counter(label: "callrec_bytes_saved_total").increment(by: Int64(max(0, result.source.bytes - result.opus.bytes)))
            try removeSource(source)
            log.info(
                existing == nil ? "ingested" : "appended",
                metadata: ["duration_ms": "\(result.measurements.durationMs)", "opus_bytes": "\(result.opus.bytes)", "parts": "\(parts.count + 1)"])
            return .ingested(uniqueid: id, parts: parts.count + 1)
        } catch let e as MediaError where e.isPermanent {
            return quarantine(source, name: name, reason: e.message, sha: try? source.sha256())
        } catch {
            log.warning("ingest deferred", metadata: ["error": "\(error)"])
            Counter(label: "callrec_ingest_deferred_total").increment()
            return .deferred(reason: "\(error)")
        }
    }

    /// What AMI said about the call (CallrecAMI wrote it to the catalog as it happened), on this
    /// recording's timeline; nil when AMI did not see it.
    func amiFacts(_ id: String, _ result: TranscodeResult, name: String) throws -> AMIFacts? {
        guard let call = try catalog.call(id) else { return nil }
        // A PCM mute is exact zeros; GSM (`.WAV`, `.gsm`) and A-law code it as near-silence.
        let format = result.source.format.name
        let exact = format != "gsm" && format != "alaw" && !name.hasSuffix(".WAV")
        return CallTimeline.facts(call: call, pauses: try catalog.pauses(of: id), measurements: result.measurements, pcm: exact)
    }

    /// What AMI saw of the call, into the row: its facts, and the parties' numbers where the CRM
    /// gave no agent or lead number (then not kept twice: they served their purpose).
    func addAMIFacts(to row: inout RecordingRow, _ result: TranscodeResult, name: String) throws {
        guard let facts = try amiFacts(row.uniqueid, result, name: name) else { return }
        let meta = Self.filled(Metadata(company: row.company, agent: row.agent, leadNumber: row.leadNumber), from: facts)
        row.agent = meta.agent
        row.leadNumber = meta.leadNumber
        var kept = facts
        kept.caller = nil
        kept.connected = nil
        row.ami = kept.json
    }

    /// The CRM's agent and lead number win; AMI's parties fill what it left empty.
    static func filled(_ meta: Metadata, from facts: AMIFacts) -> Metadata {
        let (agent, lead) = CallTimeline.parties(facts)
        return Metadata(company: meta.company, agent: meta.agent ?? agent, leadNumber: meta.leadNumber ?? lead)
    }

    /// The call's metadata: the stored row's, then the spool path's, then what was registered
    /// (PUT …/metadata) — except that registered metadata naming another company than the spool
    /// path is dropped whole and audited: the PBX's dialplan is the authority on the company.
    func mergedMetadata(_ id: String, path pathMeta: Metadata, existing: RecordingRow?, log: Logger) throws -> Metadata {
        var apiMeta = try catalog.metadata(for: id) ?? Metadata()
        if existing == nil, let pathCompany = pathMeta.company, let registered = apiMeta.company, registered != pathCompany {
            let detail = "registered for company \(registered), filed by the spool under \(pathCompany): the spool path wins"
            try catalog.audit([AuditEntry(at: now(), actor: "ingest", role: nil, company: pathCompany, action: "metadata.conflict", uniqueid: id, detail: detail)])
            log.warning("registered metadata names another company than the spool path; the spool path wins", metadata: ["registered": "\(registered)", "spool": "\(pathCompany)"])
            apiMeta = Metadata()
        }
        return (existing.map { Metadata(company: $0.company, agent: $0.agent, leadNumber: $0.leadNumber) } ?? Metadata())
            .overridden(by: pathMeta).overridden(by: apiMeta)
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
        try adoptOrphan(uniqueid: uniqueid, sources: [sourceSHA256], log: log)
    }

    /// As above, for a file made of `sources` (the two legs of a stereo call).
    func adoptOrphan(uniqueid: String, sources: [String], log: Logger) throws -> RecordingRow? {
        guard let startedAt = RecordingTags.epoch(ofUniqueID: uniqueid) else { return nil }
        let relative = DataDirectory.audioRelativePath(uniqueid: uniqueid, startedAt: startedAt)
        let absolute = catalog.data.absolute(relative)
        guard FileManager.default.fileExists(atPath: absolute) else { return nil }
        // Removed (deleted, purged, erased) but the crash came before its file went: finish the
        // removal, as start-up recovery does; a removed recording is never adopted back.
        if let removed = try catalog.tombstone(uniqueid) {
            if catalog.isRemovedFile(absolute, tombstone: removed) {
                try catalog.keys.destroy(uniqueids: [uniqueid])
                try removeFile(absolute)
                log.notice("finished the removal of a removed recording's audio file", metadata: ["path": "\(relative)"])
            }
            return nil
        }
        // Its one source is the file in hand (a crash between rename and commit): redone from the
        // source, measured exactly, rather than adopted from the lossy audio; the new file replaces it.
        if (try? OpusVerifier.inspect(path: absolute))?.sourceSHA256s == sources { return nil }
        return try adopt(path: absolute, uniqueid: uniqueid, relative: relative, log: log)
    }

    /// A tombstoned uniqueid's audio file still on disk (a removal cut short): removed when its
    /// SHA-256 is the tombstone's.
    func finishRemoval(uniqueid: String, log: Logger) throws {
        guard let removed = try catalog.tombstone(uniqueid), let startedAt = RecordingTags.epoch(ofUniqueID: uniqueid) else { return }
        let absolute = catalog.data.absolute(DataDirectory.audioRelativePath(uniqueid: uniqueid, startedAt: startedAt))
        guard FileManager.default.fileExists(atPath: absolute), catalog.isRemovedFile(absolute, tombstone: removed) else { return }
        try catalog.keys.destroy(uniqueids: [uniqueid])
        try removeFile(absolute)
        log.notice("finished the removal of a removed recording's audio file", metadata: ["path": "\(absolute)"])
    }

    private func removeFile(_ absolute: String) throws {
        guard unlink(absolute) == 0 || errno == ENOENT else { throw MediaError.posix("cannot remove", absolute) }
        try? syncDirectory(parentDirectory(of: absolute))
    }

    /// Why a recognised name would give a recording no route could serve, or nil when it is fine:
    /// a uniqueid that is not `UniqueID.isValid` (e.g. longer than 128 characters), or a path
    /// field starting with a dot (a hidden file or folder, which spool tools treat as temporary).
    static func unreachable(_ name: SpoolName) -> String? {
        guard UniqueID.isValid(name.uniqueid) else {
            return "the uniqueid '\(name.uniqueid.prefix(160))' (\(name.uniqueid.utf8.count) characters) is not valid: "
                + "1–128 of A–Z a–z 0–9 . _ - not starting with a dot, or no URL could serve it"
        }
        for (field, value) in [("company", name.metadata.company), ("agent", name.metadata.agent), ("lead_number", name.metadata.leadNumber)] {
            if let value, value.hasPrefix(".") {
                return "\(field) '\(value)' starts with a dot: a hidden name in the spool; rename it and run `callrec quarantine retry`"
            }
        }
        return nil
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
        try catalog.commit(recording: row, parts: parts, waveform: w)
        log.notice("adopted an audio file that had no catalog row", metadata: ["path": "\(relative)"])
        return row
    }

    /// Moves a file that cannot be ingested to `quarantine/YYYY-MM-DD/`, with its reason beside it
    /// and in the catalog. Never deletes it, never replaces a file already there (a second file
    /// of the same name gets `2-NAME`, …), and moves only the file examined: if its path names
    /// another file by now, that one is left where it is.
    func quarantine(_ source: SpoolFile, name: String, reason: String, sha: String?) -> IngestOutcome {
        let day = ISO8601DateFormatter.string(from: now(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
        let dir = catalog.data.quarantineRoot + "/" + day
        let base = name.replacingOccurrences(of: "/", with: "_")
        do {
            try makeDirectories(dir)
            guard source.isStill(at: source.path) else {
                return .skipped(reason: "\(source.path) changed while it was examined; left alone")
            }
            var target = ""
            var reasonFD: Int32 = -1
            defer { if reasonFD >= 0 { close(reasonFD) } }
            var n = 0
            var copied = false  // across file systems: a copy of the bytes examined (from the descriptor)
            while true {
                n += 1
                target = dir + "/" + (n == 1 ? "" : "\(n)-") + base
                // The reason file's name first (O_EXCL), so that it never replaces a file
                // quarantined under that name; then the file, never replacing one either.
                reasonFD = open(target + ".reason.txt", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, DataDirectory.fileMode)
                if reasonFD < 0 {
                    if errno == EEXIST { continue }
                    throw MediaError.posix("cannot create", target + ".reason.txt")
                }
                var code = renameNoReplace(source.path, target)
                if code == EXDEV {
                    copied = true
                    code = try copyExclusively(source, to: target) ? 0 : EEXIST
                }
                if code == 0 { break }
                close(reasonFD)
                reasonFD = -1
                unlink(target + ".reason.txt")
                if code == EEXIST { continue }
                throw MediaError.posix("cannot move", source.path, code)
            }
            if !copied && !source.isStill(at: target) {
                // Swapped between the check and the move: put it back, take nothing.
                _ = renameNoReplace(target, source.path)
                unlink(target + ".reason.txt")
                return .skipped(reason: "\(source.path) changed while it was examined; left alone")
            }
            // Copied across file systems: the source's name goes once the copy is safe.
            if copied { try source.unlinkIfSame() }
            fchmod(source.fd, DataDirectory.fileMode)  // best effort: the spool's owner may be Asterisk
            try writeReason(reason, to: reasonFD, path: target + ".reason.txt")
            try syncDirectory(dir)
            try? syncDirectory(parentDirectory(of: source.path))
            try catalog.quarantine(QuarantineRow(
                sourceName: name, path: String(target.dropFirst(catalog.data.root.count + 1)), reason: reason, sha256: sha, bytes: source.size,
                at: Int64(now().timeIntervalSince1970)))
            Counter(label: "callrec_quarantined_total").increment()
            logger.warning("quarantined", metadata: ["file": "\(name)", "reason": "\(reason)", "to": "\(target)"])
            return .quarantined(reason: reason)
        } catch {
            logger.error("cannot quarantine", metadata: ["file": "\(name)", "error": "\(error)"])
            return .deferred(reason: "cannot quarantine (\(reason)): \(error)")
        }
    }

    /// Across file systems: the bytes behind the descriptor (the file examined) into a new file
    /// (`O_EXCL`), fsynced. False when `to` is taken.
    private func copyExclusively(_ source: SpoolFile, to: String) throws -> Bool {
        let out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, DataDirectory.fileMode)
        if out < 0 {
            if errno == EEXIST { return false }
            throw MediaError.posix("cannot create", to)
        }
        defer { close(out) }
        var ok = false
        defer { if !ok { unlink(to) } }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var offset: off_t = 0
        while true {
            let n = pread(source.fd, buffer, 1 << 20, offset)
            if n < 0 { if errno == EINTR { continue }; throw MediaError.posix("cannot read", source.path) }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = write(out, buffer + done, n - done)
                if w < 0 { if errno == EINTR { continue }; throw MediaError.posix("cannot write", to) }
                done += w
            }
            offset += off_t(n)
        }
        guard fsync(out) == 0 else { throw MediaError.posix("cannot fsync", to) }
        ok = true
        return true
    }

    private func writeReason(_ reason: String, to fd: Int32, path: String) throws {
        let bytes = Array("\(reason)\n".utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) == bytes.count, fsync(fd) == 0 else {
            throw MediaError.posix("cannot write", path)
        }
    }

    /// Removes an ingested source from the spool (only if its path still names the file
    /// ingested), then fsyncs the spool folder.
    func removeSource(_ source: SpoolFile) throws {
        if try !source.unlinkIfSame() {
            logger.warning("the spool path no longer names the file ingested; left alone", metadata: ["file": "\(source.path)"])
        }
        try? syncDirectory(parentDirectory(of: source.path))
    }

    func makeDirectory(for file: String) throws {
        try makeDirectories(parentDirectory(of: file))
    }
}
