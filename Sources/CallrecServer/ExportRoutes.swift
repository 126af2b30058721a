import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import Foundation
import HTTPTypes
import Hummingbird

/// `/exports`: compliance export jobs.
struct ExportRoutes: Sendable {
    let recordings: RecordingService
    let auth: Authenticator
    let service: ExportService
    let zone: TimeZone

    func register(on router: Router<CallrecContext>) {
        let compliance = router.group().add(middleware: Authenticate(auth, roles: [.compliance, .admin]))
        compliance.post("/exports", use: create)
        compliance.get("/exports/:id", use: status)
        // A signed URL of the download (`callrec sign /exports/<id>/download`) works too.
        let download = router.group().add(middleware: Authenticate(auth, signed: .always, roles: [.compliance, .admin]))
        download.get("/exports/:id/download", use: self.download)
        download.head("/exports/:id/download", use: self.download)
    }

    struct CreateBody: Codable, RequestBody {
        var from: String
        var to: String
        var company: String?
        var recipient: String?
        static let fields: Set<String> = ["from", "to", "company", "recipient"]
    }

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
        var recipient: String?
        enum CodingKeys: String, CodingKey {
            case id, status, from, to, company, progress, createdAt = "created_at", finishedAt = "finished_at", bytes, sha256, error, download, recipient
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
            recipient = j.recipient
        }
    }

    @Sendable func create(_ request: Request, context: CallrecContext) async throws -> Response {
        let body = try await JSONResponse.body(request, context, as: CreateBody.self)
        let from: Date, to: Date
        do {
            from = try TimeParsing.parse(body.from, zone: zone)
            to = try TimeParsing.parse(body.to, zone: zone)
        } catch { throw APIError(.badRequest, "invalid_time", "\(error)") }
        guard from < to else { throw APIError(.badRequest, "invalid_range", "from must be before to") }
        if body.company?.isEmpty == true { throw APIError(.badRequest, "invalid_company", "company is empty; leave it out to export every company you may see") }
        var recipient: String?
        if let r = body.recipient {
            do { recipient = try AgeRecipient(r).description } catch {
                throw APIError(.badRequest, "invalid_recipient", "recipient: \(error)")
            }
        }
        let job = try await recordings.createExport(from: from, to: to, company: body.company, recipient: recipient, by: try context.who)
        service.poke()
        var response = try JSONResponse.make(JobJSON(job), status: .accepted)
        response.headers[.location] = "/exports/\(job.id)"
        return response
    }

    @Sendable func status(_ request: Request, context: CallrecContext) async throws -> Response {
        let job = try await recordings.job(try context.pathParameter("id") ?? "", for: try context.who)
        return try JSONResponse.make(JobJSON(job))
    }

    @Sendable func download(_ request: Request, context: CallrecContext) async throws -> Response {
        let job = try await recordings.job(try context.pathParameter("id") ?? "", for: try context.who)
        guard job.status == .completed, let rel = job.path, let sha = job.sha256 else {
            throw APIError(.conflict, "not_ready", "export \(job.id) is \(job.status.rawValue)")
        }
        let path = recordings.catalog.data.absolute(rel)
        var st = stat()
        guard stat(path, &st) == 0 else { throw APIError(.gone, "expired", "export \(job.id) is no longer kept") }
        var response = try await AudioResponder.respond(
            request, size: Int(st.st_size), etag: "\"\(sha.prefix(32))\"", lastModified: Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)),
            contentType: job.recipient == nil ? "application/zip" : "application/octet-stream"
        ) { range in try FileBody.make(path: path, range: range) }
        response.headers[.contentDisposition] = "attachment; filename=\"callrec-export-\(job.id).zip\(job.recipient == nil ? "" : ".age")\""
        return response
    }
}
