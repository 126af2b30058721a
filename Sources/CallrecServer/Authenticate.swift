import CallrecCatalog
import Hummingbird
import JWTKit

/// Authenticates once, before any handler, into `context.principal`; a route group is guarded by
/// the roles its tokens must hold. Handlers never authenticate: they read `context.who`, and every
/// lookup goes through `RecordingService`, which applies the principal's company scope.
struct Authenticate: RouterMiddleware {
    typealias Context = CallrecContext

    /// Which requests a signed URL may authenticate (GET and HEAD only, whatever this says).
    enum Signed: Sendable {
        case never
        /// Audio and waveforms: `/recordings/<id>.opus|.wav`, `/recordings/<id>/waveform.json`.
        case media
        /// Export downloads.
        case always
    }

    let auth: Authenticator
    let signed: Signed
    /// Roles a bearer token must hold on these routes (nil: any role).
    let roles: Set<Role>?

    init(_ auth: Authenticator, signed: Signed = .never, roles: Set<Role>? = nil) {
        self.auth = auth
        self.signed = signed
        self.roles = roles
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let allow: Bool
        switch signed {
        case .never: allow = false
        case .always: allow = true
        case .media:
            let path = request.uri.path
            allow = path.hasSuffix(".opus") || path.hasSuffix(".wav") || path.hasSuffix("/waveform.json")
        }
        let principal = try await auth.authenticate(request, allowSigned: allow)
        if let roles, case .token(let claims) = principal, !roles.contains(claims.role) {
            throw APIError(.forbidden, "forbidden", "this needs the role \(roles.map(\.rawValue).sorted().joined(separator: " or "))")
        }
        context.principal = principal
        return try await next(request, context)
    }
}

/// The one company rule: what a principal may see and touch.
enum Scope: Sendable, Equatable {
    /// Every company (an unscoped compliance or admin token; a signed URL, which names its resource).
    case all
    /// One company's recordings only.
    case company(String)

    init(_ principal: Principal) {
        switch principal {
        case .signedURL: self = .all
        case .token(let c):
            if let company = c.company, !company.isEmpty { self = .company(company) } else { self = .all }
        }
    }

    /// Whether a recording (or pending metadata, an export, a retention override) of `company` is
    /// visible. Another company's answers exactly like a missing one.
    func allows(_ company: String?) -> Bool {
        switch self {
        case .all: return true
        case .company(let scope): return company == scope
        }
    }

    /// The company a query may cover: the scope itself; a different one asked for is refused (403).
    func restrict(_ asked: String?) throws -> String? {
        switch self {
        case .all: return asked
        case .company(let scope):
            if let asked, asked != scope { throw APIError(.forbidden, "forbidden", "this token is limited to company \(scope)") }
            return scope
        }
    }

    var company: String? { if case .company(let c) = self { return c } else { return nil } }
}

extension Principal {
    var scope: Scope { Scope(self) }
}
