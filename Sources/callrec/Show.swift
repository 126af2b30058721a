import ArgumentParser
import CallrecCatalog
import CallrecMedia
import Foundation

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one recording.")

    @OptionGroup var common: CommonOptions
    @Argument(help: "The recording's uniqueid, e.g. 1732467600.42.") var uniqueid: String
    @Flag(help: "Print the contract's JSON.") var json = false

    func run() async throws {
        let settings = common.settings()
        let catalog = common.openCatalog(settings)
        let row: RecordingRow?
        do { row = try catalog.recording(uniqueid) } catch { fail("\(error)") }
        guard let row else { fail("no recording \(uniqueid)") }
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
        let settings = common.settings()
        let catalog = common.openCatalog(settings)
        var q = ListQuery(company: company, agent: agent, leadNumber: leadNumber, limit: Catalog.maxPageSize)
        do {
            q.from = try from.map { try parseTime($0, zone: settings.timeZone) }
            q.to = try to.map { try parseTime($0, zone: settings.timeZone) }
        } catch { fail("\(error)") }
        var rows: [RecordingRow] = []
        repeat {
            let page: Page
            do { page = try catalog.list(q) } catch { fail("\(error)") }
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
