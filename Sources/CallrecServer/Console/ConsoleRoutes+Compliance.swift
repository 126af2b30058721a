import CallrecCatalog
import Foundation
import Hummingbird

/// The console's erasure (admin), retention (all read, admins edit) and quarantine (unscoped
/// compliance and admin) pages: server-rendered forms over the API's own service calls.
extension ConsoleRoutes {
    static let admins: Set<Role> = [.admin]

    func registerCompliancePages(on router: Router<CallrecContext>) {
        let admin = router.group().add(middleware: ConsoleGuard(sessions, .page, roles: Self.admins))
        admin.get("/console/erasure", use: erasurePage)
        admin.post("/console/erasure", use: erase)
        admin.post("/console/retention", use: setRetention)
        let all = router.group().add(middleware: ConsoleGuard(sessions, .page))
        all.get("/console/retention", use: retentionPage)
        let comply = router.group().add(middleware: ConsoleGuard(sessions, .page, roles: Self.comply))
        comply.get("/console/quarantine", use: quarantinePage)
        let adminAPI = router.group("/console/api").add(middleware: ConsoleGuard(sessions, .api, roles: Self.admins))
        adminAPI.post("/quarantine/:id/retry", use: quarantine.retry)
    }

    func csrfField(_ context: CallrecContext) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(esc(context.console?.csrf))\">"
    }

    // MARK: erasure

    func erasureForm(_ p: ConsolePage, _ context: CallrecContext, lead: String = "", error: String? = nil, result: String? = nil) -> String {
        """
        <h1>\(p.t("erasure_title"))</h1>
        <p class="warning">\(p.t("erasure_text"))</p>
        <form method="post" action="/console/erasure" class="filters" id="erasure">\(csrfField(context))
        <label>\(p.t("lead")) <input data-testid="erasure-lead" name="lead" value="\(esc(lead))" required maxlength="64" size="16" autocomplete="off"></label>
        <label>\(p.t("erasure_again")) <input data-testid="erasure-confirm" name="lead_again" required maxlength="64" size="16" autocomplete="off"></label>
        <button data-testid="erasure-submit" type="submit" class="danger">\(p.t("erasure_submit"))</button>
        </form>
        <p data-testid="erasure-error" class="error" role="alert"\(error == nil ? " hidden" : "")>\(esc(error))</p>
        <p data-testid="erasure-result" class="result" role="status"\(result == nil ? " hidden" : "")>\(esc(result))</p>
        """
    }

    @Sendable func erasurePage(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        return p.response(p.lang.t("erasure"), erasureForm(p, context), active: "erasure")
    }

    @Sendable func erase(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        let form = try await Form.body(request)
        let lead = (form["lead"] ?? "").trimmingCharacters(in: .whitespaces)
        let again = (form["lead_again"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !lead.isEmpty, lead.unicodeScalars.count <= 64 else {
            return p.response(p.lang.t("erasure"), erasureForm(p, context, error: APIError.invalidLead), status: .badRequest, active: "erasure")
        }
        guard lead == again else {
            return p.response(p.lang.t("erasure"), erasureForm(p, context, lead: lead, error: p.lang.t("erasure_mismatch")), status: .badRequest, active: "erasure")
        }
        let report = try await service.erase(leadNumber: lead, by: try context.who)
        let text = String(format: p.lang.t("erasure_done"), report.count, report.held.count) + (report.held.isEmpty ? "" : " (" + report.held.joined(separator: ", ") + ")")
        return p.response(p.lang.t("erasure"), erasureForm(p, context, result: text), active: "erasure")
    }

    // MARK: retention

    @Sendable func retentionPage(_ request: Request, context: CallrecContext) async throws -> Response {
        try await retentionResponse(request, context)
    }

    func retentionResponse(_ request: Request, _ context: CallrecContext, error: String? = nil) async throws -> Response {
        let p = page(request, context)
        let user = try context.who
        let overrides = try await service.retention(for: user).sorted { $0.key < $1.key }
        let isAdmin = context.console?.role == .admin
        let rows = overrides.map { company, days -> String in
            let edit =
                isAdmin
                ? """
                <td><form method="post" action="/console/retention" class="inline-form">\(csrfField(context))<input type="hidden" name="company" value="\(esc(company))">
                <input data-testid="retention-days" name="days" type="number" min="0" max="36500" value="\(days)" aria-label="\(p.t("days")) \(esc(company))" size="6">
                <button data-testid="retention-save" type="submit" name="action" value="set">\(p.t("save"))</button>
                <button data-testid="retention-remove" type="submit" name="action" value="clear" class="secondary">\(p.t("remove"))</button></form></td>
                """ : ""
            return "<tr data-testid=\"retention-row\" data-company=\"\(esc(company))\"><td>\(esc(company))</td><td class=\"num\">\(days)</td>\(edit)</tr>"
        }.joined(separator: "\n")
        let add =
            isAdmin
            ? """
            <h2>\(p.t("retention_add"))</h2>
            <form method="post" action="/console/retention" class="filters" id="retention-add">\(csrfField(context))
            <label>\(p.t("company")) <input data-testid="retention-company" name="company" required maxlength="128" size="12"></label>
            <label>\(p.t("days")) <input data-testid="retention-new-days" name="days" type="number" min="0" max="36500" required size="6"></label>
            <button data-testid="retention-submit" type="submit" name="action" value="set">\(p.t("save"))</button>
            </form>
            """ : ""
        let body = """
            <h1>\(p.t("retention_title"))</h1>
            <p data-testid="retention-default">\(esc(String(format: p.lang.t("retention_default"), retentionDays)))</p>
            <p data-testid="retention-error" class="error" role="alert"\(error == nil ? " hidden" : "")>\(esc(error))</p>
            <table class="retention"><thead><tr><th>\(p.t("company"))</th><th>\(p.t("days"))</th>\(isAdmin ? "<th></th>" : "")</tr></thead>
            <tbody>\(rows)</tbody></table>
            \(overrides.isEmpty ? "<p class=\"status\">\(p.t("no_overrides"))</p>" : "")
            \(add)
            """
        return p.response(p.lang.t("retention"), body, status: error == nil ? .ok : .badRequest, active: "retention")
    }

    @Sendable func setRetention(_ request: Request, context: CallrecContext) async throws -> Response {
        let form = try await Form.body(request)
        let company = (form["company"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !company.isEmpty, company.unicodeScalars.count <= 128, !company.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return try await retentionResponse(request, context, error: "a company id is 1–128 printable characters")
        }
        var days: Int?
        if form["action"] != "clear" {
            guard let d = Int(form["days"] ?? ""), (0...36500).contains(d) else {
                return try await retentionResponse(request, context, error: "days is 0…36500")
            }
            days = d
        }
        _ = try await service.setRetention(company: company, days: days, by: try context.who, client: context.client)
        return Response.redirect(to: "/console/retention", type: .normal)
    }

    // MARK: quarantine

    @Sendable func quarantinePage(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        try QuarantineRoutes.unscoped(context)
        let isAdmin = context.console?.role == .admin
        let entries = try await service.catalog.quarantineEntries(limit: 1000)
        let rows = entries.map { e -> String in
            let when = p.dateTime(Date(timeIntervalSince1970: TimeInterval(e.at)))
            let retry =
                isAdmin
                ? "<td><button data-testid=\"quarantine-retry\" type=\"button\" class=\"secondary\" data-id=\"\(e.id ?? 0)\">\(p.t("retry"))</button></td>" : ""
            return """
                <tr data-testid="quarantine-row" data-id="\(e.id ?? 0)"><td>\(esc(when))</td><td><code>\(esc(e.sourceName))</code></td>
                <td data-testid="quarantine-reason" class="reason">\(esc(e.reason))</td><td class="num">\(e.bytes)</td>\(retry)</tr>
                """
        }.joined(separator: "\n")
        let body = """
            <h1>\(p.t("quarantine_title"))</h1>
            <p id="quarantine-status" class="status" role="status"></p>
            <table class="quarantine" id="quarantine"><thead><tr><th>\(p.t("when"))</th><th>\(p.t("file"))</th><th>\(p.t("reason"))</th><th>\(p.t("size"))</th>\(isAdmin ? "<th></th>" : "")</tr></thead>
            <tbody>\(rows)</tbody></table>
            \(entries.isEmpty ? "<p class=\"status\">\(p.t("quarantine_none"))</p>" : "")
            """
        return p.response(p.lang.t("quarantine"), body, active: "quarantine")
    }
}

extension APIError {
    static let invalidLead = "lead_number is 1–64 characters"
}
