import ArgumentParser
import CallrecCatalog
import CallrecIngest
import Foundation
import Logging

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data directory (default: CALLREC_DATA, else ./data).", valueName: "DIR"))
    var data: String?

    /// The settings from the environment, with these options applied.
    func settings() -> Settings {
        do {
            var s = try Settings()
            if let data { s.data = DataDirectory(data) }
            return s
        } catch {
            fail("\(error)")
        }
    }

    func openCatalog(_ settings: Settings) -> Catalog {
        do { return try Catalog(data: settings.data) } catch { fail("\(error)") }
    }
}

/// A logger for a command. One-shot commands report on stdout and fail with one line on stderr, so
/// their logs are off unless CALLREC_LOG_LEVEL asks for them; `serve` logs at info.
func makeLogger(_ label: String, defaultLevel: Logger.Level = .critical) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = defaultLevel
    if let level = ProcessInfo.processInfo.environment["CALLREC_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) {
        logger.logLevel = level
    }
    return logger
}

/// `T` as the contract reads it: an ISO-8601 instant, or a plain date `YYYY-MM-DD` at midnight in
/// `zone`.
func parseTime(_ s: String, zone: TimeZone) throws -> Date {
    let iso = ISO8601DateFormatter()
    for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
        iso.formatOptions = options
        if let d = iso.date(from: s) { return d }
    }
    let parts = s.split(separator: "-")
    if parts.count == 3, parts[0].count == 4, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = zone
        if let date = cal.date(from: DateComponents(year: y, month: m, day: d)),
            cal.component(.day, from: date) == d
        {
            return date
        }
    }
    throw ValidationError("'\(s)' is not an ISO-8601 instant (2026-11-24T17:00:00Z) or a date (2026-11-24)")
}
