import CallrecCatalog
import CallrecMedia
import Foundation
import Hummingbird

extension ConsoleRoutes {
    // MARK: search

    @Sendable func searchPage(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        let user = try context.who
        let q = request.uri.queryParameters
        func v(_ k: String) -> String { q[Substring(k)].map(String.init) ?? "" }
        let today = p.day(service.now())
        let yesterday = p.day(service.now() - 86400)
        let weekAgo = p.day(service.now() - 6 * 86400)
        let from = v("from").isEmpty ? today : v("from")
        let to = v("to").isEmpty ? from : v("to")
        let unscoped = user.scope.company == nil
        let minDuration = Int(v("min_duration")).map { String(min(max($0, 0), 86400)) } ?? ""
        let held = !v("held").isEmpty
        let companyField =
            unscoped
            ? "<label>\(p.t("company")) <input data-testid=\"search-company\" name=\"company\" value=\"\(esc(v("company")))\" placeholder=\"\(p.t("any"))\" size=\"10\"></label>"
            : ""
        let body = """
            <h1>\(p.t("search"))</h1>
            <form id="search" class="filters" method="get" action="/">
            <label>\(p.t("from")) <input data-testid="search-from" name="from" value="\(esc(from))" pattern="\\d{4}-\\d{2}-\\d{2}" placeholder="YYYY-MM-DD" size="10" required></label>
            <label>\(p.t("to")) <input data-testid="search-to" name="to" value="\(esc(to))" pattern="\\d{4}-\\d{2}-\\d{2}" placeholder="YYYY-MM-DD" size="10" required></label>
            <label>\(p.t("agent")) <input data-testid="search-agent" name="agent" value="\(esc(v("agent")))" size="8"></label>
            <label>\(p.t("lead")) <input data-testid="search-lead" name="lead" value="\(esc(v("lead")))" size="14"></label>
            \(companyField)
            <label>\(p.t("min_duration")) <input data-testid="search-min-duration" name="min_duration" type="number" min="0" max="86400" step="1" value="\(esc(minDuration))" size="5"></label>
            <label class="check"><input data-testid="search-held" type="checkbox" name="held" value="1"\(held ? " checked" : "")> \(p.t("held_only"))</label>
            <button data-testid="search-submit" type="submit">\(p.t("search"))</button>
            <span class="quick"><a href="/?from=\(today)&amp;to=\(today)">\(p.t("today"))</a>
            <a href="/?from=\(yesterday)&amp;to=\(yesterday)">\(p.t("yesterday"))</a>
            <a href="/?from=\(weekAgo)&amp;to=\(today)">\(p.t("last7"))</a></span>
            </form>
            <table class="results" id="results" data-from="\(esc(from))" data-to="\(esc(to))" data-agent="\(esc(v("agent")))" data-lead="\(esc(v("lead")))" data-company="\(esc(v("company")))" data-min-duration="\(esc(minDuration))" data-held="\(held ? "1" : "")" data-unscoped="\(unscoped ? "1" : "")" data-limit="\(Int(v("limit")).map { min(max($0, 1), 500) } ?? 50)"
             data-t-held="\(p.t("held"))" data-t-none="\(p.t("no_results"))" data-t-loading="\(p.t("loading"))">
            <thead><tr><th>\(p.t("start"))</th><th>\(p.t("duration"))</th><th>\(p.t("agent"))</th><th>\(p.t("lead"))</th><th>\(p.t("company"))</th><th>\(p.t("talk"))</th><th>\(p.t("hold"))</th></tr></thead>
            <tbody></tbody></table>
            <p class="status" id="results-status" role="status"></p>
            <button data-testid="load-more" id="load-more" type="button" hidden>\(p.t("load_more"))</button>
            <section class="live" id="live" data-testid="live-calls" aria-live="polite" data-t-none="\(p.t("live_none"))">
            <h2>\(p.t("live_title"))</h2>
            <table class="live-calls"><thead><tr><th>\(p.t("start"))</th><th>\(p.t("duration"))</th><th>\(p.t("agent"))</th><th>\(p.t("lead"))</th><th>\(p.t("company"))</th></tr></thead>
            <tbody></tbody></table>
            <p class="status" id="live-status">\(p.t("live_none"))</p>
            </section>
            """
        return p.response(p.lang.t("search"), body, active: "search")
    }

    // MARK: one recording

    func notFound(_ p: ConsolePage) -> Response {
        p.response(p.lang.t("not_found"), "<h1>\(p.t("not_found"))</h1><p>\(p.t("not_found_text"))</p>", status: .notFound)
    }

    @Sendable func recordingPage(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        let user = try context.who
        guard let id = (try? context.pathParameter("id")) ?? nil, UniqueID.isValid(id) else { return notFound(p) }
        let row: RecordingRow
        do { row = try await service.find(id, for: user) } catch let e as APIError where e.status == .notFound { return notFound(p) }
        let json = RecordingJSON(row)
        // Short-lived signed URLs for the audio element (which cannot send headers): long enough
        // to play the whole call at 1×, plus ten minutes.
        let exp = Int(service.now().timeIntervalSince1970) + 600 + row.durationMs / 1000
        let signer = auth.signer
        let opus = signer.sign(path: "/recordings/\(id).opus", expires: exp)
        let wav = signer.sign(path: "/recordings/\(id).wav", expires: exp)
        let peaks = signer.sign(path: "/recordings/\(id)/waveform.json", expires: exp)
        // The audio is fetched through signed URLs, whose audit entries cannot name the user:
        // the URLs' issue is audited under the user's name instead.
        service.recordRead(user, "audio.url", id, detail: "console", client: context.client)
        let silence = json.silence.segments.map { "[\($0.first ?? 0),\($0.last ?? 0)]" }.joined(separator: ",")
        // PCI pauses and the time MixMonitor dropped (AMI): shaded on the waveform, listed beside it.
        let pauses = (json.pauses ?? []).map { "[\($0.startMs),\($0.endMs)]" }.joined(separator: ",")
        let pauseItems = (json.pauses ?? []).map { pause -> String in
            let span = ConsolePage.clock(ms: pause.startMs) + "–" + ConsolePage.clock(ms: pause.endMs)
            let by = pause.by.map { " — " + String(format: p.lang.t("paused_by"), $0) } ?? ""
            let flag = pause.zeros == false ? " <strong>\(p.t("pause_not_silent"))</strong>" : ""
            return "<dd data-testid=\"pause-row\">\(esc(span + by))\(flag)</dd>"
        }.joined()
        let gapItems = (json.gaps ?? []).map { gap -> String in
            "<dd data-testid=\"gap-row\">" + esc(String(format: p.lang.t("gap_at"), ConsolePage.clock(ms: gap.atMs), p.number(Double(gap.lostMs) / 1000), p.lang.t(gap.why == "not_bridged" ? "gap_not_bridged" : "gap_unexplained"))) + "</dd>"
        }.joined()
        let laneLabels = "[\"\(p.lang.t("left"))\",\"\(p.lang.t("right"))\"]"
        let start = request.uri.queryParameters["t"].flatMap { Double($0) }.map { max(0, $0) } ?? 0
        let canComply = context.console?.role == .compliance || context.console?.role == .admin
        let heldText = row.legalHold ? String(format: p.lang.t("held_by"), row.holdBy ?? "?", row.holdReason ?? "") : ""
        var holdHTML = "<p data-testid=\"hold-badge\" class=\"badge held\"\(row.legalHold ? "" : " hidden")>\(p.t("held")) — \(esc(heldText))</p>"
        if canComply {
            let csrf = esc(context.console?.csrf)
            holdHTML +=
                row.legalHold
                ? """
                <form method="post" action="/r/\(esc(id))/release" class="hold"><input type="hidden" name="csrf" value="\(csrf)">
                <label>\(p.t("reason")) <input data-testid="release-reason" name="reason" maxlength="500"></label>
                <button data-testid="release-submit" type="submit">\(p.t("release_submit"))</button></form>
                """
                : """
                <form method="post" action="/r/\(esc(id))/hold" class="hold"><input type="hidden" name="csrf" value="\(csrf)">
                <label>\(p.t("reason")) <input data-testid="hold-reason" name="reason" required maxlength="500"></label>
                <button data-testid="hold-submit" type="submit">\(p.t("hold_submit"))</button></form>
                """
        }
        var listened = ""
        if canComply {
            let entries = try await service.consoleAudit(for: user, uniqueid: id, limit: 200).filter { $0.action.hasPrefix("audio.") }
            // One line per listener and day: a player's range requests are many entries.
            var seen = Set<String>()
            var items: [String] = []
            for e in entries {
                let when = Date(timeIntervalSince1970: TimeInterval(e.at))
                let key = e.actor + p.day(when)
                if seen.insert(key).inserted { items.append("<li>\(esc(e.actor)) — \(esc(p.dateTime(when)))</li>") }
            }
            listened = "<h2>\(p.t("listened"))</h2>" + (items.isEmpty ? "<p>\(p.t("nobody"))</p>" : "<ul class=\"listened\">\(items.joined())</ul>")
        }
        func dbfs(_ x: Double?) -> String { x.map { p.number($0) + " dBFS" } ?? "—" }
        let talk = max(0, 1 - json.silence.ratio) * 100
        let body = """
            <h1>\(p.t("recording")) <code>\(esc(id))</code></h1>
            \(holdHTML)
            <section id="player" class="player" data-opus="\(esc(opus))" data-wav="\(esc(wav))" data-peaks="\(esc(peaks))"
             data-duration-ms="\(row.durationMs)" data-silence="[\(silence)]" data-pauses="[\(pauses)]" data-start="\(start)"
             data-json="/console/api/recordings/\(esc(id))" data-lane-labels="\(esc(laneLabels))" data-t-agent="\(p.t("role_agent"))" data-t-customer="\(p.t("role_customer"))">
            <audio data-testid="player-audio" controls preload="metadata"></audio>
            <canvas data-testid="waveform" id="waveform" width="1200" height="120" tabindex="0" aria-label="waveform"></canvas>
            <div class="controls"><label>\(p.t("speed"))
            <select data-testid="player-speed" id="speed"><option value="1">1×</option><option value="1.25">1,25×</option><option value="1.5">1,5×</option><option value="2">2×</option></select></label>
            <span id="clock" class="clock">0:00 / \(ConsolePage.clock(ms: row.durationMs))</span>
            <span class="hint">\(p.t("keys"))</span></div>
            </section>
            <div class="columns">
            <section><h2>\(p.t("metadata"))</h2><dl>
            <dt>\(p.t("start"))</dt><dd>\(esc(p.dateTime(row.startedAtDate)))</dd>
            <dt>\(p.t("duration"))</dt><dd>\(ConsolePage.clock(ms: row.durationMs))</dd>
            <dt>\(p.t("agent"))</dt><dd>\(esc(row.agent ?? "—"))</dd>
            <dt>\(p.t("lead"))</dt><dd>\(esc(row.leadNumber ?? "—"))</dd>
            <dt>\(p.t("company"))</dt><dd>\(esc(row.company ?? "—"))</dd>
            <dt>\(p.t("parts"))</dt><dd>\(row.parts)</dd>
            <dt>\(p.t("source"))</dt><dd>\(esc(row.sourceFormat)), \(row.sourceBytes) B</dd>
            </dl></section>
            <section><h2>\(p.t("measurements"))</h2><dl>
            <dt>\(p.t("talk"))</dt><dd>\(p.number(talk)) %</dd>
            <dt>\(p.t("silence"))</dt><dd>\(p.number(Double(json.silence.totalMs) / 1000)) s (\(json.silence.segments.count))</dd>
            <dt>\(p.t("peak"))</dt><dd>\(dbfs(row.peakDBFS))</dd>
            <dt>\(p.t("rms"))</dt><dd>\(dbfs(row.rmsDBFS))</dd>
            <dt>\(p.t("clipped"))</dt><dd>\(row.clippedSamples)</dd>
            <dt>\(p.t("channels"))</dt><dd>\(row.channels)</dd>
            <dt>\(p.t("sample_rate"))</dt><dd>\(row.sampleRate) Hz</dd>
            \(pauseItems.isEmpty ? "" : "<dt>\(p.t("pauses"))</dt>" + pauseItems)
            \(gapItems.isEmpty ? "" : "<dt>\(p.t("gaps"))</dt>" + gapItems)
            </dl></section>
            <section>\(listened)</section>
            </div>
            """
        return p.response(id, body)
    }

    @Sendable func hold(_ request: Request, context: CallrecContext) async throws -> Response {
        try await setHold(request, context, on: true)
    }

    @Sendable func release(_ request: Request, context: CallrecContext) async throws -> Response {
        try await setHold(request, context, on: false)
    }

    func setHold(_ request: Request, _ context: CallrecContext, on: Bool) async throws -> Response {
        let id = try RecordingRoutes.uniqueid(context.pathParameter("id"))
        let form = try await Form.body(request)
        let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if on && reason.isEmpty { throw APIError(.badRequest, "reason_required", "a legal hold needs a reason") }
        // A release's reason goes to the audit log (the service keeps no reason on a released call).
        _ = try await service.setHold(id, on: on, reason: reason.isEmpty ? nil : String(reason.prefix(500)), by: try context.who, client: context.client)
        return Response.redirect(to: "/r/\(id)", type: .normal)
    }

    // MARK: exports

    @Sendable func exportsPage(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        let user = try context.who
        let today = p.day(service.now())
        let company =
            user.scope.company == nil
            ? "<label>\(p.t("company")) <input data-testid=\"export-company\" name=\"company\" placeholder=\"\(p.t("any"))\" size=\"10\"></label>" : ""
        let body = """
            <h1>\(p.t("export_title"))</h1>
            <form id="export" class="filters" data-t-failed="\(p.t("export_failed"))">
            <label>\(p.t("from")) <input data-testid="export-from" name="from" value="\(today)" pattern="\\d{4}-\\d{2}-\\d{2}" placeholder="YYYY-MM-DD" size="10" required></label>
            <label>\(p.t("to")) <input data-testid="export-to" name="to" value="\(today)" pattern="\\d{4}-\\d{2}-\\d{2}" placeholder="YYYY-MM-DD" size="10" required></label>
            \(company)
            <button data-testid="export-submit" type="submit">\(p.t("export_submit"))</button>
            </form>
            <div class="job" id="job" hidden>
            <progress data-testid="export-progress" id="export-progress" max="100" value="0"></progress> <span id="export-status" role="status"></span>
            <a data-testid="export-download" id="export-download" hidden download>\(p.t("download"))</a>
            </div>
            """
        return p.response(p.lang.t("exports"), body, active: "exports")
    }

    // MARK: audit

    @Sendable func auditPage(_ request: Request, context: CallrecContext) async throws -> Response {
        let p = page(request, context)
        let user = try context.who
        let q = request.uri.queryParameters
        func v(_ k: String) -> String? { q[Substring(k)].map(String.init).flatMap { $0.isEmpty ? nil : String($0.prefix(128)) } }
        let from = v("from").flatMap { try? TimeParsing.parse($0, zone: zone) }
        let to = v("to").flatMap { try? TimeParsing.parse($0, zone: zone) }.map { $0 + 86400 }
        let entries = try await service.consoleAudit(
            for: user, from: from, to: to, actor: v("actor"), action: v("action"), uniqueid: v("uniqueid"), limit: 500)
        let rows = entries.map { e -> String in
            // The full detail (an export's SHA-256, a range) stays readable on hover.
            let link = e.uniqueid.map { "<a href=\"/r/\(esc($0))\">\(esc($0))</a>" } ?? ""
            return "<tr data-testid=\"audit-row\"><td>\(esc(p.dateTime(Date(timeIntervalSince1970: TimeInterval(e.at)))))</td><td>\(esc(e.actor))</td><td>\(esc(e.role))</td><td>\(esc(e.action))</td><td>\(link)</td><td>\(esc(e.company))</td><td title=\"\(esc(e.detail))\">\(esc(e.detail))</td><td>\(esc(e.client))</td></tr>"
        }.joined(separator: "\n")
        func field(_ k: String, _ label: String, _ size: Int) -> String {
            "<label>\(p.t(label)) <input name=\"\(k)\" value=\"\(esc(v(k)))\" size=\"\(size)\"></label>"
        }
        let body = """
            <h1>\(p.t("audit"))</h1>
            <form class="filters" method="get" action="/audit">
            \(field("from", "from", 10))\(field("to", "to", 10))\(field("actor", "who", 10))\(field("action", "action", 10))\(field("uniqueid", "recording", 16))
            <button type="submit">\(p.t("filter"))</button></form>
            <table class="audit"><thead><tr><th>\(p.t("when"))</th><th>\(p.t("who"))</th><th>\(p.t("role"))</th><th>\(p.t("action"))</th><th>\(p.t("recording"))</th><th>\(p.t("company"))</th><th>\(p.t("detail"))</th><th>\(p.t("client"))</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        return p.response(p.lang.t("audit"), body, active: "audit")
    }
}

extension RecordingService {
    /// The audit log as a principal may read it: a company-scoped one sees its company's entries.
    func consoleAudit(
        for principal: Principal, from: Date? = nil, to: Date? = nil, actor: String? = nil, action: String? = nil, uniqueid: String? = nil, limit: Int
    ) async throws -> [AuditEntry] {
        try await catalog.recentAudit(
            company: principal.scope.company, from: from, to: to, actor: actor, action: action, uniqueid: uniqueid, limit: limit)
    }
}
