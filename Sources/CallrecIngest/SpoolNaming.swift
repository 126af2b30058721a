// CallrecIngest — from the MixMonitor spool into the catalog.
// Owns: recognising recording names (plain, FreePBX, CALLREC_SPOOL_PATTERN), the crash-safe ingest
// transaction, start-up recovery, and the watcher that takes each file only once its writer is done.

import CallrecCatalog
import Foundation

/// What a spool path says about its recording.
public struct SpoolName: Sendable, Equatable {
    public var uniqueid: String
    public var metadata: Metadata
    public var ext: String
    /// How many interleaved channels a `.raw` file holds, when the pattern's `{channels}` says so.
    public var channels: Int? = nil
    /// Which side of the call a MixMonitor `r()`/`t()` leg holds; nil for a whole recording.
    public var leg: Leg? = nil
}

/// One side of a call, as MixMonitor's `r()` and `t()` options write it.
public enum Leg: String, Sendable, Equatable, Codable {
    /// `-r` / `-in`: the audio read from (received from) the recorded channel: channel 0.
    case read
    /// `-t` / `-out`: the audio written (transmitted) to it: channel 1.
    case write

    /// `r`, `in` → read; `t`, `out` → write.
    public init?(suffix: String) {
        switch suffix.lowercased() {
        case "r", "in", "rx": self = .read
        case "t", "out", "tx": self = .write
        default: return nil
        }
    }

    public var channel: Int { self == .read ? 0 : 1 }
}

/// Recognises recording names: a configured pattern first (`CALLREC_SPOOL_PATTERN`), then
/// FreePBX's `<dir>-<to>-<from>-<YYYYMMDD>-<HHMMSS>-<uniqueid>.<ext>`, then `<uniqueid>.<ext>`.
///
/// A pattern is the path relative to the spool with placeholders: `{uniqueid}`, `{company}`,
/// `{agent}`, `{lead_number}`, `{ext}`, `{channels}` (`1` or `2`: how many channels a `.raw` file
/// holds), `{leg}` (`r`/`t`/`in`/`out`: a MixMonitor `r()`/`t()` leg), `{*}` (anything within one
/// path segment) and `{**}` (anything, slashes too). A pattern without a `/` matches in any subfolder.
/// Without a pattern, `<uniqueid>-r.<ext>` / `-t` / `-in` / `-out` are legs of `<uniqueid>`.
/// Example: `{company}/{agent}-{lead_number}-{uniqueid}.{ext}`.
public struct SpoolNaming: Sendable {
    private let custom: NSRegularExpression?
    public let pattern: String?

    /// An Asterisk uniqueid: epoch seconds, a dot, a sequence number; optionally `systemname-` before.
    static let uniqueidRegex = #"(?:[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*-)?[0-9]{9,11}\.[0-9]+"#
    static let legRegex = #"(?<leg>[rt]|in|out)"#
    private static let plain = try! NSRegularExpression(
        pattern: #"^(?:.*/)?(?<uniqueid>"# + uniqueidRegex + #")(?:-"# + legRegex + #")?\.(?<ext>[A-Za-z0-9]+)$"#)
    private static let freepbx = try! NSRegularExpression(
        pattern: #"^(?:.*/)?(?<dir>[A-Za-z]+)-(?<to>[^/]*?)-(?<from>[^/]*?)-(?<date>[0-9]{8})-(?<time>[0-9]{6})-(?<uniqueid>"# + uniqueidRegex + #")(?:-"# + legRegex + #")?\.(?<ext>[A-Za-z0-9]+)$"#)

    /// The audio extensions MixMonitor writes; other files in the spool are left alone.
    public static let audioExtensions: Set<String> = [
        "wav", "wav16", "WAV", "gsm", "ulaw", "pcm", "ul", "mu", "ulw", "alaw", "al", "alw", "sln", "raw",
        "sln12", "sln16", "sln24", "sln32", "sln44", "sln48", "sln96", "sln192",
    ]

    public init(pattern: String? = nil) throws {
        self.pattern = pattern
        guard let pattern, !pattern.isEmpty else {
            custom = nil
            return
        }
        var regex = pattern.contains("/") ? "^" : "^(?:.*/)?"
        var rest = Substring(pattern)
        var seen = Set<String>()
        while let open = rest.firstIndex(of: "{") {
            regex += NSRegularExpression.escapedPattern(for: String(rest[..<open]))
            guard let close = rest[open...].firstIndex(of: "}") else { throw SpoolNamingError("unclosed { in CALLREC_SPOOL_PATTERN") }
            let name = String(rest[rest.index(after: open)..<close])
            switch name {
            case "uniqueid": regex += "(?<uniqueid>" + Self.uniqueidRegex + ")"
            case "company", "agent", "lead_number":
                guard !seen.contains(name) else { throw SpoolNamingError("{\(name)} appears twice in CALLREC_SPOOL_PATTERN") }
                regex += "(?<\(name.replacingOccurrences(of: "_", with: ""))>[^/]+?)"
            case "ext": regex += "(?<ext>[A-Za-z0-9]+)"
            case "channels": regex += "(?<channels>[12])"
            case "leg": regex += Self.legRegex
            case "*": regex += "[^/]*?"
            case "**": regex += ".*?"
            default: throw SpoolNamingError("unknown placeholder {\(name)} in CALLREC_SPOOL_PATTERN")
            }
            seen.insert(name)
            rest = rest[rest.index(after: close)...]
        }
        regex += NSRegularExpression.escapedPattern(for: String(rest)) + "$"
        guard seen.contains("uniqueid") else { throw SpoolNamingError("CALLREC_SPOOL_PATTERN needs {uniqueid}") }
        if !seen.contains("ext") && !pattern.contains(".") { throw SpoolNamingError("CALLREC_SPOOL_PATTERN needs {ext}") }
        custom = try NSRegularExpression(pattern: regex)
    }

    /// The recording a path (relative to the spool) names, or nil if it names none.
    public func parse(_ relativePath: String) -> SpoolName? {
        let range = NSRange(relativePath.startIndex..., in: relativePath)
        func group(_ m: NSTextCheckingResult, _ name: String) -> String? {
            let r = m.range(withName: name)
            guard r.location != NSNotFound, let sr = Range(r, in: relativePath) else { return nil }
            let v = String(relativePath[sr])
            return v.isEmpty ? nil : v
        }
        func ext(_ m: NSTextCheckingResult) -> String {
            group(m, "ext") ?? relativePath.split(separator: ".").last.map(String.init) ?? ""
        }
        if let custom, let m = custom.firstMatch(in: relativePath, range: range), let id = group(m, "uniqueid") {
            return SpoolName(
                uniqueid: id, metadata: Metadata(company: group(m, "company"), agent: group(m, "agent"), leadNumber: group(m, "leadnumber")),
                ext: ext(m), channels: group(m, "channels").flatMap { Int($0) }, leg: group(m, "leg").flatMap(Leg.init(suffix:)))
        }
        if let m = Self.freepbx.firstMatch(in: relativePath, range: range), let id = group(m, "uniqueid") {
            // out: to = the number dialled (the lead), from = the agent's extension; in: the reverse.
            let dir = group(m, "dir")?.lowercased() ?? ""
            let to = group(m, "to"), from = group(m, "from")
            let meta = dir == "out" || dir == "external" ? Metadata(agent: from, leadNumber: to) : dir == "in" ? Metadata(agent: to, leadNumber: from) : Metadata()
            return SpoolName(uniqueid: id, metadata: meta, ext: ext(m), leg: group(m, "leg").flatMap(Leg.init(suffix:)))
        }
        if let m = Self.plain.firstMatch(in: relativePath, range: range), let id = group(m, "uniqueid") {
            return SpoolName(uniqueid: id, metadata: Metadata(), ext: ext(m), leg: group(m, "leg").flatMap(Leg.init(suffix:)))
        }
        return nil
    }

    /// Whether a configured pattern starts a path segment with a metadata field (`{company}/…`,
    /// `{agent}-…`): then a value starting with a dot makes a hidden file or folder that is still
    /// a recording (to be quarantined with its reason, not silently never seen).
    public var admitsHiddenNames: Bool {
        guard let pattern else { return false }
        return pattern.split(separator: "/").contains { seg in
            ["{company}", "{agent}", "{lead_number}"].contains { seg.hasPrefix($0) }
        }
    }

    /// Whether a hidden path (relative to the spool) is a recording by the configured pattern
    /// whose metadata field starts with a dot. Plain hidden files (editors' and copiers'
    /// temporaries) are not.
    public func isHiddenRecording(_ relativePath: String) -> Bool {
        guard admitsHiddenNames, let name = parse(relativePath), SpoolNaming.isCandidate(fileName: "x." + name.ext) else { return false }
        return [name.metadata.company, name.metadata.agent, name.metadata.leadNumber].contains { $0?.hasPrefix(".") == true }
    }

    /// Whether the watcher should consider a file at all: an audio extension, not hidden, not a temp.
    public static func isCandidate(fileName name: String) -> Bool {
        guard !name.hasPrefix("."), !name.hasSuffix("~"), let dot = name.lastIndex(of: ".") else { return false }
        return audioExtensions.contains(String(name[name.index(after: dot)...]))
    }
}

public struct SpoolNamingError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}
