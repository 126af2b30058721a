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

    /// The authenticated principal; routes behind `Authenticate` always have one.
    var who: Principal {
        get throws {
            guard let principal else { throw APIError(.unauthorized, "unauthorized", "authentication is required") }
            return principal
        }
    }
}
