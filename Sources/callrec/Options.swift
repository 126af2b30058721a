import ArgumentParser
import CallrecCatalog
import CallrecIngest
import CallrecServer
import Foundation
import Logging

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data directory (default: CALLREC_DATA, else ./data).", valueName: "DIR"))
    var data: String?

    /// The settings from the environment, with these options applied.
    func loadSettings() throws -> Settings {
        do {
            var s = try Settings()
            if let data { s.data = DataDirectory(data) }
            return s
        } catch { throw CommandFailure("\(error)") }
    }

    /// The data directory's catalog (created and migrated if needed).
    func loadCatalog(_ settings: Settings) throws -> Catalog {
        do { return try Catalog(data: settings.data, recordsEvents: settings.webhookURL != nil) } catch { throw CommandFailure("\(error)") }
    }
}

/// A command's failure, thrown through ArgumentParser: printed as the contract's one line on
/// stderr (`callrec: <reason>`, see `Callrec._errorPrefix`), exit status 1.
struct CommandFailure: LocalizedError, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message.replacingOccurrences(of: "\n", with: " ") }
    var errorDescription: String? { description }
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

/// `T` as the contract reads it (see `TimeParsing`), as a validation error.
func parseTime(_ s: String, zone: TimeZone) throws -> Date {
    do { return try TimeParsing.parse(s, zone: zone) } catch { throw ValidationError("\(error)") }
}
