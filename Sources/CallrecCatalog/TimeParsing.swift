import Foundation

/// The contract's times: ISO-8601 instants, or plain dates `YYYY-MM-DD` at midnight in a zone
/// (`CALLREC_TZ`). Shared by the CLI and the HTTP API so they read `--from`/`from=` alike.
public enum TimeParsing {
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func parse(_ s: String, zone: TimeZone) throws -> Date {
        let iso = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            iso.formatOptions = options
            if let d = iso.date(from: s) { return d }
        }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2])
        {
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = zone
            if let date = cal.date(from: DateComponents(year: y, month: m, day: d)),
                cal.component(.day, from: date) == d, cal.component(.month, from: date) == m
            {
                return date
            }
        }
        throw Invalid(description: "'\(s)' is not an ISO-8601 instant (2026-11-24T17:00:00Z) or a date (2026-11-24)")
    }
}

/// What a uniqueid may look like in a path or a URL.
public enum UniqueID {
    public static func isValid(_ s: String) -> Bool {
        // On bytes: Foundation's `contains("..")` showed up in the serving profile.
        guard (1...128).contains(s.utf8.count), s.utf8.first != 0x2E else { return false }
        var previous: UInt8 = 0
        for b in s.utf8 {
            guard (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D,
                !(b == 0x2E && previous == 0x2E)
            else { return false }
            previous = b
        }
        return true
    }
}
