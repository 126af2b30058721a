import CallrecCatalog
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOPosix
import Testing

@testable import CallrecServer

/// One way through the server: a route gets company scoping, authentication and the event-loop
/// rule from the pieces it is built of, not from code of its own.
struct OneWayTests {
    /// A route written with no scoping code at all (authenticated by the middleware, looking up
    /// through `RecordingService`) cannot reach another company's recording.
    @Test func aNewRouteIsScopedWithoutScopingCode() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "42")
        try h.add("u8.wav", as: "1732467600.2", company: "7")
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let service = RecordingService(catalog: h.catalog, audit: AuditWriter(catalog: h.catalog, logger: logger))
        let router = Router(context: CallrecContext.self)
        router.add(middleware: JSONErrorMiddleware(routes: RouteTable()))
        router.group().add(middleware: Authenticate(Authenticator(signer: h.signer, tokens: h.tokens)))
            .get("/probe/:id") { _, context in
                let row = try await service.find(context.parameters.get("id") ?? "", for: try context.who)
                return row.uniqueid
            }
        let viewer42 = try await h.token(.viewer, company: "42")
        let admin42 = try await h.token(.admin, company: "42")
        let admin = try await h.token(.admin)
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            #expect(try await client.execute(uri: "/probe/1732467600.1", method: .get, headers: h.bearer(viewer42)).status == .ok)
            for token in [viewer42, admin42] {
                let other = try await client.execute(uri: "/probe/1732467600.2", method: .get, headers: h.bearer(token))
                #expect(other.status == .notFound)
            }
            #expect(try await client.execute(uri: "/probe/1732467600.2", method: .get, headers: h.bearer(admin)).status == .ok)
            #expect(try await client.execute(uri: "/probe/1732467600.2", method: .get).status == .unauthorized)
        }
    }

    /// Where a synchronous catalog call is refused: in a request's task, and on an event loop.
    @Test func blockingCallsAreRecognised() async throws {
        #expect(!BlockingCalls.isForbiddenHere)
        #expect(BlockingCalls.$forbidden.withValue(true) { BlockingCalls.isForbiddenHere })
        let onLoop = try await MultiThreadedEventLoopGroup.singleton.next().submit { BlockingCalls.isForbiddenHere }.get()
        #expect(onLoop)
        let onPool = try await NIOThreadPool.singleton.runIfActive { BlockingCalls.isForbiddenHere }
        #expect(!onPool)
        #expect(BlockingCalls.violations == 0)
    }
}
