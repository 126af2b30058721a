// CallrecServer — the HTTP face of callrec (Hummingbird 2).
// Owns: routes, the application's ServiceGroup (spool watcher, then the HTTP server), metrics.
// Everything it serves comes from CallrecCatalog; everything it ingests goes through CallrecIngest.

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
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: CallrecContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        router.get("/healthz") { _, _ -> Response in
            let recordings = try await offLoop { try catalog.count() }  // COUNT(*) scans: 10+ ms at a million rows
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
        let recordings = RecordingRoutes(catalog: catalog, auth: auth, audit: audit, wavCache: WavViewCache(), zone: settings.timeZone, now: now)
        recordings.register(on: router)
        let rows = recordings.rows
        ComplianceRoutes(catalog: catalog, auth: auth, zone: settings.timeZone, invalidate: { rows.invalidate($0) }).register(on: router)
        let exports = ExportService(catalog: catalog, logger: logger, keep: settings.exportTTL)
        ExportRoutes(catalog: catalog, auth: auth, service: exports, zone: settings.timeZone).register(on: router)
        OpenAPIRoute.register(on: router)
        // Shut down in reverse order: the server first, then the watcher's ingests, then the audit.
        var services: [any Service] = [audit, exports]
        if let webhooks { services.append(webhooks) }
        if let purge { services.append(purge) }
        if let watcher { services.append(IngestService(watcher: watcher)) }
        let serverName = "callrec"
        return Application(
            router: router,
            server: .callrec(fastPath: { AudioFastPath(routes: recordings, serverName: serverName) }),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: serverName),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.port) },
            logger: logger)
    }
}

/// The contract's error shape for everything that reaches a client:
/// `{"error": {"code": "…", "message": "…"}}`, never a stack trace.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as HTTPError {
            let code = error.status.code == 404 ? "not_found" : error.status.code == 405 ? "method_not_allowed" : "bad_request"
            return APIError(error.status, code, error.body ?? error.status.reasonPhrase).response()
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return APIError(.internalServerError, "internal", "internal error").response()
        }
    }
}

/// An error a client sees.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    func response() -> Response {
        let body = try! JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": message]], options: [.sortedKeys])
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
