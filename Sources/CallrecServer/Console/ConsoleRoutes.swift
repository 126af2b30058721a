import CallrecCatalog
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import JWTKit

/// The console's routes: sign-in, SSO, pages, and the JSON the pages' script uses. Every lookup
/// goes through `RecordingService` with the session's `Principal`; the JSON routes are the API's
/// own handlers (`RecordingRoutes`, `ExportRoutes`) behind `ConsoleGuard` instead of `Authenticate`.
struct ConsoleRoutes: Sendable {
    let service: RecordingService
    let recordings: RecordingRoutes
    let exports: ExportRoutes
    let auth: Authenticator
    let accounts: ConsoleAccounts
    let sessions: ConsoleSessions
    let throttle: SignInThrottle
    let zone: TimeZone
    let live: LiveRoutes
    let quarantine: QuarantineRoutes
    /// `CALLREC_RETENTION_DAYS`, shown on the retention page.
    let retentionDays: Int

    static let comply: Set<Role> = [.compliance, .admin]

    func register(on router: Router<CallrecContext>) {
        router.get("/login", use: loginPage)
        router.post("/login", use: login)
        router.get("/console/sso", use: sso)
        router.get("/console/assets/:file", use: asset)
        PlayerAsset.register(on: router)

        let pages = router.group().add(middleware: ConsoleGuard(sessions, .page))
        pages.get("/", use: searchPage)
        pages.get("/r/:id", use: recordingPage)
        pages.post("/logout", use: logout)
        let complyPages = router.group().add(middleware: ConsoleGuard(sessions, .page, roles: Self.comply))
        complyPages.post("/r/:id/hold", use: hold)
        complyPages.post("/r/:id/release", use: release)
        complyPages.get("/exports", use: exportsPage)
        complyPages.get("/audit", use: auditPage)

        let api = router.group("/console/api").add(middleware: ConsoleGuard(sessions, .api))
        api.get("/recordings", use: recordings.list)
        api.get("/recordings/:id", use: recordingJSON)
        api.get("/calls/live", use: live.calls)
        api.get("/events", use: events)
        let complyAPI = router.group("/console/api").add(middleware: ConsoleGuard(sessions, .api, roles: Self.comply))
        complyAPI.post("/exports", use: exports.create)
        complyAPI.get("/exports/:id", use: exports.status)
        complyAPI.get("/exports/:id/download", use: exports.download)
        registerCompliancePages(on: router)
    }

    func page(_ request: Request, _ context: CallrecContext) -> ConsolePage {
        let (lang, set) = Lang.from(request)
        let here = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        var p = ConsolePage(lang: lang, zone: zone, user: context.console, here: here)
        p.setLangCookie = set
        return p
    }

    // MARK: assets

    @Sendable func asset(_ request: Request, context: CallrecContext) async throws -> Response {
        let name = (try? context.pathParameter("file")) ?? nil ?? ""
        guard let (body, type) = ConsoleAssets.files[name] else { throw APIError(.notFound, "not_found", "no asset \(name.prefix(64))") }
        var headers = ConsolePage.headers(html: false)
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        headers[.eTag] = ConsoleAssets.etag
        if request.headers[.ifNoneMatch] == ConsoleAssets.etag { return Response(status: .notModified, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // MARK: sign-in and out

    static let loginCookie = "callrec_login"

    /// `next` when it is a path of this server, else `/`.
    static func safeNext(_ s: String?) -> String {
        guard let s, s.hasPrefix("/"), !s.hasPrefix("//"), !s.hasPrefix("/\\"), !s.contains("\r"), !s.contains("\n") else { return "/" }
        return s
    }

    func loginForm(_ p: ConsolePage, next: String, error: String? = nil, status: HTTPResponse.Status = .ok, secure: Bool) -> Response {
        let csrf = ConsoleSessions.randomToken()
        let body = """
            <section class="login">
            <h1>\(p.t("title"))</h1>
            <form method="post" action="/login">
            <input type="hidden" name="csrf" value="\(csrf)"><input type="hidden" name="next" value="\(esc(next))">
            <label>\(p.t("username")) <input data-testid="login-username" name="username" autocomplete="username" required autofocus></label>
            <label>\(p.t("password")) <input data-testid="login-password" name="password" type="password" autocomplete="current-password" required></label>
            <p data-testid="login-error" class="error" role="alert"\(error == nil ? " hidden" : "")>\(esc(error))</p>
            <button data-testid="login-submit" type="submit">\(p.t("signin"))</button>
            </form></section>
            """
        var r = p.response(p.lang.t("signin"), body, status: status)
        // Double-submit token for the sign-in form itself (there is no session yet).
        r.headers.append(.init(name: .setCookie, value: "\(Self.loginCookie)=\(csrf); HttpOnly; SameSite=Strict; Path=/login\(secure ? "; Secure" : "")"))
        return r
    }

    @Sendable func loginPage(_ request: Request, context: CallrecContext) async throws -> Response {
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        return loginForm(page(request, context), next: next, secure: sessions.isSecure(request, client: context.client))
    }

    @Sendable func login(_ request: Request, context: CallrecContext) async throws -> Response {
        let secure = sessions.isSecure(request, client: context.client)
        try ConsoleGuard.checkOrigin(request, secure: secure)
        let form = try await Form.body(request)
        guard let given = form["csrf"], let expected = ConsoleSessions.cookieValue(request, Self.loginCookie), ConsoleGuard.equal(given, expected) else {
            throw APIError(.forbidden, "csrf", "the sign-in form's anti-CSRF token is missing or does not match")
        }
        let p = page(request, context)
        let name = (form["username"] ?? "").trimmingCharacters(in: .whitespaces)
        let password = form["password"] ?? ""
        let next = Self.safeNext(form["next"])
        let address = context.client ?? "?"
        let now = sessions.now()
        if let wait = throttle.retryAfter(account: name, address: address, now: now) {
            service.audit.record(AuditEntry(at: now, actor: name, role: nil, company: nil, action: "login.throttled", uniqueid: nil, client: context.client))
            let minutes = max(1, Int((wait / 60).rounded(.up)))
            var r = loginForm(p, next: next, error: String(format: p.lang.t("throttled"), minutes), status: .tooManyRequests, secure: secure)
            r.headers[.retryAfter] = String(Int(wait.rounded(.up)))
            return r
        }
        guard Self.validLength(name), password.utf8.count <= 1024, let user = try await accounts.verify(name: name, password: password),
            let role = Role(rawValue: user.role)
        else {
            throttle.failed(account: name, address: address, now: now)
            service.audit.record(AuditEntry(at: now, actor: String(name.prefix(64)), role: nil, company: nil, action: "login.failed", uniqueid: nil, client: context.client))
            return loginForm(p, next: next, error: p.lang.t("bad_login"), status: .unauthorized, secure: secure)
        }
        throttle.succeeded(account: name)
        let token = try await sessions.start(userName: user.name, subject: user.name, role: role, company: user.company, client: context.client)
        service.audit.record(AuditEntry(at: now, actor: user.name, role: role.rawValue, company: user.company, action: "login", uniqueid: nil, client: context.client))
        var r = Response.redirect(to: next, type: .normal)
        r.headers.append(.init(name: .setCookie, value: sessions.cookie(token, secure: secure)))
        r.headers.append(.init(name: .setCookie, value: "\(Self.loginCookie)=; Max-Age=0; Path=/login"))
        return r
    }

    static func streamKey(_ user: ConsoleUser) -> String { "session:" + user.idHash }

    /// The console's event stream: the API's, for the session, closed when it is signed out.
    @Sendable func events(_ request: Request, context: CallrecContext) async throws -> Response {
        guard let user = context.console else { throw APIError(.unauthorized, "unauthorized", "sign in to the console first") }
        guard case .token(let claims) = user.principal else { throw APIError(.unauthorized, "unauthorized", "sign in first") }
        let sessions = self.sessions
        return try live.stream(request, principal: user.principal, key: Self.streamKey(user), expires: claims.exp.value) { await sessions.holds(user) }
    }

    /// One recording's JSON (the player reads its speakers' roles to label a stereo waveform).
    @Sendable func recordingJSON(_ request: Request, context: CallrecContext) async throws -> Response {
        let id = try RecordingRoutes.uniqueid(context.pathParameter("id"))
        return try JSONResponse.make(RecordingJSON(try await service.find(id, for: try context.who)))
    }

    static func validLength(_ name: String) -> Bool { (1...64).contains(name.count) }

    @Sendable func logout(_ request: Request, context: CallrecContext) async throws -> Response {
        if let user = context.console {
            try await sessions.end(user)
            live.hub.end(key: Self.streamKey(user))
        }
        var r = Response.redirect(to: "/login", type: .normal)
        r.headers[.setCookie] = sessions.cookie("", secure: sessions.isSecure(request, client: context.client), maxAge: 0)
        return r
    }
}
