// CallrecCatalog — the catalog of recordings, in SQLite through GRDB.
// Owns: the data directory's layout, the schema and its migrations, recordings (with every
// measurement and hash), metadata that may arrive before the audio, source parts and quarantine.

import Foundation

/// The layout of the data directory (`--data`, `CALLREC_DATA`).
public struct DataDirectory: Sendable {
    public let root: String

    public init(_ root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    public var catalogPath: String { root + "/catalog.sqlite" }
    public var audioRoot: String { root + "/audio" }
    public var quarantineRoot: String { root + "/quarantine" }
    public var exportsRoot: String { root + "/exports" }

    /// `audio/YYYY/MM/DD/<uniqueid>.opus`, the day of the call's start in UTC; relative to `root`.
    public static func audioRelativePath(uniqueid: String, startedAt: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day], from: startedAt)
        return String(format: "audio/%04d/%02d/%02d/", c.year!, c.month!, c.day!) + uniqueid + ".opus"
    }

    public func absolute(_ relative: String) -> String { root + "/" + relative }

    /// Creates the directories that must exist.
    public func create() throws {
        for dir in [root, audioRoot, quarantineRoot, exportsRoot] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }
}
