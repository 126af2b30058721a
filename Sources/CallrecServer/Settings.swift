import CallrecAMI
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import Foundation

/// Every setting of callrec, from the environment (`CALLREC_*`) with the contract's defaults;
/// command-line options override them.
public struct Settings: Sendable {
    public var data: DataDirectory
    public var spool: String
    public var host: String
    public var port: Int
    public var timeZone: TimeZone
    public var encoder: EncoderOptions
    public var spoolPattern: String?
    /// `CALLREC_RAW_CHANNELS` (1 or 2, default 1): whether the spool's `.raw` files are MixMonitor `D` stereo.
    public var rawChannels: Int
    /// `CALLREC_RECORDED_ROLE` (`agent` or `customer`, default `agent`): channel 0's role in two-channel recordings.
    public var recordedRole: SpeakerRole
    public var watcher: WatcherOptions
    /// `CALLREC_RETENTION_DAYS` (default 90).
    public var retentionDays: Int
    /// `CALLREC_PURGE_AT`, local time in `timeZone` (default 03:00).
    public var purgeAt: (hour: Int, minute: Int)
    /// `CALLREC_EXPORT_TTL_HOURS`, as seconds (default 24 hours).
    public var exportTTL: TimeInterval
    /// `CALLREC_WEBHOOK_URL`: where events go; nil leaves webhooks off (and writes no events).
    public var webhookURL: URL?
    /// `CALLREC_AMI` (tcp://USER:SECRET@HOST:PORT): nil leaves AMI off (no pauses, no call facts).
    public var ami: AMIEndpoint?
    /// `CALLREC_MAX_PAUSE`, seconds (default 300): a pause left open longer is resumed.
    public var maxPause: TimeInterval
    /// `CALLREC_ENCRYPTION=on|off` (default off): new recordings are written sealed (README,
    /// "Encryption at rest", says why off is the default).
    public var encryption: Bool

    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ key: String) -> String? { env[key].flatMap { $0.isEmpty ? nil : $0 } }
        func number(_ key: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let s = value(key) else { return nil }
            guard let v = Double(s), range.contains(v) else { throw SettingsError("\(key) must be a number in \(range), not '\(s)'") }
            return v
        }
        data = DataDirectory(value("CALLREC_DATA") ?? "./data")
        spool = value("CALLREC_SPOOL") ?? "./spool"
        host = value("CALLREC_HOST") ?? "127.0.0.1"
        port = Int(try number("CALLREC_PORT", 0...65535) ?? 8080)
        let tz = value("CALLREC_TZ") ?? "UTC"
        guard let zone = TimeZone(identifier: tz) else { throw SettingsError("CALLREC_TZ '\(tz)' is not an IANA time zone") }
        timeZone = zone
        do { encoder = try EncoderOptions.fromEnvironment(env) } catch { throw SettingsError("\(error)") }
        spoolPattern = value("CALLREC_SPOOL_PATTERN")
        do {
            rawChannels = try Transcoder.rawChannels(fromEnvironment: env)
            recordedRole = try SpeakerRole.recorded(fromEnvironment: env)
        } catch { throw SettingsError("\(error)") }
        watcher = WatcherOptions()
        if let ms = try number("CALLREC_SETTLE_MS", 0...3_600_000) { watcher.settle = ms / 1000 }
        if let s = try number("CALLREC_SCAN_AGE", 0...86400) { watcher.scanAge = s }
        if let s = try number("CALLREC_RESCAN_SECONDS", 0.1...86400) { watcher.rescanInterval = s }
        if let n = try number("CALLREC_WORKERS", 1...256) { watcher.workers = Int(n) }
        if let s = try number("CALLREC_LEG_WAIT", 0...86400) { watcher.legWait = s }
        retentionDays = Int(try number("CALLREC_RETENTION_DAYS", 0...36500) ?? 90)
        let at = value("CALLREC_PURGE_AT") ?? "03:00"
        guard let purgeAt = Self.clockTime(at) else { throw SettingsError("CALLREC_PURGE_AT must be HH:MM, not '\(at)'") }
        self.purgeAt = purgeAt
        exportTTL = (try number("CALLREC_EXPORT_TTL_HOURS", 0.001...87600) ?? 24) * 3600
        switch value("CALLREC_ENCRYPTION")?.lowercased() ?? "off" {
        case "on": encryption = true
        case "off": encryption = false
        case let other: throw SettingsError("CALLREC_ENCRYPTION must be on or off, not '\(other)'")
        }
        if let hook = value("CALLREC_WEBHOOK_URL") {
            guard let url = URL(string: hook), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw SettingsError("CALLREC_WEBHOOK_URL must be an http(s) URL, not '\(hook)'")
            }
            webhookURL = url
        }
        if let ami = value("CALLREC_AMI") {
            do { self.ami = try AMIEndpoint(url: ami) } catch { throw SettingsError("\(error)") }
        }
        maxPause = try number("CALLREC_MAX_PAUSE", 1...86400) ?? 300
    }

    /// The media pipeline as these settings want it: sealing each new file under its recording's
    /// data key (from the catalog's key store) when encryption is on.
    public func transcoder(for catalog: Catalog) -> Transcoder {
        var t = Transcoder(encoder: encoder, rawChannels: rawChannels, recordedRole: recordedRole)
        if encryption {
            let keys = catalog.keys
            t.sealing = { uniqueid in try keys.dataKey(forRecording: uniqueid) }
        }
        return t
    }

    /// "HH:MM" → (hour, minute), or nil.
    public static func clockTime(_ s: String) -> (hour: Int, minute: Int)? {
        let p = s.split(separator: ":")
        guard p.count == 2, p[0].count <= 2, p[1].count == 2, let h = Int(p[0]), let m = Int(p[1]), (0..<24).contains(h), (0..<60).contains(m) else {
            return nil
        }
        return (h, m)
    }
}

public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
