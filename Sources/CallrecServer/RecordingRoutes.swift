import CallrecCatalog
import CallrecMedia
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// `/recordings…`: audio with ranges, the JSON API, metadata, holds, deletion.
struct RecordingRoutes: Sendable {
    let catalog: Catalog
    let auth: Authenticator
    let audit: AuditWriter
    let wavCache: WavViewCache
    /// `CALLREC_TZ`, for plain dates in `from`/`to`.
    let zone: TimeZone
    let rows = RowCache()
    let now: @Sendable () -> Date

    /// The route of a recording and its audio (`AudioFastPath` answers part of it).
    static let recordingPath: RouterPath = "/recordings/:id"

    func register(on router: Router<CallrecContext>) {
        router.get("/recordings", use: list)
        router.head("/recordings", use: list)
        router.get(Self.recordingPath, use: getFile)
        router.head(Self.recordingPath, use: getFile)
        router.delete("/recordings/:id", use: delete)
        router.get("/recordings/:id/waveform.json", use: waveform)
        router.head("/recordings/:id/waveform.json", use: waveform)
        router.put("/recordings/:id/metadata", use: putMetadata)
        router.put("/recordings/:id/hold", use: putHold)
        router.delete("/recordings/:id/hold", use: deleteHold)
    }

    /// A uniqueid from the path, or 400: no traversal, no separators, no control bytes.
    static func uniqueid(_ raw: String?) throws -> String {
        guard let raw, UniqueID.isValid(raw) else {
            throw APIError(.badRequest, "invalid_uniqueid", "a uniqueid is 1–128 of A–Z a–z 0–9 . _ - and does not start with a dot")
        }
        return raw
    }

    /// The row, if it exists and the principal may see it; else the same 404 either way.
    /// `cached`: for audio, where a player's many range requests may share a lookup.
    func visibleRow(_ id: String, _ principal: Principal, cached: Bool = false) throws -> RecordingRow {
        let found = cached ? try rows.row(id) { try catalog.recording(id) } : try catalog.recording(id)
        guard let row = found, principal.canSee(company: row.company) else {
            throw APIError(.notFound, "not_found", "no recording \(id)")
        }
        return row
    }

    func record(_ principal: Principal, _ action: String, _ id: String?, _ detail: String? = nil, _ context: CallrecContext) {
        audit.record(AuditEntry(
            at: now(), actor: principal.actor, role: principal.role?.rawValue, company: principal.company, action: action,
            uniqueid: id, detail: detail, client: context.client))
    }

    // MARK: audio and JSON

    /// The stored Ogg Opus of a recording the principal may see: where it is, its size and time.
    struct StoredAudio: Sendable {
        let row: RecordingRow
        let path: String
        let size: Int
        let modified: Date

        init(row: RecordingRow, path: String, stat st: stat) {
            self.row = row
            self.path = path
            size = Int(st.st_size)
            modified = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec))
        }

        var opusETag: String { "\"\(row.opusSHA256.prefix(32))\"" }
        var wavETag: String { "\"wav-\(row.opusSHA256.prefix(32))\"" }
        static let opusType = "audio/ogg; codecs=opus"
    }

    /// The audio of `id` for `principal`, or the error a client gets (404 whether missing or not
    /// theirs; 503 when the row exists but the file does not). Synchronous: the fast path in
    /// `AudioFastPath` calls it on the event loop.
    func storedAudio(_ id: String, _ principal: Principal) throws -> StoredAudio {
        let row = try visibleRow(id, principal, cached: true)
        let path = catalog.data.absolute(row.opusPath)
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw APIError(.serviceUnavailable, "audio_unavailable", "the audio of \(id) is not on disk")
        }
        return StoredAudio(row: row, path: path, stat: st)
    }

    /// `storedAudio` with the file opened (one path lookup, not two): the descriptor, or nil when
    /// the router should answer (not found, not theirs, not on disk).
    func openedAudio(_ id: String, _ principal: Principal) -> (StoredAudio, Int32)? {
        guard let row = try? visibleRow(id, principal, cached: true) else { return nil }
        let path = catalog.data.absolute(row.opusPath)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            return nil
        }
        return (StoredAudio(row: row, path: path, stat: st), fd)
    }

    /// Audits an audio access (GET only: HEAD reads no audio).
    func recordAudio(_ principal: Principal, wav: Bool, _ id: String, range: String?, client: String?) {
        audit.record(AuditEntry(
            at: now(), actor: principal.actor, role: principal.role?.rawValue, company: principal.company,
            action: wav ? "audio.wav" : "audio.opus", uniqueid: id, detail: range, client: client))
    }

    @Sendable func getFile(_ request: Request, context: CallrecContext) async throws -> Response {
        let file = context.parameters.get("id") ?? ""
        if file.hasSuffix(".opus") || file.hasSuffix(".wav") {
            let isWav = file.hasSuffix(".wav")
            let id = try Self.uniqueid(String(file.dropLast(isWav ? 4 : 5)))
            let principal = try await auth.authenticate(request, allowSigned: true)
            let audio = try storedAudio(id, principal)
            if request.method == .get {
                recordAudio(principal, wav: isWav, id, range: request.headers[.range], client: context.client)
            }
            if isWav {
                let view = try await wavCache.view(path: audio.path, sha256: audio.row.opusSHA256)
                return try await AudioResponder.respond(
                    request, size: view.contentLength, etag: audio.wavETag, lastModified: audio.modified, contentType: "audio/wav"
                ) { range in
                    Self.wavBody(view, range)
                }
            }
            return try await AudioResponder.respond(
                request, size: audio.size, etag: audio.opusETag, lastModified: audio.modified, contentType: StoredAudio.opusType
            ) { range in
                try FileBody.make(path: audio.path, range: range)
            }
        }
        let id = try Self.uniqueid(file)
        let principal = try await auth.authenticate(request, allowSigned: false)
        let row = try visibleRow(id, principal)
        return try JSONResponse.make(RecordingJSON(row))
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
        let id = try Self.uniqueid(context.parameters.get("id"))
        let principal = try await auth.authenticate(request, allowSigned: true)
        let row = try visibleRow(id, principal)
        guard let json = try catalog.waveform(row.uniqueid) else { throw APIError(.notFound, "not_found", "no waveform for \(id)") }
        let etag = "\"peaks-\(row.opusSHA256.prefix(32))\""
        if let inm = request.headers[.ifNoneMatch], Preconditions.matches(inm, etag, weak: true) {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        var headers: HTTPFields = [.contentType: "application/json", .eTag: etag, .cacheControl: "private, max-age=3600"]
        headers[.contentLength] = String(json.count)
        return Response(status: .ok, headers: headers, body: request.method == .head ? ResponseBody() : .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    @Sendable func list(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try await auth.authenticate(request, allowSigned: false)
        let q = request.uri.queryParameters
        var query = ListQuery(limit: 100)
        func param(_ name: String) -> String? { q[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        do {
            query.from = try param("from").map { try TimeParsing.parse($0, zone: zone) }
            query.to = try param("to").map { try TimeParsing.parse($0, zone: zone) }
        } catch {
            throw APIError(.badRequest, "invalid_time", "\(error)")
        }
        if let l = param("limit") {
            guard let n = Int(l), (1...Catalog.maxPageSize).contains(n) else {
                throw APIError(.badRequest, "invalid_limit", "limit is 1…\(Catalog.maxPageSize)")
            }
            query.limit = n
        }
        query.company = param("company")
        query.agent = param("agent")
        query.leadNumber = param("lead_number")
        query.cursor = param("cursor")
        // A company-scoped token sees its company only, whatever it asks for.
        if let scope = principal.company, !scope.isEmpty {
            if let asked = query.company, asked != scope { return try JSONResponse.make(PageJSON(items: [], nextCursor: nil)) }
            query.company = scope
        }
        let page: Page
        do { page = try catalog.list(query) } catch let e as CatalogError {
            throw APIError(.badRequest, "invalid_cursor", e.description)
        }
        return try JSONResponse.make(PageJSON(items: page.items.map(RecordingJSON.init), nextCursor: page.nextCursor))
    }

    // MARK: changes

    @Sendable func putMetadata(_ request: Request, context: CallrecContext) async throws -> Response {
        let id = try Self.uniqueid(context.parameters.get("id"))
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.admin])
        let body = try await JSONResponse.body(request, context, as: MetadataBody.self)
        if let row = try catalog.recording(id), !principal.canSee(company: row.company) {
            throw APIError(.notFound, "not_found", "no recording \(id)")
        }
        let (catalog, at) = (self.catalog, now())
        let merged = try await offLoop {
            try catalog.setMetadata(id, Metadata(company: body.company, agent: body.agent, leadNumber: body.leadNumber), now: at)
        }
        rows.invalidate(id)
        record(principal, "metadata.set", id, nil, context)
        return try JSONResponse.make(MetadataBody(company: merged.company, agent: merged.agent, leadNumber: merged.leadNumber))
    }

    @Sendable func putHold(_ request: Request, context: CallrecContext) async throws -> Response {
        try await hold(request, context, on: true)
    }

    @Sendable func deleteHold(_ request: Request, context: CallrecContext) async throws -> Response {
        try await hold(request, context, on: false)
    }

    func hold(_ request: Request, _ context: CallrecContext, on: Bool) async throws -> Response {
        let id = try Self.uniqueid(context.parameters.get("id"))
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.compliance, .admin])
        let body = try await JSONResponse.body(request, context, as: HoldBody.self, optional: !on)
        let reason = body?.reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if on && reason.isEmpty { throw APIError(.badRequest, "reason_required", "a legal hold needs a reason: {\"reason\": \"…\"}") }
        _ = try visibleRow(id, principal)
        let entry = AuditEntry(
            at: now(), actor: principal.actor, role: principal.role?.rawValue, company: principal.company,
            action: on ? "hold" : "release", uniqueid: id, detail: reason.isEmpty ? nil : reason, client: context.client)
        let catalog = self.catalog
        let row = try await offLoop { try catalog.setHold(id, on: on, reason: on ? reason : nil, audit: entry) }
        rows.invalidate(id)
        return try JSONResponse.make(RecordingJSON(row))
    }

    @Sendable func delete(_ request: Request, context: CallrecContext) async throws -> Response {
        let file = context.parameters.get("id") ?? ""
        let id = try Self.uniqueid(file)
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.admin])
        _ = try visibleRow(id, principal)
        let entry = AuditEntry(
            at: now(), actor: principal.actor, role: principal.role?.rawValue, company: principal.company, action: "delete",
            uniqueid: id, client: context.client)
        do {
            let catalog = self.catalog
            let row = try await offLoop { try catalog.delete(id, reason: "deleted by \(principal.actor)", audit: entry) }
            rows.invalidate(id)
            unlink(catalog.data.absolute(row.opusPath))
            return Response(status: .noContent)
        } catch HoldError.held(let reason) {
            throw APIError(.conflict, "legal_hold", "\(id) is under legal hold\(reason.map { " (\($0))" } ?? ""); release it first")
        } catch HoldError.notFound {
            throw APIError(.notFound, "not_found", "no recording \(id)")
        }
    }
}

struct MetadataBody: Codable, Sendable {
    var company: String?
    var agent: String?
    var leadNumber: String?
    enum CodingKeys: String, CodingKey { case company, agent, leadNumber = "lead_number" }
}

struct HoldBody: Codable, Sendable {
    var reason: String?
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

/// JSON in and out, with the contract's errors for bad bodies.
enum JSONResponse {
    static let maxBody = 64 * 1024

    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder.callrec.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func body<T: Decodable>(_ request: Request, _ context: CallrecContext, as: T.Type, optional: Bool = false) async throws -> T? {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBody) } catch {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(maxBody) bytes")
        }
        if buffer.readableBytes == 0 && optional { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError(.badRequest, "invalid_json", "the body is not the JSON this route takes")
        }
    }

    static func body<T: Decodable>(_ request: Request, _ context: CallrecContext, as type: T.Type) async throws -> T {
        guard let v: T = try await body(request, context, as: type, optional: false) else {
            throw APIError(.badRequest, "invalid_json", "a JSON body is required")
        }
        return v
    }
}
