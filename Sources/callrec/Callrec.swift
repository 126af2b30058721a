import ArgumentParser
import CallrecMedia
import Foundation

@main
struct Callrec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callrec",
        abstract: "Call recordings of an Asterisk PBX: ingest, measure, store as Ogg Opus, serve.",
        discussion: "Settings come from CALLREC_* environment variables (see README); options override them.",
        subcommands: [
            Serve.self, Ingest.self, Show.self, List.self, Transcode.self, Export.self, Purge.self, Hold.self, Release.self,
            Erase.self, Verify.self, Reindex.self, Retention.self, Sign.self, Token.self, Audit.self, Webhooks.self,
            Quarantine.self, User.self, Keys.self, Encrypt.self, Decrypt.self,
        ])

    /// Errors thrown out of a command print as `callrec: <reason>`, the contract's one line.
    static var _errorPrefix: String { "callrec: " }

    /// Everything callrec creates (the catalog SQLite opens, audio, exports, quarantine) is personal
    /// data: no access for other local users, whatever umask the shell or the unit left.
    static func main() async {
        let inherited = umask(0o027)
        umask(inherited | 0o027)
        await main(nil)
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    var data = try JSONEncoder.callrecPretty.encode(value)
    data.append(0x0A)
    FileHandle.standardOutput.write(data)
}

extension JSONEncoder {
    static var callrecPretty: JSONEncoder {
        let e = JSONEncoder.callrec
        e.outputFormatting.insert(.prettyPrinted)
        return e
    }
}

/// Whether stderr is a terminal (progress is shown only there).
var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
