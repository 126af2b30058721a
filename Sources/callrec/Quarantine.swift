import ArgumentParser
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecServer
import Foundation

/// `callrec quarantine list|show|retry`: the files that could not be ingested.
struct Quarantine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Files that could not be ingested: list them, show why, put one back into the spool.",
        subcommands: [QuarantineList.self, QuarantineShow.self, QuarantineRetry.self])
}

/// One quarantine entry as printed (`--json`).
struct QuarantineJSON: Encodable {
    var id: Int64
    var sourceName: String
    var uniqueid: String?
    var path: String
    var reason: String
    var sha256: String?
    var bytes: Int
    var at: String
    enum CodingKeys: String, CodingKey { case id, sourceName = "source_name", uniqueid, path, reason, sha256, bytes, at }

    init(_ row: QuarantineRow, data: DataDirectory, uniqueid: String?) {
        id = row.id ?? 0
        sourceName = row.sourceName
        self.uniqueid = uniqueid
        path = data.absolute(row.path)
        reason = row.reason
        sha256 = row.sha256
        bytes = row.bytes
        at = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(row.at)))
    }
}

/// The catalog and an ingestor (for names and the spool) for the quarantine commands.
struct QuarantineContext {
    let settings: Settings
    let catalog: Catalog
    let ingestor: Ingestor

    init(_ common: CommonOptions, spool: String? = nil) throws {
        var settings = try common.loadSettings()
        if let spool { settings.spool = spool }
        self.settings = settings
        catalog = try common.loadCatalog(settings)
        let naming: SpoolNaming
        do { naming = try SpoolNaming(pattern: settings.spoolPattern) } catch { throw ValidationError("\(error)") }
        ingestor = Ingestor(
            catalog: catalog, transcoder: settings.transcoder(for: catalog), naming: naming,
            spoolRoot: URL(fileURLWithPath: settings.spool).standardizedFileURL.path, logger: makeLogger("callrec.quarantine"))
    }

    func json(_ row: QuarantineRow) -> QuarantineJSON {
        QuarantineJSON(row, data: settings.data, uniqueid: ingestor.uniqueid(ofSourceName: row.sourceName))
    }

    func entry(_ id: Int64) async throws -> QuarantineRow {
        guard let row = try await catalog.quarantineEntry(id: id) else { throw CommandFailure("no quarantine entry \(id)") }
        return row
    }
}

struct QuarantineList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every quarantined file, oldest first.")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        let q = try QuarantineContext(common)
        let rows = try await q.catalog.quarantineEntries()
        if json { return try printJSON(rows.map(q.json)) }
        for r in rows.map(q.json) {
            print([String(r.id), r.at, r.sourceName, r.reason].joined(separator: "\t"))
        }
    }
}

struct QuarantineShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One quarantined file: why, where, when.")
    @OptionGroup var common: CommonOptions
    @Argument(help: "The quarantine entry's id (see `callrec quarantine list`).") var id: Int64
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let q = try QuarantineContext(common)
        let r = q.json(try await q.entry(id))
        if json { return try printJSON(r) }
        print("""
            quarantine \(r.id)  \(r.at)
              source  \(r.sourceName)\(r.uniqueid.map { "  (uniqueid \($0))" } ?? "")
              file    \(r.path) (\(r.bytes) B\(r.sha256.map { ", sha256 \($0)" } ?? ""))
              reason  \(r.reason)
            """)
    }
}

struct QuarantineRetry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put a quarantined file back into the spool, to be ingested again (after a fix).",
        discussion: """
            The file goes back under its name in the spool (or --name), never replacing a file \
            there; `serve` takes it in after the settle time (or run `callrec ingest` on it). Its \
            quarantine entry is then removed. If it still cannot be ingested, it comes back with \
            a new entry.
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "The quarantine entry's id.") var id: Int64
    @Option(help: "The spool (default: CALLREC_SPOOL, else ./spool).") var spool: String?
    @Option(help: "Another name, relative to the spool (when the name was the problem).") var name: String?

    func run() async throws {
        let q = try QuarantineContext(common, spool: spool)
        let row = try await q.entry(id)
        let to: String
        do { to = try await q.ingestor.restore(row, as: name) } catch { throw CommandFailure("\(error)") }
        print("moved back into the spool: \(to)")
    }
}
