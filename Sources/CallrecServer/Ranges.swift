import CallrecMedia
import Foundation

/// RFC 9110 §14 byte ranges, for a representation of `size` bytes.
public enum ByteRanges: Equatable, Sendable {
    /// No Range header, a malformed one, or a unit other than bytes: serve the whole (200).
    case none
    /// Satisfiable ranges (clamped to the size): in the order asked when they are disjoint; sorted
    /// and merged when any overlap or touch (RFC 9110 §14.2), so a response never carries the same
    /// byte twice and is never larger than the representation.
    case ranges([ClosedRange<Int>])
    /// Every range lies past the end: 416 with `Content-Range: bytes */size`.
    case unsatisfiable

    public static let maxRanges = 16

    /// Parsed on UTF-8 bytes: with Foundation's trimming and splitting this was 6% of serving a
    /// signed range (perf under wrk). OWS is space and tab (RFC 9110 §5.6.3).
    public static func parse(_ header: String?, size: Int) -> ByteRanges {
        guard let header else { return .none }
        let b = Array(header.utf8)
        let whole = trim(b, 0, b.count)
        var lo = whole.0
        let hi = whole.1
        let unit = Array("bytes=".utf8)
        guard hi - lo >= unit.count else { return .none }
        for k in 0..<unit.count where (k < 5 ? b[lo + k] | 0x20 : b[lo + k]) != unit[k] { return .none }
        lo += unit.count
        var out: [ClosedRange<Int>] = []
        var specs = 0
        var start = lo
        while start <= hi {
            var stop = start
            while stop < hi && b[stop] != 0x2C { stop += 1 }  // ','
            specs += 1
            guard specs <= maxRanges else { return .none }
            let (s, e) = trim(b, start, stop)
            guard let dash = b[s..<e].firstIndex(of: 0x2D) else { return .none }  // '-'
            guard let first = digits(b, s, dash), let last = digits(b, dash + 1, e) else { return .none }
            if dash == s {
                // bytes=-n: the last n bytes
                guard let n = last else { return .none }
                if n > 0 && size > 0 { out.append(max(0, size - n)...(size - 1)) }
            } else {
                guard let a = first else { return .none }
                if let b = last, b < a { return .none }  // invalid: the whole header is ignored
                if a < size { out.append(a...min(last ?? (size - 1), size - 1)) }
            }
            start = stop + 1
        }
        return out.isEmpty ? .unsatisfiable : .ranges(coalesced(out))
    }

    /// `ranges` as asked when no two overlap or touch; else sorted and merged. `bytes=0-,0-,…` asked
    /// for 16 copies of the file (and 16 decodes of a `.wav`).
    static func coalesced(_ ranges: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
        guard ranges.count > 1 else { return ranges }
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<Int>] = [sorted[0]]
        for r in sorted.dropFirst() {
            let last = merged[merged.count - 1]
            if r.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        return merged.count == ranges.count ? ranges : merged
    }

    private static func trim(_ b: [UInt8], _ lo: Int, _ hi: Int) -> (Int, Int) {
        var lo = lo, hi = hi
        while lo < hi && (b[lo] == 0x20 || b[lo] == 0x09) { lo += 1 }
        while hi > lo && (b[hi - 1] == 0x20 || b[hi - 1] == 0x09) { hi -= 1 }
        return (lo, hi)
    }

    /// `.some(nil)` for an empty run, `.some(n)` for up to 18 ASCII digits, nil for anything else.
    private static func digits(_ b: [UInt8], _ lo: Int, _ hi: Int) -> Int?? {
        guard hi - lo <= 18 else { return nil }
        if lo == hi { return .some(nil) }
        var n = 0
        for i in lo..<hi {
            guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
            n = n * 10 + Int(b[i] - 0x30)
        }
        return .some(n)
    }
}

/// RFC 9110 §13 preconditions for GET and HEAD, evaluated in the order of §13.2.2.
public enum Preconditions {
    public enum Outcome: Equatable, Sendable {
        case proceed(honourRange: Bool)
        case notModified
        case failed
    }

    /// `etag` is the strong entity tag, quotes included.
    public static func evaluate(
        ifMatch: String?, ifNoneMatch: String?, ifModifiedSince: String?, ifUnmodifiedSince: String?, ifRange: String?,
        etag: String, lastModified: Date
    ) -> Outcome {
        let modified = Int(lastModified.timeIntervalSince1970)
        if let ifMatch {
            if !matches(ifMatch, etag, weak: false) { return .failed }
        } else if let s = ifUnmodifiedSince, let date = HTTPDate.parse(s), modified > Int(date.timeIntervalSince1970) {
            return .failed
        }
        if let ifNoneMatch {
            if matches(ifNoneMatch, etag, weak: true) { return .notModified }
        } else if let s = ifModifiedSince, let date = HTTPDate.parse(s), modified <= Int(date.timeIntervalSince1970) {
            return .notModified
        }
        guard let ifRange = ifRange?.trimmingCharacters(in: .whitespaces) else { return .proceed(honourRange: true) }
        if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") {
            return .proceed(honourRange: !ifRange.hasPrefix("W/") && ifRange == etag)  // strong comparison only
        }
        if let date = HTTPDate.parse(ifRange) { return .proceed(honourRange: Int(date.timeIntervalSince1970) == modified) }
        return .proceed(honourRange: false)
    }

    /// Whether a list of entity tags (or `*`) matches `etag`.
    static func matches(_ list: String, _ etag: String, weak: Bool) -> Bool {
        let trimmed = list.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { return true }
        let opaque = etag.hasPrefix("W/") ? String(etag.dropFirst(2)) : etag
        for item in trimmed.split(separator: ",") {
            var tag = item.trimmingCharacters(in: .whitespaces)
            let isWeak = tag.hasPrefix("W/")
            if isWeak {
                if !weak { continue }
                tag = String(tag.dropFirst(2))
            }
            if tag == opaque { return true }
        }
        return false
    }
}

/// IMF-fixdate (and the two obsolete formats, which recipients must accept), with the C library:
/// a Foundation DateFormatter per request cost more than the rest of serving a range (measured).
public enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func string(_ date: Date) -> String {
        let tm = RecordingTags.utc(date)
        let two = RecordingTags.twoDigits
        return "\(days[Int(tm.tm_wday)]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(1900 + tm.tm_year) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) GMT"
    }

    public static func parse(_ s: String) -> Date? {
        let text = s.trimmingCharacters(in: .whitespaces)
        guard text.utf8.count < 64 else { return nil }
        if let d = parseFixdate(text) { return d }
        // The obsolete RFC 850 and asctime forms: rare, so Foundation may be slow here.
        for format in ["EEEE, dd-MMM-yy HH:mm:ss 'GMT'", "EEE MMM d HH:mm:ss yyyy"] {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = format
            if let d = f.date(from: text) { return d }
        }
        return nil
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    static func parseFixdate(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 29, b[3] == 0x2C, b[4] == 0x20, b[7] == 0x20, b[11] == 0x20, b[16] == 0x20, b[19] == 0x3A, b[22] == 0x3A,
            text.hasSuffix(" GMT")
        else { return nil }
        func num(_ r: Range<Int>) -> Int32? {
            var v: Int32 = 0
            for i in r {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int32(b[i] - 0x30)
            }
            return v
        }
        let month = String(decoding: b[8..<11], as: UTF8.self)
        guard let mon = months.firstIndex(of: month), let day = num(5..<7), let year = num(12..<16), let h = num(17..<19),
            let m = num(20..<22), let sec = num(23..<25), (1...31).contains(day), h < 24, m < 60, sec < 61
        else { return nil }
        var tm = tm()
        tm.tm_year = year - 1900
        tm.tm_mon = Int32(mon)
        tm.tm_mday = day
        tm.tm_hour = h
        tm.tm_min = m
        tm.tm_sec = sec
        return Date(timeIntervalSince1970: TimeInterval(timegm(&tm)))
    }
}
