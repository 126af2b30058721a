import CallrecCatalog
import CallrecIngest
import Foundation
import Hummingbird

/// `/quarantine`: files that could not be ingested, why, and putting one back into the spool once
/// the cause is fixed. An operator's view of the whole spool: unscoped compliance and admin tokens
/// only (a quarantined file's company is often unknown, so no company scope can be applied).
struct QuarantineRoutes: Sendable {
    let catalog: Catalog
    let auth: Authenticator
    /// Puts a file back into the spool (the watcher's ingestor); nil when `serve` runs without one.
    let ingestor: Ingestor?

    func register(on router: Router<CallrecContext>) {
        let read = router.group("quarantine").add(middleware: Authenticate(auth, roles: [.compliance, .admin]))
        read.get(use: list)
        read.get(":id", use: show)
        router.group("quarantine").add(middleware: Authenticate(auth, roles: [.admin])).post(":id/retry", use: retry)
    }

    struct EntryJSON: Encodable {
        var id: Int64
        var sourceName: String
        var path: String
        var reason: String
        var sha256: String?
        var bytes: Int
        var at: String
        enum CodingKeys: String, CodingKey { case id, sourceName = "source_name", path, reason, sha256, bytes, at }
        init(_ r: QuarantineRow) {
            id = r.id ?? 0
            sourceName = r.sourceName
            path = r.path
            reason = r.reason
            sha256 = r.sha256
            bytes = r.bytes
            at = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(r.at)))
        }
    }

    static func unscoped(_ context: CallrecContext) throws {
        if let company = try context.who.company, !company.isEmpty {
            throw APIError(.forbidden, "forbidden", "the quarantine holds every company's files: it needs a token without a company")
        }
    }

    func entry(_ context: CallrecContext) async throws -> QuarantineRow {
        try Self.unscoped(context)
        let raw = try context.pathParameter("id") ?? ""
        guard let id = Int64(raw), id > 0, let row = try await catalog.quarantineEntry(id: id) else {
            throw APIError(.notFound, "not_found", "no quarantined file \(raw.prefix(32))")
        }
        return row
    }

    @Sendable func list(_ request: Request, context: CallrecContext) async throws -> Response {
        try Self.unscoped(context)
        return try JSONResponse.make(["items": try await catalog.quarantineEntries(limit: 10_000).map(EntryJSON.init)])
    }

    @Sendable func show(_ request: Request, context: CallrecContext) async throws -> Response {
        try JSONResponse.make(EntryJSON(try await entry(context)))
    }

    @Sendable func retry(_ request: Request, context: CallrecContext) async throws -> Response {
        let row = try await entry(context)
        guard let ingestor else { throw APIError(.serviceUnavailable, "no_spool", "this server watches no spool to put the file back into") }
        let path: String
        do { path = try await ingestor.restore(row) } catch {
            throw APIError(.conflict, "cannot_retry", "\(error)")
        }
        let principal = try context.who
        try await catalog.appendAudit([AuditEntry(
            at: Date(), actor: principal.actor, role: principal.role?.rawValue, company: nil, action: "quarantine.retry", uniqueid: ingestor.uniqueid(ofSourceName: row.sourceName),
            detail: row.sourceName, client: context.client)])
        return try JSONResponse.make(["spool_path": path], status: .accepted)
    }
}
