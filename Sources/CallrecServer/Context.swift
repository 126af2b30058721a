import Hummingbird
import NIOCore

/// The request context of callrec's routes: Hummingbird's core context plus the client address
/// (for the audit log).
public struct CallrecContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Who is asking: set once, by `Authenticate`, for every route behind it.
    public var principal: Principal?
    /// The console's signed-in user (set by `ConsoleGuard` on the console's routes).
    var console: ConsoleUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    var client: String? { remoteAddress?.ipAddress }

    /// A path parameter, percent-decoded (`/retention/%41` names company `A`): nil when absent;
    /// a 400 when its encoding is broken.
    func pathParameter(_ name: String) throws -> String? {
        guard let raw = parameters.get(name) else { return nil }
        guard raw.contains("%") else { return raw }
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError(.badRequest, "invalid_path", "the path parameter \(name) is not valid percent-encoding")
        }
        return decoded
    }

    /// The authenticated principal; routes behind `Authenticate` always have one.
    var who: Principal {
        get throws {
            guard let principal else { throw APIError(.unauthorized, "unauthorized", "authentication is required") }
            return principal
        }
    }
}
