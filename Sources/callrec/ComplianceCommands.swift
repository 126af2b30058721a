import ArgumentParser
import CallrecCatalog
import CallrecCompliance
import CallrecIngest
import CallrecMedia
import Foundation
import Logging

/// A progress line on a terminal, rewritten in place; nothing when stderr is not a terminal.
func progressLine(_ text: String) {
    if stderrIsTerminal { FileHandle.standardError.write(Data("\r\(text)\u{1B}[K".utf8)) }
}

func endProgress() {
    if stderrIsTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
}

var whoAmI: String { ProcessInfo.processInfo.environment["USER"].map { "cli:\($0)" } ?? "cli" }

struct Hold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a recording under legal hold: nothing removes it (delete, purge, erasure).",
        discussion: "Give a UNIQUEID, or hold every recording matching --company, --lead-number, --from, --to.")
    @OptionGroup var common: CommonOptions
    @Argument(help: "The recording's uniqueid.") var uniqueid: String?
    @Option(help: "Why (a case number, a court order).") var reason: String
    @Option(help: "Hold every recording of this company.") var company: String?
    @Option(name: .customLong("lead-number"), help: "Hold every recording of this phone number.") var leadNumber: String?
    @Option(help: "Hold recordings from this instant or date.") var from: String?
    @Option(help: "Hold recordings before this instant or date.") var to: String?

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
        let byQuery = company != nil || leadNumber != nil || from != nil || to != nil
        if (uniqueid == nil) == !byQuery { throw ValidationError("give a UNIQUEID, or --company/--lead-number/--from/--to (not both)") }
    }

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        guard let uniqueid else {
            do {
                var q = ListQuery(company: company, leadNumber: leadNumber)
                q.from = try from.map { try parseTime($0, zone: settings.timeZone) }
                q.to = try to.map { try parseTime($0, zone: settings.timeZone) }
                let ids = try catalog.hold(matching: q, reason: reason, actor: whoAmI, role: "cli", client: nil, now: Date())
                print("\(ids.count) recording(s) put under legal hold")
            } catch { throw CommandFailure("\(error)") }
            return
        }
        do {
            try catalog.setHold(uniqueid, on: true, reason: reason, audit: AuditEntry(at: Date(), actor: whoAmI, role: "cli", company: nil, action: "hold", uniqueid: uniqueid, detail: reason))
            print("\(uniqueid) is under legal hold")
        } catch HoldError.notFound { throw CommandFailure("no recording \(uniqueid)") } catch { throw CommandFailure("\(error)") }
    }
}

struct Release: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release a recording's legal hold.")
    @OptionGroup var common: CommonOptions
    @Argument(help: "The recording's uniqueid.") var uniqueid: String

    func run() async throws {
        let catalog = try common.loadCatalog(try common.loadSettings())
        do {
            try catalog.setHold(uniqueid, on: false, reason: nil, audit: AuditEntry(at: Date(), actor: whoAmI, role: "cli", company: nil, action: "release", uniqueid: uniqueid))
            print("\(uniqueid) is released")
        } catch HoldError.notFound { throw CommandFailure("no recording \(uniqueid)") } catch { throw CommandFailure("\(error)") }
    }
}

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the retention policy now: remove recordings older than CALLREC_RETENTION_DAYS (default 90) or their company's override.",
        discussion: "Held recordings are kept and reported. Each removal leaves a tombstone (uniqueid, SHA-256, when, why) and an audit entry.")
    @OptionGroup var common: CommonOptions
    @Flag(name: .customLong("dry-run"), help: "Say what would be removed; remove nothing.") var dryRun = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        let report: RemovalReport
        do {
            report = try Remover(catalog: catalog).purge(now: Date(), defaultDays: settings.retentionDays, dryRun: dryRun) { progressLine("purged \($0)") }
        } catch { throw CommandFailure("\(error)") }
        endProgress()
        if json { return try printJSON(report) }
        print("\(dryRun ? "would remove" : "removed") \(report.count) recording(s), \(report.audioSeconds) s of audio, \(report.bytes) bytes; \(report.held.count) held past retention kept")
    }
}

struct Retention: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show or set per-company retention overrides.")
    @OptionGroup var common: CommonOptions
    @Option(help: "The company to set.") var company: String?
    @Option(help: "Days to keep its recordings.") var days: Int?
    @Flag(help: "Remove the company's override.") var clear = false

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        do {
            if let company {
                guard clear || (days ?? -1) >= 0 else { throw CommandFailure("give --days N (or --clear)") }
                try catalog.setRetention(company: company, days: clear ? nil : days)
            }
            print("default\t\(settings.retentionDays) days (CALLREC_RETENTION_DAYS)")
            for (c, d) in try catalog.retentionOverrides().sorted(by: { $0.key < $1.key }) { print("\(c)\t\(d) days") }
        } catch { throw CommandFailure("\(error)") }
    }
}

struct Erase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "LGPD erasure: remove every recording and metadata of a phone number, except those under legal hold (reported).")
    @OptionGroup var common: CommonOptions
    @Option(name: .customLong("lead-number"), help: "The data subject's phone number.") var leadNumber: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let catalog = try common.loadCatalog(try common.loadSettings())
        let report: RemovalReport
        do { report = try Remover(catalog: catalog).erase(leadNumber: leadNumber, actor: whoAmI, now: Date()) } catch { throw CommandFailure("\(error)") }
        if json { return try printJSON(report) }
        print("erased \(report.count) recording(s); kept \(report.held.count) under legal hold\(report.held.isEmpty ? "" : ": " + report.held.joined(separator: " "))")
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-hash every stored file against the catalog; non-zero if any is missing or damaged.")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let catalog = try common.loadCatalog(try common.loadSettings())
        let report: VerifyReport
        do { report = try IntegrityChecker(catalog: catalog).verify { progressLine("verified \($0)/\($1)") } } catch { throw CommandFailure("\(error)") }
        endProgress()
        if json { try printJSON(report) } else {
            print("\(report.checked) checked, \(report.ok) ok, \(report.missing.count) missing, \(report.damaged.count) damaged, \(report.shredded.count) shredded")
            for id in report.missing { print("missing\t\(id)") }
            for id in report.damaged { print("damaged\t\(id)") }
            for id in report.shredded { print("shredded\t\(id)") }
        }
        if !report.missing.isEmpty || !report.damaged.isEmpty {
            throw CommandFailure("\(report.missing.count) missing and \(report.damaged.count) damaged file(s)")
        }
    }
}

struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild a lost catalog from the audio files' OpusTags (measurements are taken again from the decoded audio).")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        let ingestor = Ingestor(catalog: catalog, transcoder: settings.transcoder(for: catalog), naming: try SpoolNaming(), spoolRoot: nil, logger: makeLogger("callrec.reindex"))
        let report = ingestor.recover(pendingUniqueids: [])
        print("\(report.adoptedFiles) recording(s) taken back into the catalog, \(report.removedTemporaryFiles) temporary file(s) removed, \(report.finishedRemovals) removal(s) finished")
        if !report.failures.isEmpty { throw CommandFailure("\(report.failures.count) file(s) could not be read: \(report.failures.prefix(3).joined(separator: "; "))") }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compliance export: the audio of a time range as a ZIP, with manifest.csv and manifest.json (metadata and SHA-256 of each file).")
    @OptionGroup var common: CommonOptions
    @Option(help: "From this instant or date (inclusive).") var from: String
    @Option(help: "To this instant or date (exclusive).") var to: String
    @Option(help: "Only this company.") var company: String?
    @Option(help: "The ZIP to write.") var out: String
    @Option(help: ArgumentHelp("Seal the ZIP for this age recipient (age1…): `age -d -i IDENTITY` opens it.", valueName: "AGE_RECIPIENT"))
    var recipient: String?

    func run() async throws {
        let settings = try common.loadSettings()
        let sealedFor: AgeRecipient?
        do { sealedFor = try recipient.map(AgeRecipient.init) } catch { throw CommandFailure("--recipient: \(error)") }
        let catalog = try common.loadCatalog(settings)
        var q = ListQuery(company: company)
        do {
            q.from = try parseTime(from, zone: settings.timeZone)
            q.to = try parseTime(to, zone: settings.timeZone)
        } catch { throw CommandFailure("\(error)") }
        let summary: ExportSummary
        do {
            summary = try Exporter(catalog: catalog, recipient: sealedFor).export(q, to: out) { progressLine("exported \($0)/\($1)") }
        } catch { throw CommandFailure("\(error)") }
        endProgress()
        try? catalog.audit([AuditEntry(at: Date(), actor: whoAmI, role: "cli", company: company, action: "export", uniqueid: nil, detail: "\(from)..\(to): \(summary.recordings) recordings, zip sha256 \(summary.zipSHA256)\(sealedFor.map { ", sealed for \($0)" } ?? "")")])
        print("\(out): \(summary.recordings) recording(s), \(summary.zipBytes) bytes, sha256 \(summary.zipSHA256)")
    }
}
