import CallrecMedia
import Foundation

/// RFC 9110 §14 byte ranges, for a representation of `size` bytes.
public enum ByteRanges: Equatable, Sendable {
    /// No Range header, a malformed one, or a unit other than bytes: serve the whole (200).
    case none
    /// Satisfiable ranges (clamped to the size), in the order asked.
    case ranges([ClosedRange<Int>])
    /// Every range lies past the end: 416 with `Content-Range: bytes */size`.
    case unsatisfiable

    public static let maxRanges = 16

    public static func parse(_ header: String?, size: Int) -> ByteRanges {
        guard let header else { return .none }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .none }
        let specs = trimmed.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false)
        guard !specs.isEmpty, specs.count <= maxRanges else { return .none }
        var out: [ClosedRange<Int>] = []
        for raw in specs {
            let spec = raw.trimmingCharacters(in: .whitespaces)
            guard let dash = spec.firstIndex(of: "-") else { return .none }
            let first = spec[..<dash], last = spec[spec.index(after: dash)...]
            guard first.allSatisfy(\.isASCIIDigit), last.allSatisfy(\.isASCIIDigit), first.count <= 18, last.count <= 18 else { return .none }
            if first.isEmpty {
                // bytes=-n: the last n bytes
                guard let n = Int(last), !last.isEmpty else { return .none }
                if n > 0 && size > 0 { out.append(max(0, size - n)...(size - 1)) }
            } else {
                guard let a = Int(first) else { return .none }
                let b = last.isEmpty ? nil : Int(last)
                if let b, b < a { return .none }  // invalid: the whole header is ignored
                if a < size { out.append(a...min(b ?? (size - 1), size - 1)) }
            }
        }
        return out.isEmpty ? .unsatisfiable : .ranges(out)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
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
