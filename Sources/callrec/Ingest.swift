import ArgumentParser
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecServer
import Foundation

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest recordings now, through the same transaction as the spool watcher.",
        discussion: """
            Each FILE is transcoded, verified, catalogued, and then removed (as the watcher removes it \
            from the spool); a file that cannot be ingested is moved to <data>/quarantine with its \
            reason. Exits non-zero if any file was quarantined or could not be ingested.
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "Recordings to ingest.") var files: [String]
    @Flag(help: "Print one JSON object per file.") var json = false

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        let naming: SpoolNaming
        do { naming = try SpoolNaming(pattern: settings.spoolPattern) } catch { throw CommandFailure("\(error)") }
        let spoolRoot = URL(fileURLWithPath: settings.spool).standardizedFileURL.path
        let ingestor = Ingestor(
            catalog: catalog, transcoder: settings.transcoder(for: catalog), naming: naming, spoolRoot: spoolRoot,
            logger: makeLogger("callrec.ingest"))
        var failures = 0
        var results: [[String: String]] = []
        for (i, file) in files.enumerated() {
            let path = URL(fileURLWithPath: file).standardizedFileURL.path
            if stderrIsTerminal && !json { FileHandle.standardError.write(Data("[\(i + 1)/\(files.count)] \(file)…\r".utf8)) }
            let outcome = ingestor.ingest(path: path)
            var line: [String: String] = ["file": file]
            switch outcome {
            case .ingested(let id, let parts):
                line["status"] = parts > 1 ? "appended" : "ingested"
                line["uniqueid"] = id
            case .duplicate(let id):
                line["status"] = "duplicate"
                line["uniqueid"] = id
            case .quarantined(let reason):
                line["status"] = "quarantined"
                line["reason"] = reason
                failures += 1
            case .deferred(let reason):
                line["status"] = "failed"
                line["reason"] = reason
                failures += 1
            case .skipped(let reason):
                line["status"] = "skipped"
                line["reason"] = reason
                failures += 1
            }
            results.append(line)
            if json {
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let detail = line["uniqueid"] ?? line["reason"] ?? ""
                print("\(line["status"]!)\t\(file)\t\(detail)")
            }
        }
        if failures > 0 {
            throw CommandFailure("\(failures) of \(files.count) file(s) not ingested")
        }
    }
}
