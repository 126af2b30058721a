import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import Foundation
import Hummingbird

/// Holds by query, erasures and retention overrides.
struct ComplianceRoutes: Sendable {
    let catalog: Catalog
    let auth: Authenticator
    let zone: TimeZone
    let invalidate: @Sendable (String) -> Void

    func register(on router: Router<CallrecContext>) {
        router.post("/holds", use: holdByQuery)
        router.post("/erasures", use: erase)
        router.get("/retention", use: retention)
        router.put("/retention/:company", use: setRetention)
        router.delete("/retention/:company", use: setRetention)
    }

    struct HoldQuery: Codable { var company: String?; var leadNumber: String?; var from: String?; var to: String?; var reason: String
        enum CodingKeys: String, CodingKey { case company, leadNumber = "lead_number", from, to, reason }
    }

    @Sendable func holdByQuery(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.compliance, .admin])
        let body = try await JSONResponse.body(request, context, as: HoldQuery.self)
        guard !body.reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw APIError(.badRequest, "reason_required", "a legal hold needs a reason") }
        var q = ListQuery(company: body.company, leadNumber: body.leadNumber)
        do {
            q.from = try body.from.map { try TimeParsing.parse($0, zone: zone) }
            q.to = try body.to.map { try TimeParsing.parse($0, zone: zone) }
        } catch { throw APIError(.badRequest, "invalid_time", "\(error)") }
        if let scope = principal.company, !scope.isEmpty {
            if let c = q.company, c != scope { throw APIError(.forbidden, "forbidden", "this token holds company \(scope) only") }
            q.company = scope
        }
        let ids: [String]
        do {
            let (catalog, query, client) = (self.catalog, q, context.client)
            ids = try await offLoop {
                try catalog.hold(matching: query, reason: body.reason, actor: principal.actor, role: principal.role?.rawValue, client: client, now: Date())
            }
        } catch let e as CatalogError { throw APIError(.badRequest, "invalid_query", e.description) }
        ids.forEach(invalidate)
        return try JSONResponse.make(["held": ids])
    }

    struct EraseBody: Codable { var leadNumber: String
        enum CodingKeys: String, CodingKey { case leadNumber = "lead_number" }
    }

    @Sendable func erase(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.admin])
        let body = try await JSONResponse.body(request, context, as: EraseBody.self)
        guard !body.leadNumber.isEmpty, body.leadNumber.count <= 64 else { throw APIError(.badRequest, "invalid_lead_number", "lead_number is required") }
        let catalog = self.catalog
        let report = try await Worker(name: "callrec-erase") {
            try Remover(catalog: catalog).erase(leadNumber: body.leadNumber, actor: principal.actor, now: Date())
        }.value()
        report.uniqueids.forEach(invalidate)
        return try JSONResponse.make(report)
    }

    @Sendable func retention(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.compliance, .admin])
        return try JSONResponse.make(try catalog.retentionOverrides())
    }

    struct RetentionBody: Codable { var days: Int }

    @Sendable func setRetention(_ request: Request, context: CallrecContext) async throws -> Response {
        let principal = try await auth.authenticate(request, allowSigned: false)
        try Authenticator.require(principal, [.admin])
        let company = context.parameters.get("company") ?? ""
        guard !company.isEmpty, company.count <= 128 else { throw APIError(.badRequest, "invalid_company", "a company id is required") }
        var days: Int?
        if request.method != .delete {
            let body = try await JSONResponse.body(request, context, as: RetentionBody.self)
            guard (0...36500).contains(body.days) else { throw APIError(.badRequest, "invalid_days", "days is 0…36500") }
            days = body.days
        }
        let (catalog, set, client) = (self.catalog, days, context.client)
        let overrides = try await offLoop {
            try catalog.setRetention(company: company, days: set)
            try? catalog.audit([AuditEntry(
                at: Date(), actor: principal.actor, role: principal.role?.rawValue, company: company, action: "retention.set", uniqueid: nil,
                detail: set == nil ? "default" : "override", client: client)])
            return try catalog.retentionOverrides()
        }
        return try JSONResponse.make(overrides)
    }
}
