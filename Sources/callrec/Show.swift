import ArgumentParser
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecServer
import Foundation

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one recording.",
        discussion: """
            A uniqueid with no recording is reported as what it is, with a non-zero exit: quarantined \
            (why, where, when), pending (metadata registered and no audio yet, or its file still in \
            the spool), or removed.
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The recording's uniqueid, e.g. 1732467600.42.") var uniqueid: String
    @Flag(help: "Print the contract's JSON.") var json = false
    @Option(help: "The spool, to find a file not ingested yet (default: CALLREC_SPOOL, else ./spool).") var spool: String?

    func run() async throws {
        var settings = try common.loadSettings()
        if let spool { settings.spool = spool }
        let catalog = try common.loadCatalog(settings)
        let row: RecordingRow?
        do { row = try catalog.recording(uniqueid) } catch { throw CommandFailure("\(error)") }
        guard let row else { throw try await notCatalogued(settings, catalog) }
        let r = RecordingJSON(row)
        if json {
            try printJSON(r)
            return
        }
        print("""
            \(r.uniqueid)  started \(r.startedAt)  \(Self.duration(r.durationMs))  \(r.channels) ch \(r.sampleRate) Hz
              company \(r.company ?? "-")  agent \(r.agent ?? "-")  lead \(r.leadNumber ?? "-")\(r.legalHold ? "  LEGAL HOLD" : "")
              audio   \(settings.data.absolute(row.opusPath)) (\(r.opus.bytes) B, from \(r.source.format) \(r.source.bytes) B\(r.parts > 1 ? " in \(r.parts) parts" : ""))
              levels  peak \(Transcode.db(r.levels.peakDBFS)) dBFS, rms \(Transcode.db(r.levels.rmsDBFS)) dBFS, \(r.levels.clippedSamples) clipped
              silence \(r.silence.totalMs) ms (\(String(format: "%.1f", r.silence.ratio * 100))%), longest \(r.silence.longestMs) ms
            """)
        // What AMI said (CALLREC_AMI): the call's times, PCI pauses and the time MixMonitor dropped.
        if let ended = r.endedAt {
            print("  call    answered \(r.answeredAt ?? "-")  ended \(ended)\(r.hangupCause.map { "  cause \($0)" } ?? "")")
        }
        for p in r.pauses ?? [] {
            let zeros = p.zeros.map { $0 ? "" : "  NOT MUTED IN THE AUDIO" } ?? ""
            print("  paused  \(Self.duration(p.startMs))–\(Self.duration(p.endMs)) by \(p.by ?? "Asterisk") at \(p.requestedAt ?? "-"), ended by \(p.endedBy ?? "-")\(zeros)")
        }
        for g in r.gaps ?? [] { print("  gap     \(g.lostMs) ms missing at \(Self.duration(g.atMs)) (\(g.why))") }
    }

    /// What is known of a uniqueid with no recording, printed on stdout (`--json`: an object with
    /// `status` quarantined | pending | removed); the one-line failure to throw.
    func notCatalogued(_ settings: Settings, _ catalog: Catalog) async throws -> CommandFailure {
        let q = try QuarantineContext(common, spool: spool)
        let quarantined = try await catalog.quarantineEntries(mentioning: uniqueid)
            .filter { q.ingestor.uniqueid(ofSourceName: $0.sourceName) == uniqueid }.map(q.json)
        let metadata = try catalog.metadata(for: uniqueid)
        let inSpool = Self.spoolFiles(of: uniqueid, ingestor: q.ingestor)
        let removed = try catalog.tombstone(uniqueid) != nil
        let status = !quarantined.isEmpty ? "quarantined" : metadata != nil || !inSpool.isEmpty ? "pending" : removed ? "removed" : nil
        guard let status else { return CommandFailure("no recording \(uniqueid)") }
        if json {
            struct State: Encodable {
                var uniqueid, status: String
                var quarantine: [QuarantineJSON]
                var metadata: MetadataJSON?
                var spoolFiles: [String]
                var removed: Bool
                enum CodingKeys: String, CodingKey { case uniqueid, status, quarantine, metadata, spoolFiles = "spool_files", removed }
            }
            struct MetadataJSON: Encodable {
                var company, agent, leadNumber: String?
                enum CodingKeys: String, CodingKey { case company, agent, leadNumber = "lead_number" }
            }
            try printJSON(State(
                uniqueid: uniqueid, status: status, quarantine: quarantined,
                metadata: metadata.map { MetadataJSON(company: $0.company, agent: $0.agent, leadNumber: $0.leadNumber) },
                spoolFiles: inSpool, removed: removed))
        } else {
            print("\(uniqueid)  \(status.uppercased())")
            for e in quarantined {
                print("  quarantined \(e.at) (entry \(e.id)): \(e.reason)\n    file \(e.path)\n    retry: callrec quarantine retry \(e.id)")
            }
            if let m = metadata {
                print("  metadata registered: company \(m.company ?? "-")  agent \(m.agent ?? "-")  lead \(m.leadNumber ?? "-")")
            }
            for f in inSpool { print("  in the spool, not ingested yet: \(f)") }
            if removed { print("  removed (deleted, purged or erased)") }
            if status == "pending" && inSpool.isEmpty { print("  no audio yet") }
        }
        switch status {
        case "quarantined": return CommandFailure("recording \(uniqueid) is quarantined: \(quarantined[0].reason)")
        case "removed": return CommandFailure("recording \(uniqueid) was removed")
        default: return CommandFailure("recording \(uniqueid) is pending: " + (inSpool.isEmpty ? "metadata registered, no audio yet" : "its file is still in the spool"))
        }
    }

    /// Files under the spool whose name carries `uniqueid`.
    static func spoolFiles(of uniqueid: String, ingestor: Ingestor) -> [String] {
        guard let root = ingestor.spoolRoot, let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let item = walker.nextObject() as? String {
            guard item.contains(uniqueid), ingestor.uniqueid(ofSourceName: item) == uniqueid else { continue }
            out.append(root + "/" + item)
        }
        return out.sorted()
    }

    static func duration(_ ms: Int) -> String {
        let s = ms / 1000
        return String(format: "%d:%02d:%02d.%03d", s / 3600, s / 60 % 60, s % 60, ms % 1000)
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recordings in a time range, in start order.")

    @OptionGroup var common: CommonOptions
    @Option(help: "From this instant or date (inclusive).") var from: String?
    @Option(help: "To this instant or date (exclusive).") var to: String?
    @Option(help: "Only this company.") var company: String?
    @Option(help: "Only this agent.") var agent: String?
    @Option(name: .customLong("lead-number"), help: "Only this lead number.") var leadNumber: String?
    @Option(help: "At most this many (default: all).") var limit: Int?
    @Flag(help: "Print a JSON array of the contract's recording objects.") var json = false

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        var q = ListQuery(company: company, agent: agent, leadNumber: leadNumber, limit: Catalog.maxPageSize)
        do {
            q.from = try from.map { try parseTime($0, zone: settings.timeZone) }
            q.to = try to.map { try parseTime($0, zone: settings.timeZone) }
        } catch { throw CommandFailure("\(error)") }
        var rows: [RecordingRow] = []
        repeat {
            let page: Page
            do { page = try catalog.list(q) } catch { throw CommandFailure("\(error)") }
            rows += page.items
            q.cursor = page.nextCursor
        } while q.cursor != nil && rows.count < (limit ?? .max)
        if let limit { rows = Array(rows.prefix(limit)) }
        if json {
            try printJSON(rows.map(RecordingJSON.init))
            return
        }
        for row in rows {
            let r = RecordingJSON(row)
            print([r.startedAt, r.uniqueid, Show.duration(r.durationMs), r.company ?? "-", r.agent ?? "-", r.leadNumber ?? "-"].joined(separator: "\t"))
        }
    }
}
