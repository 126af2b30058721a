// CallrecServer — the HTTP face of callrec (Hummingbird 2).
// Owns: routes, the application's ServiceGroup (spool watcher, then the HTTP server), metrics.
// Everything it serves comes from CallrecCatalog; everything it ingests goes through CallrecIngest.

import CallrecAMI
import CallrecCatalog
import CallrecIngest
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// Builds the application `callrec serve` runs: the HTTP routes (see `openapi.yaml`), plus the spool watcher as a
/// service of the same ServiceGroup (so SIGTERM stops the server first, then drains the workers).
public enum CallrecApplication {
    public static func make(
        settings: Settings, catalog: Catalog, watcher: SpoolWatcher?, auth: Authenticator, registry: PrometheusCollectorRegistry,
        logger: Logger, purge: PurgeService? = nil, webhooks: WebhookSender? = nil, now: @escaping @Sendable () -> Date = Date.init,
        freeBytes: @escaping @Sendable (String) -> Int64? = FileSystemSpace.free,
        limits: ConnectionLimits = .fromEnvironment(), ami: AMIService? = nil, live: LiveCalls = LiveCalls(), eventHeartbeat: Duration = .seconds(15), eventHub: EventHub? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: CallrecContext.self)
        let routes = RouteTable()
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: NoBlockingCalls())
        router.add(middleware: JSONErrorMiddleware(routes: routes))
        let count = RecordingCount(catalog: catalog)
        router.get("/healthz") { _, _ -> Response in
            let recordings = await count.value()
            let body = #"{"status":"ok","recordings":\#(recordings),"backlog":\#(watcher?.backlog ?? 0)}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        let audit = AuditWriter(catalog: catalog, logger: logger)
        let service = RecordingService(catalog: catalog, audit: audit, now: now, freeBytes: freeBytes)
        let recordings = RecordingRoutes(service: service, auth: auth, wavCache: WavViewCache(), zone: settings.timeZone)
        recordings.register(on: router)
        ComplianceRoutes(service: service, auth: auth, zone: settings.timeZone).register(on: router)
        let exports = ExportService(catalog: catalog, logger: logger, keep: settings.exportTTL)
        let exportRoutes = ExportRoutes(recordings: service, auth: auth, service: exports, zone: settings.timeZone)
        exportRoutes.register(on: router)
        let quarantine = QuarantineRoutes(catalog: catalog, auth: auth, ingestor: watcher?.ingestor)
        quarantine.register(on: router)
        // Calls being recorded now (the spool's files being written) and the event streams.
        let liveRoutes = LiveRoutes(service: service, auth: auth, live: live, hub: eventHub ?? EventHub(changes: catalog.changes, live: live), heartbeat: eventHeartbeat)
        liveRoutes.register(on: router)
        // The console (pages for people): the same service, principals and routes' handlers.
        ConsoleRoutes(
            service: service, recordings: recordings, exports: exportRoutes, auth: auth, accounts: ConsoleAccounts(catalog: catalog, now: now),
            sessions: ConsoleSessions(catalog: catalog, now: now), throttle: SignInThrottle(), zone: settings.timeZone, live: liveRoutes,
            quarantine: quarantine, retentionDays: settings.retentionDays
        ).register(on: router)
        // Bearer-token revocations: read before the first token is admitted, then polled.
        auth.verifiedTokens.attach { try await catalog.tokenRevocations(now: now()) }
        TokenRoutes(catalog: catalog, auth: auth, now: now).register(on: router)
        PauseRoutes(pauses: ami?.pauses, service: service, auth: auth, naming: try? SpoolNaming(pattern: settings.spoolPattern)).register(on: router)
        OpenAPIRoute.register(on: router)
        routes.learn(from: router)
        // Shut down in reverse order: the server first, then the watcher's ingests, then the audit.
        var services: [any Service] = [audit, exports, TokenRevocationWatcher(catalog: catalog, tokens: auth.verifiedTokens, interval: .milliseconds(250), now: now)]
        if let ami {
            services.append(ami)
            services.append(AMILiveFeed(tracker: ami.tracker, live: live, naming: try? SpoolNaming(pattern: settings.spoolPattern), interval: .seconds(1), now: now))
        }
        if let webhooks { services.append(webhooks) }
        if let purge { services.append(purge) }
        if let watcher {
            services.append(IngestService(watcher: watcher))
            services.append(SpoolLiveFeed(watcher: watcher, live: live, interval: .seconds(1)))
        }
        let serverName = "callrec"
        return Application(
            router: HeadAsGet(router: router, routes: routes),
            server: .callrec(limits: limits, fastPath: { AudioFastPath(routes: recordings, serverName: serverName) }),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: serverName),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.port) },
            logger: logger)
    }
}

/// The contract's error shape for everything that reaches a client:
/// `{"error": {"code": "…", "message": "…"}}`, never a stack trace.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable

    init(routes: RouteTable) { self.routes = routes }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as HTTPError where error.status == .notFound {
            // The router found no route: a path that exists with other methods is a 405 with Allow.
            let allowed = routes.methods(for: request.uri.path)
            guard !allowed.isEmpty else { return APIError(.notFound, "not_found", "no such route: \(request.uri.path)").response() }
            var response = APIError(.methodNotAllowed, "method_not_allowed", "\(request.method) is not allowed here; allowed: \(allowed.joined(separator: ", "))").response()
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        } catch let error as HTTPError {
            let code = error.status.code == 404 ? "not_found" : error.status.code == 405 ? "method_not_allowed" : "bad_request"
            return APIError(error.status, code, error.body ?? error.status.reasonPhrase).response()
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return APIError(.internalServerError, "internal", "internal error").response()
        }
    }
}

/// Marks every request's task: a synchronous catalog call inside it is a bug (`BlockingCalls`),
/// stopped in debug builds and counted in release ones.
struct NoBlockingCalls<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await BlockingCalls.$forbidden.withValue(true) { try await next(request, context) }
    }
}

/// An error a client sees: Hummingbird renders it wherever it is thrown (an `HTTPResponseError`),
/// and `JSONErrorMiddleware` turns every other error into the same shape.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    var headers: HTTPFields = [:]

    public func response(from request: Request, context: some RequestContext) throws -> Response { response() }

    func response() -> Response {
        let body = try! JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": message]], options: [.sortedKeys])
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The routes' paths and methods, read from the router once it is built: a request for a path
/// that exists with another method answers 405 with `Allow` (RFC 9110 §15.5.6), not 404.
final class RouteTable: @unchecked Sendable {
    private var routes: [([Substring], String)] = []

    func learn(from router: Router<CallrecContext>) {
        routes = router.routes.map { route in (route.path.description.split(separator: "/"), route.method.rawValue) }
    }

    /// The methods routes were registered for at `path`.
    func registered(for path: String) -> Set<String> {
        let parts = path.split(separator: "/")
        var found = Set<String>()
        for (pattern, method) in routes where pattern.count == parts.count {
            if zip(pattern, parts).allSatisfy({ p, s in p.hasPrefix("{") || p.hasPrefix(":") || p == "*" || p == s }) { found.insert(method) }
        }
        return found
    }

    /// The methods `path` answers: what was registered, and HEAD wherever GET is (`HeadAsGet`).
    func methods(for path: String) -> [String] {
        var found = registered(for: path)
        if found.contains("GET") { found.insert("HEAD") }
        return found.sorted()
    }
}

/// HEAD for every GET route (RFC 9110 §9.3.2): a route that registered no HEAD of its own is
/// asked as GET, and its answer sent without the body but with the body's Content-Length. Routes
/// that do register HEAD (the audio, which reads no file for it) answer it themselves.
struct HeadAsGet<Router: HTTPResponderBuilder>: HTTPResponderBuilder where Router.Responder.Context == CallrecContext {
    let router: Router
    let routes: RouteTable

    func buildResponder() -> Responder {
        Responder(inner: router.buildResponder(), routes: routes)
    }

    struct Responder: HTTPResponder {
        let inner: Router.Responder
        let routes: RouteTable

        func respond(to request: Request, context: CallrecContext) async throws -> Response {
            guard request.method == .head else { return try await inner.respond(to: request, context: context) }
            let registered = routes.registered(for: request.uri.path)
            guard !registered.contains("HEAD"), registered.contains("GET") else { return try await inner.respond(to: request, context: context) }
            var head = request.head
            head.method = .get
            let response = try await inner.respond(to: Request(head: head, body: request.body), context: context)
            var headers = response.headers
            if headers[.contentLength] == nil, let length = response.body.contentLength { headers[.contentLength] = String(length) }
            return Response(status: response.status, headers: headers, body: ResponseBody())
        }
    }
}

/// The recording count `/healthz` shows: `COUNT(*)` scans the table (10+ ms at a million rows),
/// so it is taken at most every 5 s, off the event loops, and a liveness probe never waits on it.
final class RecordingCount: @unchecked Sendable {
    let catalog: Catalog
    private let lock = NSLock()
    private var cached = 0
    private var takenAt: UInt64 = 0
    private var refreshing = false

    init(catalog: Catalog) { self.catalog = catalog }

    func value() async -> Int {
        let now = DispatchTime.now().uptimeNanoseconds
        let (first, due, v) = lock.withLock {
            let first = takenAt == 0
            let due = !refreshing && (first || now - takenAt > 5_000_000_000)
            if due { refreshing = true }
            return (first, due, cached)
        }
        guard due else { return v }
        let refresh = Task {
            let n = (try? await catalog.count()) ?? v
            lock.withLock {
                cached = n
                takenAt = DispatchTime.now().uptimeNanoseconds
                refreshing = false
            }
            return n
        }
        return first ? await refresh.value : v
    }
}
