import CallrecCatalog
import CallrecMedia
import Foundation
import HTTPTypes
import Hummingbird

/// `/exports`: compliance export jobs.
struct ExportRoutes: Sendable {
    let catalog: Catalog
    let auth: Authenticator
    let service: ExportService
    let zone: TimeZone

    func register(on router: Router<CallrecContext>) {
        router.post("/exports", use: create)
        router.get("/exports/:id", use: status)
        router.get("/exports/:id/download", use: download)
        router.head("/exports/:id/download", use: download)
    }

    struct CreateBody: Codable { var from: String; var to: String; var company: String? }

    struct JobJSON: Encodable {
        var id: String
        var status: String
        var from: String
        var to: String
        var company: String?
        var progress: [String: Int]
        var createdAt: String
        var finishedAt: String?
        var bytes: Int?
        var sha256: String?
        var error: String?
        var download: String?
        enum CodingKeys: String, CodingKey {
            case id, status, from, to, company, progress, createdAt = "created_at", finishedAt = "finished_at", bytes, sha256, error, download
        }
        init(_ j: ExportJob) {
            func iso(_ t: Int64) -> String { RecordingTags.iso(Date(timeIntervalSince1970: TimeInterval(t))) }
            id = j.id
            status = j.status.rawValue
            from = iso(j.fromAt)
            to = iso(j.toAt)
            company = j.company
            progress = ["done": j.done, "total": j.total]
            createdAt = iso(j.createdAt)
            finishedAt = j.finishedAt.map(iso)
            bytes = j.bytes
            sha256 = j.sha256
            error = j.error
            download = j.status == .completed ? "/exports/\(j.id)/download" : nil
        }
    }

    /// The job, if the principal may see it (its own company's, or any for unscoped roles).
    func visibleJob(_ request: Request, _ context: CallrecContext) async throws -> (ExportJob, Principal) {
        let principal = try await auth.authenticate(request, allowSigned: request.uri.path.hasSuffix("/download"))
        if principal != .signedURL { try Authenticator.require(principal, [.compliance, .admin]) }
        let id = context.parameters.get("id") ?? ""
        guard id.count == 32, id.allSatisfy(\.isHexDigit), let job = try catalog.job(id) else {
            throw APIError(.notFound, "not_found", "no export \(id.prefix(64))")
        }
        if let scope = principal.company, !scope.isEmpty, job.company != scope { throw APIError(.notFound, "not_found", "no export \(id)") }
        return (job, principal)
    }

    @Sendable func create(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.compliance, .admin])
        let body = try await JSONResponse.body(request, context, as: CreateBody.self)
        let from: Date, to: Date
        do {
            from = try TimeParsing.parse(body.from, zone: zone)
            to = try TimeParsing.parse(body.to, zone: zone)
        } catch { throw APIError(.badRequest, "invalid_time", "\(error)") }
        guard from < to else { throw APIError(.badRequest, "invalid_range", "from must be before to") }
        var company = body.company
        if let scope = principal.company, !scope.isEmpty {
            if let c = company, c != scope { throw APIError(.forbidden, "forbidden", "this token exports company \(scope) only") }
            company = scope
        }
        let id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let job = ExportJob(id: id, from: from, to: to, company: company, requestedBy: principal.actor, now: Date())
        let catalog = self.catalog
        try await offLoop { try catalog.saveJob(job) }
        service.poke()
        var response = try JSONResponse.make(JobJSON(job), status: .accepted)
        response.headers[.location] = "/exports/\(id)"
        return response
    }

    @Sendable func status(_ request: Request, context: CallrecContext) async throws -> Response {
        let (job, _) = try await visibleJob(request, context)
        return try JSONResponse.make(JobJSON(job))
    }

    @Sendable func download(_ request: Request, context: CallrecContext) async throws -> Response {
        let (job, _) = try await visibleJob(request, context)
        guard job.status == .completed, let rel = job.path, let sha = job.sha256 else {
            throw APIError(.conflict, "not_ready", "export \(job.id) is \(job.status.rawValue)")
        }
        let path = catalog.data.absolute(rel)
        var st = stat()
        guard stat(path, &st) == 0 else { throw APIError(.gone, "expired", "export \(job.id) is no longer kept") }
        var response = try await AudioResponder.respond(
            request, size: Int(st.st_size), etag: "\"\(sha.prefix(32))\"", lastModified: Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)),
            contentType: "application/zip"
        ) { range in try FileBody.make(path: path, range: range) }
        response.headers[.contentDisposition] = "attachment; filename=\"callrec-export-\(job.id).zip\""
        return response
    }
}
