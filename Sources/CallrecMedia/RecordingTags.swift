import Foundation

/// The metadata written into OpusTags, so that the catalog can be rebuilt from the audio alone.
public struct RecordingTags: Sendable, Equatable {
    public var uniqueid: String
    /// The call's start; nil to derive it (from the uniqueid's epoch, else mtime − duration).
    public var startedAt: Date?
    public var company: String?
    public var agent: String?
    public var leadNumber: String?

    public init(uniqueid: String, startedAt: Date? = nil, company: String? = nil, agent: String? = nil, leadNumber: String? = nil) {
        self.uniqueid = uniqueid
        self.startedAt = startedAt
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
    }

    /// The epoch seconds of an Asterisk uniqueid: `1732467600.42` or `pbx1-1732467600.42`.
    public static func epoch(ofUniqueID id: String) -> Date? {
        let tail = id.split(separator: "-").last.map(String.init) ?? id
        let parts = tail.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count >= 9, parts[0].count <= 11,
            let secs = Int(parts[0]), !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber)
        else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(secs))
    }

    /// `2026-11-24T17:00:00Z`, always 20 characters (years 1000–9999).
    public static func iso(_ date: Date) -> String {
        let tm = utc(date)
        return "\(1900 + tm.tm_year)-\(twoDigits(tm.tm_mon + 1))-\(twoDigits(tm.tm_mday))T\(twoDigits(tm.tm_hour)):\(twoDigits(tm.tm_min)):\(twoDigits(tm.tm_sec))Z"
    }

    /// The UTC calendar fields of a date, from the C library (Foundation's formatters are slow).
    public static func utc(_ date: Date) -> tm {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        gmtime_r(&t, &fields)
        return fields
    }

    public static func twoDigits(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
