import Hummingbird
import NIOCore

/// The request context of callrec's routes: Hummingbird's core context plus the client address
/// (for the audit log).
public struct CallrecContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    var client: String? { remoteAddress?.ipAddress }
}
