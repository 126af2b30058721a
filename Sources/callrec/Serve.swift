import ArgumentParser
import CallrecAMI
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecServer
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the service: spool watcher, ingest workers and HTTP API; stops cleanly on SIGTERM/SIGINT.")

    @OptionGroup var common: CommonOptions
    @Option(help: "The MixMonitor spool to watch (default: CALLREC_SPOOL, else ./spool).") var spool: String?
    @Option(help: "Address to listen on (default: CALLREC_HOST, else 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on, 0 for any (default: CALLREC_PORT, else 8080).") var port: Int?

    func run() async throws {
        // Run Swift Concurrency's jobs on NIO's event loops: a request's handler then runs on the
        // thread that owns its socket instead of hopping to the global pool and back (measured in
        // scripts/bench-serve). Blocking work (transcoding, exports, purges, audit flushes) runs on
        // its own threads, and catalog calls on GRDB's own queues (`RecordingService`).
        let onEventLoops = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        var settings = try common.loadSettings()
        if let spool { settings.spool = spool }
        if let host { settings.host = host }
        if let port { settings.port = port }
        // Before anything starts (the watcher would take files, then the server fail to bind).
        try Self.checkCanListen(host: settings.host, port: settings.port)
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = makeLogger("callrec", defaultLevel: .info)
        if !onEventLoops { logger.warning("tasks run on Swift's global pool: NIO's event loops could not be installed as its executor") }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let catalog = try common.loadCatalog(settings)
        let naming: SpoolNaming
        do { naming = try SpoolNaming(pattern: settings.spoolPattern) } catch { throw CommandFailure("\(error)") }
        let spoolRoot = URL(fileURLWithPath: settings.spool).standardizedFileURL.path
        let ingestor = Ingestor(
            catalog: catalog, transcoder: settings.transcoder(for: catalog), naming: naming, spoolRoot: spoolRoot, logger: logger)
        let watcher = SpoolWatcher(spool: spoolRoot, ingestor: ingestor, options: settings.watcher, logger: logger)
        let data = settings.data.root
        let host = settings.host
        let frozen = settings
        let auth: Authenticator
        do { auth = try await makeAuthenticator(settings) } catch { throw CommandFailure("\(error)") }
        let purge = PurgeService(catalog: catalog, at: settings.purgeAt, zone: settings.timeZone, defaultDays: settings.retentionDays, logger: logger)
        var webhooks: WebhookSender?
        if let url = settings.webhookURL {
            do {
                webhooks = WebhookSender(catalog: catalog, url: url, secret: try Secrets.value(.webhook, data: settings.data), logger: logger)
            } catch { throw CommandFailure("\(error)") }
        }
        // AMI (CALLREC_AMI): call facts, PCI pauses. Its secret is never logged (`AMIEndpoint`).
        let ami = settings.ami.map { AMIService.make(endpoint: $0, catalog: catalog, maxPause: settings.maxPause, logger: logger) }
        let app = CallrecApplication.make(
            settings: frozen, catalog: catalog, watcher: watcher, auth: auth, registry: registry, logger: logger, purge: purge, webhooks: webhooks,
            ami: ami,
            onServerRunning: { port in
                // A uniqueid of today: the try-it recording is not removed by tonight's purge.
                let example = "\(Int(Date().timeIntervalSince1970)).42"
                logger.notice("callrec is serving", metadata: ["url": "http://\(host):\(port)", "spool": "\(spoolRoot)", "data": "\(data)"])
                if stderrIsTerminal {
                    FileHandle.standardError.write(Data("""
                        callrec is listening on http://\(host):\(port) — try: curl http://\(host):\(port)/healthz
                        Drop a MixMonitor recording (e.g. cp Fixtures/audio/speech.wav \(spoolRoot)/\(example).wav),
                        then: callrec show \(example) --data \(data)

                        """.utf8))
                }
            })
        do {
            try await app.runService()
        } catch {
            throw CommandFailure("\(error)")
        }
        logger.notice("stopped")
    }

    /// Fails with one line naming the address when `host:port` cannot be bound (another
    /// `serve` on it, a privileged port, an address not on this machine): a test bind with
    /// SO_REUSEADDR, as NIO binds, closed at once.
    static func checkCanListen(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw CommandFailure("cannot listen on \(host):\(port): \(String(cString: gai_strerror(rc))) (set --host or CALLREC_HOST)")
        }
        defer { freeaddrinfo(list) }
        let ai = first.pointee
        let fd = socket(ai.ai_family, ai.ai_socktype, ai.ai_protocol)
        guard fd >= 0 else { return }  // let the server report it
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 {
            let reason = String(cString: strerror(errno))
            let hint = errno == EADDRINUSE ? " (another callrec serve?)" : ""
            throw CommandFailure("cannot listen on \(host):\(port): \(reason)\(hint); choose another port with --port or CALLREC_PORT")
        }
    }
}
