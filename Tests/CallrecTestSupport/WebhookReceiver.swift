import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging

/// A webhook receiver on a loopback port for the length of `body`, which gets its URL (path
/// `/hook`): `answer(raw body, Callrec-Signature)` says whether to accept the request (200) or
/// refuse it (500).
public func withWebhookReceiver(
    _ answer: @escaping @Sendable (Data, String) async throws -> Bool, _ body: @escaping @Sendable (URL) async throws -> Void
) async throws {
    let router = Router()
    router.post("/hook") { request, _ -> Response in
        var request = request
        let bytes = try await request.collectBody(upTo: 1 << 20)
        let ok = try await answer(Data(bytes.readableBytesView), request.headers[HTTPField.Name("Callrec-Signature")!] ?? "")
        return Response(status: ok ? .ok : .internalServerError)
    }
    var logger = Logger(label: "webhook-receiver")
    logger.logLevel = .critical
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    try await app.test(.live) { client in
        guard let port = client.port else { throw DecodeError(message: "the receiver has no port") }
        try await body(URL(string: "http://127.0.0.1:\(port)/hook")!)
    }
}
