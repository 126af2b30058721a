import CallrecMedia
import Foundation
import GRDB

/// One recording in the catalog.
public struct RecordingRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "recording"

    public var uniqueid: String
    public var startedAt: Int64
    public var company: String?
    public var agent: String?
    public var leadNumber: String?
    public var samples: Int
    public var sampleRate: Int
    public var channels: Int
    public var durationMs: Int
    public var sourceFormat: String
    public var sourceBytes: Int
    public var sourceSHA256: String
    public var opusPath: String
    public var opusBytes: Int
    public var opusBitrate: Int
    public var opusSHA256: String
    public var silence: String
    public var peakDBFS: Double?
    public var rmsDBFS: Double?
    public var clippedSamples: Int
    public var parts: Int
    public var legalHold: Bool
    public var ingestedAt: Int64
    public var updatedAt: Int64
    public var holdReason: String?
    public var holdBy: String?
    public var holdAt: Int64?
    /// What AMI said about the call, on the recording's timeline (`AMIFacts` JSON); nil when AMI did not see it.
    public var ami: String?
    /// Two-channel recordings: the contract's `speakers` array as JSON; nil for mono.
    public var speakers: String?
    public var overtalkMs: Int?
    public var deadAirMs: Int?
    /// The agent's share of all talk (see `SpeakerAnalysis.talkRatio`).
    public var talkRatio: Double?
    /// `read` or `write` when the recording is one r()/t() leg whose partner never arrived.
    public var loneLeg: String?

    public enum Columns {
        public static let uniqueid = Column(CodingKeys.uniqueid)
        public static let startedAt = Column(CodingKeys.startedAt)
        public static let company = Column(CodingKeys.company)
        public static let agent = Column(CodingKeys.agent)
        public static let leadNumber = Column(CodingKeys.leadNumber)
        public static let opusSHA256 = Column(CodingKeys.opusSHA256)
    }

    enum CodingKeys: String, CodingKey {
        case uniqueid, startedAt = "started_at", company, agent, leadNumber = "lead_number", samples
        case sampleRate = "sample_rate", channels, durationMs = "duration_ms", sourceFormat = "source_format"
        case sourceBytes = "source_bytes", sourceSHA256 = "source_sha256", opusPath = "opus_path"
        case opusBytes = "opus_bytes", opusBitrate = "opus_bitrate", opusSHA256 = "opus_sha256", silence
        case peakDBFS = "peak_dbfs", rmsDBFS = "rms_dbfs", clippedSamples = "clipped_samples", parts
        case legalHold = "legal_hold", ingestedAt = "ingested_at", updatedAt = "updated_at"
        case holdReason = "hold_reason", holdBy = "hold_by", holdAt = "hold_at", ami
        case speakers, overtalkMs = "overtalk_ms", deadAirMs = "dead_air_ms", talkRatio = "talk_ratio", loneLeg = "lone_leg"
    }

    public init(
        uniqueid: String, startedAt: Date, metadata: Metadata, measurements: Measurements,
        source: (format: String, bytes: Int, sha256: String), opusPath: String, opus: (bytes: Int, bitrate: Int, sha256: String),
        parts: Int, now: Date
    ) {
        self.uniqueid = uniqueid
        self.startedAt = Int64(startedAt.timeIntervalSince1970.rounded(.down))
        company = metadata.company
        agent = metadata.agent
        leadNumber = metadata.leadNumber
        samples = measurements.samples
        sampleRate = measurements.sampleRate
        channels = measurements.channels
        durationMs = measurements.durationMs
        sourceFormat = source.format
        sourceBytes = source.bytes
        sourceSHA256 = source.sha256
        self.opusPath = opusPath
        opusBytes = opus.bytes
        opusBitrate = opus.bitrate
        opusSHA256 = opus.sha256
        silence = String(decoding: (try? JSONEncoder.callrec.encode(measurements.silence)) ?? Data("{}".utf8), as: UTF8.self)
        peakDBFS = measurements.levels.peakDBFS
        rmsDBFS = measurements.levels.rmsDBFS
        clippedSamples = measurements.levels.clippedSamples
        self.parts = parts
        if let sp = measurements.speakers {
            speakers = String(decoding: (try? JSONEncoder.callrec.encode(sp.speakers)) ?? Data("[]".utf8), as: UTF8.self)
            overtalkMs = sp.overtalkMs
            deadAirMs = sp.deadAirMs
            talkRatio = sp.talkRatio
        }
        legalHold = false
        ingestedAt = Int64(now.timeIntervalSince1970)
        updatedAt = ingestedAt
    }

    public var startedAtDate: Date { Date(timeIntervalSince1970: TimeInterval(startedAt)) }

    /// The per-speaker figures, nil for a mono recording.
    public var speakerAnalysis: SpeakerAnalysis? {
        guard let speakers, let list = try? JSONDecoder().decode([Speaker].self, from: Data(speakers.utf8)) else { return nil }
        return SpeakerAnalysis(speakers: list, overtalkMs: overtalkMs ?? 0, deadAirMs: deadAirMs ?? 0)
    }
}

/// Company, agent and lead number of a call: from the spool path, or the CRM (PUT …/metadata),
/// possibly before the audio exists.
public struct Metadata: Codable, Sendable, Equatable {
    public var company: String?
    public var agent: String?
    public var leadNumber: String?

    public init(company: String? = nil, agent: String? = nil, leadNumber: String? = nil) {
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
    }

    enum CodingKeys: String, CodingKey { case company, agent, leadNumber = "lead_number" }

    /// `other`'s values where it has them, else these.
    public func overridden(by other: Metadata) -> Metadata {
        Metadata(company: other.company ?? company, agent: other.agent ?? agent, leadNumber: other.leadNumber ?? leadNumber)
    }
}

/// A change to a call's metadata: each field kept, cleared or set. A field left out of a request
/// is kept, whatever its origin.
public struct MetadataPatch: Sendable, Equatable {
    public enum Field: Sendable, Equatable {
        case keep, clear
        case set(String)
        func applied(to v: String?) -> String? {
            switch self {
            case .keep: return v
            case .clear: return nil
            case .set(let s): return s
            }
        }
    }
    public var company: Field
    public var agent: Field
    public var leadNumber: Field

    public init(company: Field = .keep, agent: Field = .keep, leadNumber: Field = .keep) {
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
    }

    /// Set what `m` has, keep the rest.
    public init(_ m: Metadata) {
        company = m.company.map(Field.set) ?? .keep
        agent = m.agent.map(Field.set) ?? .keep
        leadNumber = m.leadNumber.map(Field.set) ?? .keep
    }

    public func applied(to m: Metadata) -> Metadata {
        Metadata(company: company.applied(to: m.company), agent: agent.applied(to: m.agent), leadNumber: leadNumber.applied(to: m.leadNumber))
    }
}

public struct MetadataRow: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "metadata"
    public var uniqueid: String
    public var company: String?
    public var agent: String?
    public var leadNumber: String?
    public var updatedAt: Int64
    enum CodingKeys: String, CodingKey {
        case uniqueid, company, agent, leadNumber = "lead_number", updatedAt = "updated_at"
    }
    public var metadata: Metadata { Metadata(company: company, agent: agent, leadNumber: leadNumber) }
    public init(uniqueid: String, company: String?, agent: String?, leadNumber: String?, updatedAt: Int64) {
        self.uniqueid = uniqueid
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
        self.updatedAt = updatedAt
    }
}

/// One source file a recording was made of.
public struct SourcePartRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "source_part"
    public var uniqueid: String
    public var part: Int
    public var sha256: String
    public var bytes: Int
    public var format: String
    public var name: String
    public var samples: Int
    public var ingestedAt: Int64
    enum CodingKeys: String, CodingKey {
        case uniqueid, part, sha256, bytes, format, name, samples, ingestedAt = "ingested_at"
    }
    public init(uniqueid: String, part: Int, sha256: String, bytes: Int, format: String, name: String, samples: Int, ingestedAt: Int64) {
        self.uniqueid = uniqueid
        self.part = part
        self.sha256 = sha256
        self.bytes = bytes
        self.format = format
        self.name = name
        self.samples = samples
        self.ingestedAt = ingestedAt
    }
}

public struct QuarantineRow: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "quarantine"
    public var id: Int64?
    public var sourceName: String
    public var path: String
    public var reason: String
    public var sha256: String?
    public var bytes: Int
    public var at: Int64
    enum CodingKeys: String, CodingKey { case id, sourceName = "source_name", path, reason, sha256, bytes, at }
    public init(sourceName: String, path: String, reason: String, sha256: String?, bytes: Int, at: Int64) {
        self.sourceName = sourceName
        self.path = path
        self.reason = reason
        self.sha256 = sha256
        self.bytes = bytes
        self.at = at
    }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public struct WaveformRow: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "waveform"
    public var uniqueid: String
    public var json: Data
    public init(uniqueid: String, json: Data) {
        self.uniqueid = uniqueid
        self.json = json
    }
}
