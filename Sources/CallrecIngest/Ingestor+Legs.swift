import CallrecCatalog
import CallrecMedia
import CallrecSupport
import Foundation
import Logging
import Metrics

extension Ingestor {
    /// Ingests the files of one call written with MixMonitor's `r()`/`t()` (the watcher groups
    /// them: both legs, and the mixed file when there is one). Never throws: every failure is an
    /// outcome, and no file is lost.
    ///
    /// - Both legs: one 2-channel recording, channel 0 the read leg. A mixed file beside them is
    ///   redundant only when it is verified to be, sample for sample, the saturated sum of the legs
    ///   (what MixMonitor writes): then its SHA-256 is kept as a part of the recording (so the file
    ///   is recognised should it come again) and it is removed with the legs. Otherwise it goes to
    ///   quarantine with the reason; the legs are stored either way.
    /// - One leg (its partner never arrived in time): a mixed file, if any, is ingested as the call
    ///   (it holds both sides) and the leg then goes to quarantine with the reason; with no mix, the
    ///   leg alone becomes a mono recording flagged `lone_leg`.
    public func ingest(call paths: [String]) -> IngestOutcome {
        var read: String?, write: String?
        var mixes: [String] = []
        for p in paths {
            switch (naming.parse(relative(p)) ?? Self.fallbackName(relative(p)))?.leg {
            case .read?: if read == nil { read = p } else { mixes.append(p) }
            case .write?: if write == nil { write = p } else { mixes.append(p) }
            case nil: mixes.append(p)
            }
        }
        guard let read, let write else {
            var last: IngestOutcome = .skipped(reason: "no files")
            for p in mixes + [read, write].compactMap({ $0 }) { last = ingest(path: p) }
            return last
        }
        let r: SpoolFile, w: SpoolFile
        switch (SpoolFile.open(read), SpoolFile.open(write)) {
        case (.success(let a), .success(let b)): (r, w) = (a, b)
        case (.failure(.transient(let reason)), _), (_, .failure(.transient(let reason))): return .deferred(reason: reason)
        case (.failure(.notAFile), _): return ingest(call: [write] + mixes)  // one leg gone meanwhile: the rest as they are
        case (_, .failure(.notAFile)): return ingest(call: [read] + mixes)
        }
        let readName = relative(read)
        guard let parsed = naming.parse(readName) ?? Self.fallbackName(readName) else {
            return ingest(path: read)  // cannot happen (grouped by name); the one-file path quarantines it
        }
        if let unreachable = Self.unreachable(parsed) {
            _ = quarantine(w, name: relative(write), reason: unreachable, sha: try? w.sha256())
            return quarantine(r, name: readName, reason: unreachable, sha: try? r.sha256())
        }
        // Files handed to the one-file path once the uniqueid's lock is released (it takes it too).
        var later: [String] = []
        let outcome = legs(r, w, mixes: mixes, parsed: parsed, later: &later)
        for m in later { _ = ingest(path: m) }
        return outcome
    }

    private func legs(_ r: SpoolFile, _ w: SpoolFile, mixes: [String], parsed: SpoolName, later: inout [String]) -> IngestOutcome {
        let read = r.path, write = w.path, readName = relative(r.path)
        let id = parsed.uniqueid
        var log = logger
        log[metadataKey: "uniqueid"] = "\(id)"
        log[metadataKey: "file"] = "\(readName)"
        let lock: UniqueidLock
        do { lock = try UniqueidLock(data: catalog.data, uniqueid: id) } catch { return .deferred(reason: "\(error)") }
        defer { lock.release() }
        guard r.isStill(at: read), w.isStill(at: write) else { return .skipped(reason: "\(read) or \(write) was taken meanwhile") }
        do {
            let rsha = try r.sha256(), wsha = try w.sha256()
            let parts = try catalog.parts(of: id)
            let known = Set(parts.map(\.sha256))
            if known.contains(rsha) && known.contains(wsha) {
                // Stored before a crash: the legs go; a mix goes only if its bytes are stored too.
                try removeSource(r)
                try removeSource(w)
                later += mixes  // a duplicate if it was verified and kept as a part
                log.info("legs already ingested; sources removed")
                return .duplicate(uniqueid: id)
            }
            if try catalog.recording(id) == nil, try catalog.tombstone(id) != nil {
                try finishRemoval(uniqueid: id, log: log)
                let reason = "recording \(id) was removed (deleted, purged or erased); its audio is not taken back in"
                _ = quarantine(w, name: relative(write), reason: reason, sha: wsha)
                later += mixes  // quarantined by the one-file path, for the same reason
                return quarantine(r, name: readName, reason: reason, sha: rsha)
            }
            var existing = try catalog.recording(id)
            if existing == nil { existing = try adoptOrphan(uniqueid: id, sources: [rsha, wsha], log: log) }
            if let row = existing {
                let reason = "recording \(id) is already stored (\(row.channels) ch, \(row.parts) part(s)) and these r()/t() legs are not in it; kept here, not merged"
                _ = quarantine(w, name: relative(write), reason: reason, sha: wsha)
                let outcome = quarantine(r, name: readName, reason: reason, sha: rsha)
                later += mixes
                return outcome
            }
            let meta = try mergedMetadata(id, path: parsed.metadata, existing: nil, log: log)
            let startedAt = RecordingTags.epoch(ofUniqueID: id)
            let tags = RecordingTags(uniqueid: id, startedAt: startedAt, company: meta.company, agent: meta.agent, leadNumber: meta.leadNumber)

            // The mix: redundant only if verified equal to the legs' sum; else kept, in quarantine.
            var verifiedMixes: [(SpoolFile, String, MixCheck)] = []
            for m in mixes {
                guard case .success(let mf) = SpoolFile.open(m) else { continue }  // gone: the watcher sees it again if it comes back
                let msha = try mf.sha256()
                let check: MixCheck
                do {
                    check = try Transcoder.checkMix(mix: (mf.fd, m), read: (r.fd, read), write: (w.fd, write))
                } catch let e as MediaError where e.isPermanent {
                    check = .differs(e.message)
                }
                if case .differs(let why) = check {
                    _ = quarantine(mf, name: relative(m), reason: "the mixed file of \(id) is not the sum of its r()/t() legs (\(why)); the legs are stored in stereo, the mix is kept here", sha: msha)
                } else {
                    verifiedMixes.append((mf, msha, check))
                }
            }

            let provisional = startedAt ?? now()
            var relativeOut = DataDirectory.audioRelativePath(uniqueid: id, startedAt: provisional)
            try makeDirectory(for: catalog.data.absolute(relativeOut))
            let result = try transcoder.transcode(
                read: LegSource(descriptor: r.fd, name: read, sha256: rsha), write: LegSource(descriptor: w.fd, name: write, sha256: wsha),
                output: catalog.data.absolute(relativeOut), tags: tags)
            if startedAt == nil {
                let proper = DataDirectory.audioRelativePath(uniqueid: id, startedAt: result.startedAt)
                if proper != relativeOut {
                    try makeDirectory(for: catalog.data.absolute(proper))
                    guard rename(catalog.data.absolute(relativeOut), catalog.data.absolute(proper)) == 0 else { throw MediaError.posix("cannot rename into", proper) }
                    try syncDirectory(parentDirectory(of: catalog.data.absolute(proper)))
                    relativeOut = proper
                }
            }
            let at = Int64(now().timeIntervalSince1970)
            let samples = result.measurements.samples
            var partRows = [
                SourcePartRow(uniqueid: id, part: 1, sha256: rsha, bytes: r.size, format: result.source.format.name, name: readName, samples: samples, ingestedAt: at),
                SourcePartRow(uniqueid: id, part: 2, sha256: wsha, bytes: w.size, format: result.source.format.name, name: relative(write), samples: samples, ingestedAt: at),
            ]
            for (mf, msha, check) in verifiedMixes {
                guard case .equal(let n) = check else { continue }
                partRows.append(SourcePartRow(
                    uniqueid: id, part: partRows.count + 1, sha256: msha, bytes: mf.size, format: SourceFormat(fileName: mf.path).name,
                    name: relative(mf.path), samples: n, ingestedAt: at))
            }
            var row = RecordingRow(
                uniqueid: id, startedAt: result.startedAt, metadata: meta, measurements: result.measurements,
                source: (result.source.format.name, partRows.reduce(0) { $0 + $1.bytes }, rsha),
                opusPath: relativeOut, opus: (result.opus.bytes, result.bitrate, result.opus.sha256), parts: partRows.count, now: now())
            try addAMIFacts(to: &row, result, name: readName)
            try catalog.commit(recording: row, parts: partRows, waveform: result.waveform)
            Counter(label: "callrec_ingested_total").increment()
            Counter(label: "callrec_audio_seconds_total").increment(by: Int64(result.measurements.durationMs / 1000))
            Counter(label: "callrec_bytes_saved_total").increment(by: Int64(max(0, row.sourceBytes - result.opus.bytes)))
            try removeSource(r)
            try removeSource(w)
            for (mf, _, _) in verifiedMixes { try removeSource(mf) }
            log.info("ingested r()/t() legs as one stereo recording", metadata: [
                "duration_ms": "\(result.measurements.durationMs)", "opus_bytes": "\(result.opus.bytes)", "mixes_verified": "\(verifiedMixes.count)",
            ])
            return .ingested(uniqueid: id, parts: partRows.count)
        } catch let e as MediaError where e.isPermanent {
            let reason = "r()/t() legs of \(id) cannot be combined: \(e.message)"
            _ = quarantine(w, name: relative(write), reason: reason, sha: try? w.sha256())
            let outcome = quarantine(r, name: readName, reason: reason, sha: try? r.sha256())
            later += mixes
            return outcome
        } catch {
            log.warning("ingest deferred", metadata: ["error": "\(error)"])
            Counter(label: "callrec_ingest_deferred_total").increment()
            return .deferred(reason: "\(error)")
        }
    }
}
