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

/// IMF-fixdate (and the two obsolete formats, which recipients must accept).
public enum HTTPDate {
    private static func formatter(_ format: String) -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = format
        return f
    }

    public static func string(_ date: Date) -> String { formatter("EEE, dd MMM yyyy HH:mm:ss 'GMT'").string(from: date) }

    public static func parse(_ s: String) -> Date? {
        for f in ["EEE, dd MMM yyyy HH:mm:ss 'GMT'", "EEEE, dd-MMM-yy HH:mm:ss 'GMT'", "EEE MMM d HH:mm:ss yyyy"] {
            if let d = formatter(f).date(from: s.trimmingCharacters(in: .whitespaces)) { return d }
        }
        return nil
    }
}
