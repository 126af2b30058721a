import ArgumentParser
import CallrecCatalog
import CallrecIngest
import Foundation

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The key store of encryption at rest (<data>/keys.sqlite).", subcommands: [KeysRotate.self, KeysStatus.self])
}

struct KeysRotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Re-wrap every data key under a new key-encryption key, without touching the audio.",
        discussion: """
            Without CALLREC_KEK_FILE a new key-encryption key is generated into <data>/secrets/kek/ and the \
            ones that wrap nothing any more are deleted; with it, every key is re-wrapped under that file's \
            (give the previous one in CALLREC_KEK_OLD_FILES). Safe to kill and run again: a rotation cut \
            short is finished.
            """)
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print a JSON summary.") var json = false
    @Option(help: .hidden) var batch = 5000

    func run() async throws {
        let catalog = try common.loadCatalog(try common.loadSettings())
        let report: RotationReport
        do { report = try catalog.keys.rotate(batch: max(1, batch)) { progressLine("re-wrapped \($0)/\($1)") } } catch { throw CommandFailure("\(error)") }
        endProgress()
        if json { try printJSON(report) } else {
            print("\(report.rewrapped) data key(s) re-wrapped under \(report.kek); \(report.keys) in the key store; retired: \(report.retired.isEmpty ? "none" : report.retired.joined(separator: ", "))")
        }
    }
}

struct KeysStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The live key-encryption keys and how many data keys each wraps.")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    struct Status: Codable {
        var current: String
        var keks: [String: Int]
        var keys: Int
    }

    func run() async throws {
        let catalog = try common.loadCatalog(try common.loadSettings())
        let status: Status
        do {
            let current = try catalog.keys.currentKEK().id
            var keks = Dictionary(uniqueKeysWithValues: try catalog.keys.liveKEKs().keys.map { ($0, 0) })
            for (id, n) in try catalog.keys.countsByKEK() { keks[id] = n }
            status = Status(current: current, keks: keks, keys: try catalog.keys.count())
        } catch { throw CommandFailure("\(error)") }
        if json { try printJSON(status) } else {
            print("current key-encryption key: \(status.current); \(status.keys) data key(s)")
            for (id, n) in status.keks.sorted(by: { $0.key < $1.key }) { print("\(id)\t\(n)") }
        }
    }
}

struct Encrypt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal the stored plaintext recordings in place (resumable: a run cut short is finished by the next).")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print a JSON summary.") var json = false

    func run() async throws { try convert(common: common, json: json, seal: true) }
}

struct Decrypt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn the stored sealed recordings back into plaintext Opus files in place (resumable).")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print a JSON summary.") var json = false

    func run() async throws { try convert(common: common, json: json, seal: false) }
}

private func convert(common: CommonOptions, json: Bool, seal: Bool) throws {
    let catalog = try common.loadCatalog(try common.loadSettings())
    let converter = AtRestConverter(catalog: catalog)
    let verb = seal ? "sealed" : "opened"
    let report: ConversionReport
    do {
        report = try seal
            ? converter.encrypt { progressLine("\(verb) \($0)/\($1)") } : converter.decrypt { progressLine("\(verb) \($0)/\($1)") }
    } catch { throw CommandFailure("\(error)") }
    endProgress()
    if json { try printJSON(report) } else {
        print("\(report.checked) checked, \(report.converted) \(verb), \(report.already) already, \(report.missing.count) missing, \(report.failed.count) failed")
        for f in report.failed { print("failed\t\(f)") }
    }
    if !report.failed.isEmpty { throw CommandFailure("\(report.failed.count) recording(s) could not be \(verb)") }
}
