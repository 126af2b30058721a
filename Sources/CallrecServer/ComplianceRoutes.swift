import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import Foundation
import Hummingbird

/// Holds by query, erasures and retention overrides. Company scope, audit and cache invalidation
/// are `RecordingService`'s.
struct ComplianceRoutes: Sendable {
    let service: RecordingService
    let auth: Authenticator
    let zone: TimeZone

    func register(on router: Router<CallrecContext>) {
        let compliance = router.group().add(middleware: Authenticate(auth, roles: [.compliance, .admin]))
        compliance.post("/holds", use: holdByQuery)
        compliance.get("/retention", use: retention)
        let admin = router.group().add(middleware: Authenticate(auth, roles: [.admin]))
        admin.post("/erasures", use: erase)
        admin.put("/retention/:company", use: setRetention)
        admin.delete("/retention/:company", use: setRetention)
    }

    struct HoldQuery: Codable, RequestBody {
        var company: String?
        var leadNumber: String?
        var from: String?
        var to: String?
        var reason: String
        enum CodingKeys: String, CodingKey { case company, leadNumber = "lead_number", from, to, reason }
        static let fields: Set<String> = ["company", "lead_number", "from", "to", "reason"]
    }

    @Sendable func holdByQuery(_ request: Request, context: CallrecContext) async throws -> Response {
        let body = try await JSONResponse.body(request, context, as: HoldQuery.self)
        guard !body.reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw APIError(.badRequest, "reason_required", "a legal hold needs a reason") }
        for (name, v) in [("company", body.company), ("lead_number", body.leadNumber)] where v?.isEmpty == true {
            throw APIError(.badRequest, "invalid_\(name)", "\(name) is empty; leave it out to not filter by it")
        }
        var q = ListQuery(company: body.company, leadNumber: body.leadNumber)
        do {
            q.from = try body.from.map { try TimeParsing.parse($0, zone: zone) }
            q.to = try body.to.map { try TimeParsing.parse($0, zone: zone) }
        } catch { throw APIError(.badRequest, "invalid_time", "\(error)") }
        let ids = try await service.holdByQuery(q, reason: body.reason, by: try context.who, client: context.client)
        return try JSONResponse.make(["held": ids])
    }

    struct EraseBody: Codable, RequestBody {
        var leadNumber: String
        enum CodingKeys: String, CodingKey { case leadNumber = "lead_number" }
        static let fields: Set<String> = ["lead_number"]
    }

    @Sendable func erase(_ request: Request, context: CallrecContext) async throws -> Response {
        let body = try await JSONResponse.body(request, context, as: EraseBody.self)
        guard !body.leadNumber.isEmpty, body.leadNumber.unicodeScalars.count <= 64 else {
            throw APIError(.badRequest, "invalid_lead_number", "lead_number is 1–64 characters")
        }
        return try JSONResponse.make(try await service.erase(leadNumber: body.leadNumber, by: try context.who))
    }

    @Sendable func retention(_ request: Request, context: CallrecContext) async throws -> Response {
        try JSONResponse.make(try await service.retention(for: try context.who))
    }

    struct RetentionBody: Codable, RequestBody {
        var days: Int
        static let fields: Set<String> = ["days"]
    }

    @Sendable func setRetention(_ request: Request, context: CallrecContext) async throws -> Response {
        let company = try context.pathParameter("company") ?? ""
        guard !company.isEmpty, company.unicodeScalars.count <= 128, !company.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError(.badRequest, "invalid_company", "a company id is 1–128 printable characters")
        }
        var days: Int?
        if request.method != .delete {
            let body = try await JSONResponse.body(request, context, as: RetentionBody.self)
            guard (0...36500).contains(body.days) else { throw APIError(.badRequest, "invalid_days", "days is 0…36500") }
            days = body.days
        }
        return try JSONResponse.make(try await service.setRetention(company: company, days: days, by: try context.who, client: context.client))
    }
}
