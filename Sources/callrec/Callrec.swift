import ArgumentParser
import Foundation

@main
struct Callrec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callrec",
        abstract: "Call recordings of an Asterisk PBX: ingest, measure, store as Ogg Opus, serve.",
        subcommands: [Transcode.self])
}

/// Prints a one-line reason on stderr and exits non-zero: the contract's failure shape.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("callrec: \(message)\n".utf8))
    exit(code)
}

func printJSON<T: Encodable>(_ value: T) throws {
    var data = try JSONEncoder.callrecPretty.encode(value)
    data.append(0x0A)
    FileHandle.standardOutput.write(data)
}

import CallrecMedia

extension JSONEncoder {
    static var callrecPretty: JSONEncoder {
        let e = JSONEncoder.callrec
        e.outputFormatting.insert(.prettyPrinted)
        return e
    }
}
