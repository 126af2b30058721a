import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The console's `Authenticate`: a session cookie instead of a bearer token, into the same
/// `context.principal`. Pages send a signed-out visitor to `/login`; the console's JSON routes
/// answer 401. A state-changing request (anything but GET and HEAD) needs a same-origin `Origin`
/// and the session's anti-CSRF token (header `X-CSRF-Token`, or a form's `csrf` field).
struct ConsoleGuard: RouterMiddleware {
    typealias Context = CallrecContext
    enum Mode: Sendable { case page, api }

    let sessions: ConsoleSessions
    let mode: Mode
    let roles: Set<Role>?

    init(_ sessions: ConsoleSessions, _ mode: Mode, roles: Set<Role>? = nil) {
        self.sessions = sessions
        self.mode = mode
        self.roles = roles
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        var request = request
        guard let token = ConsoleSessions.cookieValue(request, ConsoleSessions.cookieName), let user = try await sessions.resolve(token) else {
            switch mode {
            case .api: throw APIError(.unauthorized, "unauthorized", "sign in to the console first")
            case .page:
                let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
                return Response.redirect(to: "/login?next=" + Form.encode(next), type: .found)
            }
        }
        if let roles, !roles.contains(user.role) {
            throw APIError(.forbidden, "forbidden", "this needs the role \(roles.map(\.rawValue).sorted().joined(separator: " or "))")
        }
        if request.method != .get && request.method != .head {
            try Self.checkOrigin(request, secure: sessions.isSecure(request, client: context.client))
            var given = request.headers[HTTPField.Name("X-CSRF-Token")!]
            if given == nil, request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
                let body = try await request.collectBody(upTo: 64 * 1024)
                given = Form.parse(String(buffer: body))["csrf"]
            }
            guard let given, Self.equal(given, user.csrf) else {
                throw APIError(.forbidden, "csrf", "this request lacks the console's anti-CSRF token")
            }
        }
        context.principal = user.principal
        context.console = user
        return try await next(request, context)
    }

    /// 403 unless `Origin` names this very server (scheme, host and port of the request).
    static func checkOrigin(_ request: Request, secure: Bool) throws {
        guard let origin = request.headers[.origin], let host = request.head.authority else {
            throw APIError(.forbidden, "cross_origin", "a state-changing request needs an Origin header of this server")
        }
        let expected = (secure ? "https://" : "http://") + host
        guard origin == expected else { throw APIError(.forbidden, "cross_origin", "a request from \(origin.prefix(100)) is not accepted here") }
    }

    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

/// `application/x-www-form-urlencoded`, both ways.
enum Form {
    static func parse(_ s: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in s.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ x: Substring) -> String { (String(x).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? "" }
            let key = decode(kv[0])
            if out[key] == nil { out[key] = kv.count > 1 ? decode(kv[1]) : "" }
        }
        return out
    }

    static let allowed: CharacterSet = {
        var c = CharacterSet.alphanumerics
        c.insert(charactersIn: "-._~/")
        return c
    }()

    static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }

    /// The form body of a request (at most 64 KiB).
    static func body(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 * 1024)
        return parse(String(buffer: buffer))
    }
}
