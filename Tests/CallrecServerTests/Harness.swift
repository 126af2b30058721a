import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus

@testable import CallrecServer

/// A catalog with real recordings in a temporary data directory, and the application over it,
/// tested live: a real server on a loopback port, real HTTP.
final class Harness: @unchecked Sendable {
    let dir = TempDir()
    let data: DataDirectory
    let catalog: Catalog
    let signer = URLSigner(secret: "url-secret-for-tests")
    let tokens: TokenAuthority
    let ingestor: Ingestor

    init() async throws {
        data = DataDirectory(dir.file("data"))
        catalog = try Catalog(data: data)
        tokens = try await TokenAuthority(secret: "jwt-secret-for-tests-0123456789abcdef")
        var logger = Logger(label: "test")
        logger.logLevel = .error
        ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
    }

    /// Ingests a fixture (or any file) as `uniqueid`, with a company.
    @discardableResult
    func add(_ fixture: String, as uniqueid: String, company: String? = "42") throws -> RecordingRow {
        let path = try placeFixture(fixture, at: dir.file("\(uniqueid).wav"))
        if let company { try catalog.setMetadata(uniqueid, Metadata(company: company)) }
        guard case .ingested = ingestor.ingest(path: path) else { throw DecodeError(message: "ingest failed") }
        return try catalog.recording(uniqueid)!
    }

    /// Ingests a fixture as the spool would file it at `relative` (e.g. `beta/5511-1732467600.9.wav`),
    /// read with `pattern`: company and lead number then come from the path.
    @discardableResult
    func addFromSpool(_ fixture: String, at relative: String, pattern: String = "{company}/{lead_number}-{uniqueid}.{ext}") throws -> IngestOutcome {
        let spool = dir.file("spool")
        let path = try placeFixture(fixture, at: spool + "/" + relative)
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let spooled = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(pattern: pattern), spoolRoot: spool, logger: logger)
        return spooled.ingest(path: path)
    }

    func token(_ role: Role, company: String? = nil, expires: TimeInterval = 3600) async throws -> String {
        try await tokens.issue(Claims(subject: "tester", expires: Date().addingTimeInterval(expires), role: role, company: company))
    }

    func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    func signed(_ path: String, ttl: Int = 600) -> String { signer.sign(path: path, expires: Int(Date().timeIntervalSince1970) + ttl) }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await test(limits: ConnectionLimits(maxConnections: 512), freeBytes: FileSystemSpace.free, body)
    }

    func test(
        limits: ConnectionLimits, freeBytes: @escaping @Sendable (String) -> Int64?, live: LiveCalls = LiveCalls(), eventHeartbeat: Duration = .seconds(15), eventHub: EventHub? = nil,
        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        var settings = try Settings(environment: [:])
        settings.port = 0
        settings.data = data
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let app = CallrecApplication.make(
            settings: settings, catalog: catalog, watcher: nil, auth: Authenticator(signer: signer, tokens: tokens),
            registry: PrometheusCollectorRegistry(), logger: logger, freeBytes: freeBytes, limits: limits, live: live,
            eventHeartbeat: eventHeartbeat, eventHub: eventHub)
        try await app.test(.live) { client in try await body(client) }
    }

    /// A long recording: `seconds` of the speech fixture repeated, as an 8 kHz WAV.
    func longWAV(seconds: Int) throws -> String {
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav"))
        var audio: [UInt8] = []
        while audio.count < seconds * 16000 { audio += pcm }
        audio = Array(audio.prefix(seconds * 16000))
        let path = dir.file("long-\(seconds).wav")
        try (MixMonitorWriter.header(dataBytes: audio.count, sampleRate: 8000) + Data(audio)).write(to: URL(fileURLWithPath: path))
        return path
    }
}

extension TestResponse {
    var bytes: [UInt8] { Array(body.readableBytesView) }
    var text: String { String(buffer: body) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:] }
    /// The body as a JSON object; throws when it is not one (where `json` would read as empty).
    func jsonObject() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw DecodeError(message: "not a JSON object: \(text)")
        }
        return object
    }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}
