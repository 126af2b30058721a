import Foundation

/// The contract's times: ISO-8601 instants, or plain dates `YYYY-MM-DD` at midnight in a zone
/// (`CALLREC_TZ`). Shared by the CLI and the HTTP API so they read `--from`/`from=` alike.
public enum TimeParsing {
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func parse(_ s: String, zone: TimeZone) throws -> Date {
        // ISO8601DateFormatter is lenient: 2026-02-30T00:00:00Z came back as March 2nd and
        // T24:00:00Z as the next day. Every field is checked against the calendar first.
        if s.contains("T") && !instantFieldsAreValid(s) {
            throw Invalid(description: "'\(s)' is not a real instant (a day past the month's end, an hour past 23, …)")
        }
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

    /// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)` with every field in its range (false for other shapes,
    /// which the formatter then refuses anyway).
    static func instantFieldsAreValid(_ s: String) -> Bool {
        let b = Array(s.utf8)
        func num(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in at..<(at + n) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3A, b[16] == 0x3A,
            let y = num(0, 4), let m = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2),
            (1...12).contains(m), h <= 23, mi <= 59, sec <= 59
        else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        guard (1...days).contains(d) else { return false }
        var i = 19
        if i < b.count, b[i] == 0x2E {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            guard i > start else { return false }
        }
        guard i < b.count else { return false }
        if b[i] == 0x5A || b[i] == 0x7A { return i + 1 == b.count }
        guard b[i] == 0x2B || b[i] == 0x2D, i + 6 == b.count, b[i + 3] == 0x3A, let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return false }
        return oh <= 23 && om <= 59
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
