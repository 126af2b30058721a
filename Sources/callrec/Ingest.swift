import ArgumentParser
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecServer
import CallrecSupport
import Foundation

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest recordings now, through the same transaction as the spool watcher.",
        discussion: """
            Each FILE is transcoded, verified, catalogued, and then removed (as the watcher removes it \
            from the spool); a file that cannot be ingested is moved to <data>/quarantine with its \
            reason. MixMonitor r()/t() legs given together (<base>-r.<ext> and <base>-t.<ext>, with \
            or without the mix <base>.<ext>) become one two-channel recording; a leg given alone is \
            stored mono and flagged. Exits non-zero if any file was quarantined or could not be ingested.
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
        // The files of one call with r()/t() legs (same folder and uniqueid) go in together.
        var units: [[String]] = []
        var unitOf: [String: Int] = [:]
        let paths = files.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let names = paths.map { naming.parse(ingestor.relative($0)) }
        for (i, path) in paths.enumerated() {
            if let n = names[i] {
                let key = parentDirectory(of: path) + "/" + n.uniqueid
                let hasLegs = names.indices.contains { j in names[j]?.uniqueid == n.uniqueid && names[j]?.leg != nil && parentDirectory(of: paths[j]) == parentDirectory(of: path) }
                if hasLegs {
                    if let u = unitOf[key] { units[u].append(path) } else { unitOf[key] = units.count; units.append([path]) }
                    continue
                }
            }
            units.append([path])
        }
        for (i, unit) in units.enumerated() {
            let file = unit.count == 1 ? files[paths.firstIndex(of: unit[0])!] : unit.joined(separator: " + ")
            if stderrIsTerminal && !json { FileHandle.standardError.write(Data("[\(i + 1)/\(units.count)] \(file)…\r".utf8)) }
            let outcome = unit.count == 1 ? ingestor.ingest(path: unit[0]) : ingestor.ingest(call: unit)
            var line: [String: String] = ["file": file]
            switch outcome {
            case .ingested(let id, let parts):
                line["status"] = parts > 1 && unit.count == 1 ? "appended" : "ingested"
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
            throw CommandFailure("\(failures) of \(units.count) recording(s) not ingested")
        }
    }
}
