import CallrecCatalog
import CallrecMedia
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// `/recordings…`: audio with ranges, the JSON API, metadata, holds, deletion. Thin: who is asking
/// comes from `Authenticate` (the route groups), everything else from `RecordingService`.
struct RecordingRoutes: Sendable {
    let service: RecordingService
    let auth: Authenticator
    let wavCache: WavViewCache
    /// `CALLREC_TZ`, for plain dates in `from`/`to`.
    let zone: TimeZone

    /// The route of a recording and its audio (`AudioFastPath` answers part of it).
    static let recordingPath: RouterPath = "/recordings/:id"

    func register(on router: Router<CallrecContext>) {
        // Audio and waveforms: a signed URL or any token.
        // A recorder token (the CRM backend's, for pauses) reads nothing.
        let media = router.group().add(middleware: Authenticate(auth, signed: .media, roles: Self.mediaRoles))
        media.get("/recordings", use: list)
        media.head("/recordings", use: list)
        media.get(Self.recordingPath, use: getFile)
        media.head(Self.recordingPath, use: getFile)
        media.get("/recordings/:id/waveform.json", use: waveform)
        media.head("/recordings/:id/waveform.json", use: waveform)
        let admin = router.group().add(middleware: Authenticate(auth, roles: [.admin]))
        admin.delete("/recordings/:id", use: delete)
        admin.put("/recordings/:id/metadata", use: putMetadata)
        let compliance = router.group().add(middleware: Authenticate(auth, roles: [.compliance, .admin]))
        compliance.put("/recordings/:id/hold", use: putHold)
        compliance.delete("/recordings/:id/hold", use: deleteHold)
    }

    /// The roles whose bearer tokens read audio and waveforms (`AudioFastPath` checks the same).
    static let mediaRoles: Set<Role> = [.viewer, .compliance, .admin]

    /// A uniqueid from the path, or 400: no traversal, no separators, no control bytes.
    static func uniqueid(_ raw: String?) throws -> String {  // decoded already (`pathParameter`)
        guard let raw, UniqueID.isValid(raw) else {
            throw APIError(.badRequest, "invalid_uniqueid", "a uniqueid is 1–128 of A–Z a–z 0–9 . _ - and does not start with a dot")
        }
        return raw
    }

    /// For `AudioFastPath`, on the event loop: a signed request's audio when the cache has its row.
    func openedAudio(_ id: String, _ principal: Principal) -> (StoredAudio, OpenAudio)? {
        service.cachedOpenedAudio(id, for: principal)
    }

    /// Audits an audio access (GET only: HEAD reads no audio).
    func recordAudio(_ principal: Principal, wav: Bool, _ id: String, range: String?, client: String?) {
        service.recordRead(principal, wav ? "audio.wav" : "audio.opus", id, detail: range, client: client)
    }

    // MARK: audio and JSON

    @Sendable func getFile(_ request: Request, context: CallrecContext) async throws -> Response {
        let file = try context.pathParameter("id") ?? ""
        let principal = try context.who
        if file.hasSuffix(".opus") || file.hasSuffix(".wav") {
            let isWav = file.hasSuffix(".wav")
            let id = try Self.uniqueid(String(file.dropLast(isWav ? 4 : 5)))
            let audio = try await service.audio(id, for: principal)
            if request.method == .get {
                recordAudio(principal, wav: isWav, id, range: request.headers[.range], client: context.client)
            }
            if isWav {
                let view: WavView
                do { view = try await wavCache.view(path: audio.path, sha256: audio.row.opusSHA256) } catch {
                    throw SealedBody.failed(error, path: audio.path)
                }
                return try await AudioResponder.respond(
                    request, size: view.contentLength, etag: audio.wavETag, lastModified: audio.modified, contentType: "audio/wav"
                ) { range in
                    Self.wavBody(view, range)
                }
            }
            if audio.sealed {
                let source = try await SealedBody.open(audio.path)
                return try await AudioResponder.respond(
                    request, size: source.size, etag: audio.opusETag, lastModified: audio.modified, contentType: StoredAudio.opusType
                ) { range in
                    try await SealedBody.make(source, range: range)
                }
            }
            return try await AudioResponder.respond(
                request, size: audio.size, etag: audio.opusETag, lastModified: audio.modified, contentType: StoredAudio.opusType
            ) { range in
                try FileBody.make(path: audio.path, range: range)
            }
        }
        let id = try Self.uniqueid(file)
        if principal == .signedURL {
            throw APIError(.unauthorized, "unauthorized", "signed URLs are valid only for audio and waveforms; send a bearer token")
        }
        return try JSONResponse.make(RecordingJSON(try await service.find(id, for: principal)))
    }

    /// The WAV bytes of `range`, decoded block by block on the thread pool as the client reads.
    static func wavBody(_ view: WavView, _ range: ClosedRange<Int>) -> ResponseBody {
        ResponseBody(contentLength: range.count) { writer in
            let chunk = max(view.blockSamples * 2 * view.channels, 1 << 16)
            var start = range.lowerBound
            while start <= range.upperBound {
                let end = min(range.upperBound + 1, start + chunk - (start % chunk))
                let s = start
                let bytes = try await NIOThreadPool.singleton.runIfActive { try view.bytes(s..<end) }
                try await writer.write(ByteBuffer(bytes: bytes))
                start = end
            }
            try await writer.finish(nil)
        }
    }

    @Sendable func waveform(_ request: Request, context: CallrecContext) async throws -> Response {
        let id = try Self.uniqueid(context.pathParameter("id"))
        let pixels = try Self.pixels(request.uri.queryParameters["pixels"].map(String.init))
        let principal = try context.who
        let (row, stored) = try await service.waveform(id, for: principal)
        let etag = "\"peaks-\(row.opusSHA256.prefix(32))\(pixels.map { "-\($0)" } ?? "")\""
        // A signed URL is its own credential (no cookie rides along): a CRM page on another origin
        // may read the peaks it was given a URL for (`/player.js`).
        var headers: HTTPFields = [.eTag: etag]
        if principal == .signedURL { headers[HTTPField.Name("Access-Control-Allow-Origin")!] = "*" }
        if let inm = request.headers[.ifNoneMatch], Preconditions.matches(inm, etag, weak: true) {
            return Response(status: .notModified, headers: headers)
        }
        var json = stored
        if let pixels {
            do {
                json = try await NIOThreadPool.singleton.runIfActive { try PeaksReducer.reduce(stored, pixels: pixels) }
            } catch let e as PeaksReducer.Failure {
                context.logger.error("stored waveform unreadable", metadata: ["uniqueid": "\(id)", "error": "\(e)"])
                throw APIError(.internalServerError, "internal", "the stored waveform of \(id) could not be read")
            }
        }
        headers[.contentType] = "application/json"
        headers[.cacheControl] = AudioResponder.cacheControl
        headers[.contentLength] = String(json.count)
        return Response(status: .ok, headers: headers, body: request.method == .head ? ResponseBody() : .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// `pixels` of `waveform.json`: absent (the stored resolution), or 1…`PeaksReducer.maxPixels`.
    static func pixels(_ raw: String?) throws -> Int? {
        guard let raw else { return nil }
        guard raw.utf8.count <= 5, raw.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(raw), (1...PeaksReducer.maxPixels).contains(n) else {
            throw APIError(.badRequest, "invalid_pixels", "pixels is an integer 1…\(PeaksReducer.maxPixels)")
        }
        return n
    }

    static let listParameters: Set<String> = [
        "from", "to", "company", "agent", "lead_number", "limit", "cursor", "min_duration_ms", "held",
        "min_overtalk_ms", "min_dead_air_ms", "min_talk_ratio", "max_talk_ratio", "channels",
    ]

    @Sendable func list(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try context.who
        if principal == .signedURL { throw APIError(.unauthorized, "unauthorized", "listing needs a bearer token") }
        let q = request.uri.queryParameters
        if let unknown = q.map({ String($0.key) }).first(where: { !Self.listParameters.contains($0) }) {
            throw APIError(.badRequest, "unknown_parameter", "unknown query parameter \(unknown); known: \(Self.listParameters.sorted().joined(separator: ", "))")
        }
        var query = ListQuery(limit: 100)
        func param(_ name: String) throws -> String? {
            guard let v = q[Substring(name)].map(String.init), !v.isEmpty else { return nil }  // empty is absent
            guard v.unicodeScalars.count <= 128, !v.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw APIError(.badRequest, "invalid_\(name)", "\(name) is 1–128 printable characters")
            }
            return v
        }
        do {
            query.from = try param("from").map { try TimeParsing.parse($0, zone: zone) }
            query.to = try param("to").map { try TimeParsing.parse($0, zone: zone) }
        } catch let e as APIError { throw e } catch {
            throw APIError(.badRequest, "invalid_time", "\(error)")
        }
        if let l = try param("limit") {
            guard let n = Int(l), (1...Catalog.maxPageSize).contains(n) else {
                throw APIError(.badRequest, "invalid_limit", "limit is 1…\(Catalog.maxPageSize)")
            }
            query.limit = n
        }
        query.company = try param("company")
        query.agent = try param("agent")
        query.leadNumber = try param("lead_number")
        query.cursor = try param("cursor")
        if let d = try param("min_duration_ms") {
            guard d.utf8.count <= 10, d.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(d), n <= 1_000_000_000 else {
                throw APIError(.badRequest, "invalid_min_duration_ms", "min_duration_ms is an integer 0…1000000000")
            }
            query.minDurationMs = n
        }
        if let h = try param("held") {
            guard h == "true" || h == "false" else { throw APIError(.badRequest, "invalid_held", "held is true or false") }
            query.heldOnly = h == "true"
        }
        // Two-channel figures (a mono recording has none, so matches none of these).
        func milliseconds(_ name: String) throws -> Int? {
            guard let v = try param(name) else { return nil }
            guard let n = Int(v), n >= 0 else { throw APIError(.badRequest, "invalid_\(name)", "\(name) is a whole number of milliseconds ≥ 0") }
            return n
        }
        func ratio(_ name: String) throws -> Double? {
            guard let v = try param(name) else { return nil }
            guard let r = Double(v), (0...1).contains(r) else { throw APIError(.badRequest, "invalid_\(name)", "\(name) is a number from 0 to 1") }
            return r
        }
        query.minOvertalkMs = try milliseconds("min_overtalk_ms")
        query.minDeadAirMs = try milliseconds("min_dead_air_ms")
        query.minTalkRatio = try ratio("min_talk_ratio")
        query.maxTalkRatio = try ratio("max_talk_ratio")
        if let c = try param("channels") {
            guard c == "1" || c == "2" else { throw APIError(.badRequest, "invalid_channels", "channels is 1 or 2") }
            query.channels = Int(c)
        }
        let body = try await service.listJSON(query, for: principal)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    // MARK: changes

    @Sendable func putMetadata(_ request: Request, context: CallrecContext) async throws -> Response {
        let id = try Self.uniqueid(context.pathParameter("id"))
        let body = try await JSONResponse.body(request, context, as: MetadataBody.self)
        let merged = try await service.setMetadata(id, body.patch, by: try context.who, client: context.client)
        return try JSONResponse.make(MetadataBody(company: merged.company, agent: merged.agent, leadNumber: merged.leadNumber))
    }

    @Sendable func putHold(_ request: Request, context: CallrecContext) async throws -> Response {
        try await hold(request, context, on: true)
    }

    @Sendable func deleteHold(_ request: Request, context: CallrecContext) async throws -> Response {
        try await hold(request, context, on: false)
    }

    func hold(_ request: Request, _ context: CallrecContext, on: Bool) async throws -> Response {
        let id = try Self.uniqueid(context.pathParameter("id"))
        let body = try await JSONResponse.body(request, context, as: HoldBody.self, optional: !on)
        let reason = body?.reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if on && reason.isEmpty { throw APIError(.badRequest, "reason_required", "a legal hold needs a reason: {\"reason\": \"…\"}") }
        let row = try await service.setHold(id, on: on, reason: reason.isEmpty ? nil : reason, by: try context.who, client: context.client)
        return try JSONResponse.make(RecordingJSON(row))
    }

    @Sendable func delete(_ request: Request, context: CallrecContext) async throws -> Response {
        let id = try Self.uniqueid(context.pathParameter("id"))
        if let problem = try await service.delete(id, by: try context.who, client: context.client) {
            context.logger.error("deleted recording's file left behind", metadata: ["uniqueid": "\(id)", "error": "\(problem)"])
        }
        return Response(status: .noContent)
    }
}

/// `PUT …/metadata`: a field left out is kept; `null` clears it; a string sets it.
struct MetadataBody: Codable, Sendable, RequestBody {
    var company: String?
    var agent: String?
    var leadNumber: String?
    var patch = MetadataPatch()
    enum CodingKeys: String, CodingKey { case company, agent, leadNumber = "lead_number" }
    static let fields: Set<String> = ["company", "agent", "lead_number"]

    init(company: String?, agent: String?, leadNumber: String?) {
        self.company = company
        self.agent = agent
        self.leadNumber = leadNumber
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field(_ key: CodingKeys) throws -> MetadataPatch.Field {
            guard c.contains(key) else { return .keep }
            if try c.decodeNil(forKey: key) { return .clear }
            let v = try c.decode(String.self, forKey: key)
            guard !v.isEmpty, v.unicodeScalars.count <= 128, !v.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw APIError(.badRequest, "invalid_\(key.rawValue)", "\(key.rawValue) is 1–128 printable characters, or null to clear it")
            }
            return .set(v)
        }
        patch = MetadataPatch(company: try field(.company), agent: try field(.agent), leadNumber: try field(.leadNumber))
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(company, forKey: .company)
        try c.encode(agent, forKey: .agent)
        try c.encode(leadNumber, forKey: .leadNumber)
    }
}

struct HoldBody: Codable, Sendable, RequestBody {
    var reason: String?
    static let fields: Set<String> = ["reason"]
}

struct PageJSON: Encodable, Sendable {
    var items: [RecordingJSON]
    var nextCursor: String?
    enum CodingKeys: String, CodingKey { case items, nextCursor = "next_cursor" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(nextCursor, forKey: .nextCursor)  // null on the last page
    }
}

/// A JSON request body: the fields it may carry (any other is a 400 that names it).
protocol RequestBody: Decodable {
    static var fields: Set<String> { get }
}

/// JSON in and out, with the contract's errors for bad bodies.
enum JSONResponse {
    static let maxBody = 64 * 1024

    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder.callrec.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func body<T: RequestBody>(_ request: Request, _ context: CallrecContext, as: T.Type, optional: Bool = false) async throws -> T? {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBody) } catch {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(maxBody) bytes")
        }
        if buffer.readableBytes == 0 && optional { return nil }
        let data = Data(buffer.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw APIError(.badRequest, "invalid_json", "the body must be a JSON object with \(T.fields.sorted().joined(separator: ", "))")
        }
        let unknown = object.keys.filter { !T.fields.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw APIError(
                .badRequest, "unknown_field",
                "unknown field\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")); this route takes \(T.fields.sorted().joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let e as APIError {
            throw e
        } catch DecodingError.keyNotFound(let key, _) {
            throw APIError(.badRequest, "invalid_json", "\(key.stringValue) is required")
        } catch DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx) {
            throw APIError(.badRequest, "invalid_json", "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw APIError(.badRequest, "invalid_json", "the body is not the JSON this route takes")
        }
    }

    static func body<T: RequestBody>(_ request: Request, _ context: CallrecContext, as type: T.Type) async throws -> T {
        guard let v: T = try await body(request, context, as: type, optional: false) else {
            throw APIError(.badRequest, "invalid_json", "a JSON body is required")
        }
        return v
    }
}
