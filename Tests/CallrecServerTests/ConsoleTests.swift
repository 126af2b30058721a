import CallrecCatalog
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@testable import CallrecServer

/// The console's accounts, sessions, sign-in throttling, CSRF and SSO.
@Suite(.offThePool)
struct ConsoleTests {
    static let password = "correct horse battery"

    /// A clock tests move by hand.
    final class Clock: Sendable {
        let t = NIOLockedValueBox(Date())
        func now() -> Date { t.withLockedValue { $0 } }
        func advance(_ s: TimeInterval) { t.withLockedValue { $0 += s } }
    }

    @Test func accountsHashWithBcryptAndCheckTheirInput() async throws {
        let h = try await Harness()
        let accounts = ConsoleAccounts(catalog: h.catalog, cost: 4)
        try await accounts.add(name: "ana", role: "compliance", company: nil, password: Self.password)
        let stored = try #require(try await h.catalog.user("ana"))
        #expect(stored.passwordHash.hasPrefix("$2") && !stored.passwordHash.contains(Self.password))
        #expect(try await accounts.verify(name: "ana", password: Self.password)?.name == "ana")
        #expect(try await accounts.verify(name: "ana", password: "wrong password") == nil)
        #expect(try await accounts.verify(name: "nobody", password: Self.password) == nil)
        await #expect(throws: ConsoleAccounts.Failure.self) { try await accounts.add(name: "ana", role: "viewer", company: "acme", password: Self.password) }
        await #expect(throws: ConsoleAccounts.Failure.self) { try await accounts.add(name: "v", role: "viewer", company: nil, password: Self.password) }
        await #expect(throws: ConsoleAccounts.Failure.self) { try await accounts.add(name: "x", role: "root", company: nil, password: Self.password) }
        await #expect(throws: ConsoleAccounts.Failure.self) { try await accounts.add(name: "y", role: "admin", company: nil, password: "short") }
        await #expect(throws: ConsoleAccounts.Failure.self) { try await accounts.add(name: "a b", role: "admin", company: nil, password: Self.password) }
        try await accounts.setPassword(name: "ana", password: "another long one")
        #expect(try await accounts.verify(name: "ana", password: Self.password) == nil)
        #expect(try await accounts.verify(name: "ana", password: "another long one") != nil)
        try await accounts.disable(name: "ana")
        #expect(try await accounts.verify(name: "ana", password: "another long one") == nil)
        #expect(try await accounts.list().map(\.isDisabled) == [true])
    }

    @Test func sessionsExpireWhenIdleAndAbsolutelyAndEndWithTheAccount() async throws {
        let h = try await Harness()
        let clock = Clock()
        let accounts = ConsoleAccounts(catalog: h.catalog, cost: 4, now: clock.now)
        try await accounts.add(name: "vi", role: "viewer", company: "acme", password: Self.password)
        let sessions = ConsoleSessions(catalog: h.catalog, env: ["CALLREC_SESSION_IDLE_MINUTES": "30", "CALLREC_SESSION_HOURS": "2"], now: clock.now)

        // The principal is a bearer token's, with the account's company scope.
        let a = try await sessions.start(userName: "vi", subject: "vi", role: .viewer, company: "acme", client: nil)
        let user = try #require(try await sessions.resolve(a))
        #expect(user.principal.scope == .company("acme") && user.principal.role == .viewer)
        #expect(try await h.catalog.session(ConsoleSessions.hash(a)) != nil)
        #expect(try await h.catalog.session(a) == nil)  // the catalog holds only the hash

        clock.advance(31 * 60)
        #expect(try await sessions.resolve(a) == nil)  // idle

        let b = try await sessions.start(userName: "vi", subject: "vi", role: .viewer, company: "acme", client: nil)
        for _ in 0..<4 {
            clock.advance(25 * 60)
            #expect(try await sessions.resolve(b) != nil)
        }
        clock.advance(25 * 60)
        #expect(try await sessions.resolve(b) == nil)  // past 2 hours, however active

        let c = try await sessions.start(userName: "vi", subject: "vi", role: .viewer, company: "acme", client: nil)
        #expect(try await sessions.resolve(c) != nil)
        try await accounts.disable(name: "vi")
        #expect(try await sessions.resolve(c) == nil)
        #expect(try await sessions.resolve("not-a-session-token-at-all") == nil)
    }

    @Test func signInIsThrottledPerAccountAndPerAddress() {
        let throttle = SignInThrottle(limits: .init(perAccount: 5, perAddress: 8, window: 900))
        let t0 = Date()
        for _ in 0..<5 {
            #expect(throttle.retryAfter(account: "ana", address: "10.0.0.1", now: t0) == nil)
            throttle.failed(account: "ana", address: "10.0.0.1", now: t0)
        }
        #expect(throttle.retryAfter(account: "ana", address: "10.0.0.2", now: t0) != nil)  // the account, from anywhere
        #expect(throttle.retryAfter(account: "ANA", address: "10.0.0.2", now: t0) != nil)
        #expect(throttle.retryAfter(account: "bea", address: "10.0.0.2", now: t0) == nil)
        for _ in 0..<3 { throttle.failed(account: "user\(Int.random(in: 0...1_000_000))", address: "10.0.0.1", now: t0) }
        #expect(throttle.retryAfter(account: "carla", address: "10.0.0.1", now: t0) != nil)  // the address, for any account
        #expect(throttle.retryAfter(account: "ana", address: "10.0.0.3", now: t0 + 901) == nil)  // the window passed
    }

    /// A compliance officer sees where a call was paused for PCI and by whom, and the time
    /// MixMonitor dropped, on the recording's page (the waveform shades the pauses).
    @Test func pausesAndGapsShowOnTheRecordingPage() async throws {
        let h = try await Harness()
        var row = try h.add("speech.wav", as: "1732467600.1", company: "acme")
        row.ami = AMIFacts(
            startedAt: nil, answeredAt: nil, endedAt: nil, hangupCause: 16, caller: nil, connected: nil,
            pauses: [AMIFacts.Pause(startMs: 4000, endMs: 7000, by: "agent-1001", requestedAt: nil, endedBy: "agent-1001", zeros: false)],
            gaps: [AMIFacts.Gap(atMs: 2980, lostMs: 4000, why: "not_bridged")]
        ).json
        let changed = row
        try await h.catalog.pool.write { db in try changed.update(db) }
        try await ConsoleAccounts(catalog: h.catalog, cost: 4).add(name: "co", role: "compliance", company: nil, password: Self.password)
        try await h.test { client in
            let form = try await client.execute(uri: "/login", method: .get)
            let loginCSRF = try #require(Self.cookie(form, "callrec_login"))
            let body = "username=co&password=\(Self.password.replacingOccurrences(of: " ", with: "+"))&csrf=\(loginCSRF)"
            let headers: HTTPFields = [.origin: "http://localhost", .contentType: "application/x-www-form-urlencoded", .cookie: "callrec_login=\(loginCSRF)"]
            let ok = try await client.execute(uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: body))
            let session = try #require(Self.cookie(ok, "callrec_session"))
            let page = try await client.execute(uri: "/r/1732467600.1", method: .get, headers: [.cookie: "callrec_session=\(session)", .acceptLanguage: "en"])
            #expect(page.status == .ok)
            #expect(page.text.contains("data-pauses=\"[[4000,7000]]\""))
            #expect(page.text.contains("<dd data-testid=\"pause-row\">0:04–0:07 — paused by agent-1001 <strong>(no silence in the audio there: check it)</strong></dd>"), "\(page.text)")
            #expect(page.text.contains("<dd data-testid=\"gap-row\">at 0:02, 4.0 s (not bridged: MixMonitor&#39;s b option drops it)</dd>"))
        }
    }

    /// Sign-in over HTTP: the cookie's attributes, CSRF and Origin on every state change, logout.
    @Test func signInCSRFAndLogoutOverHTTP() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "acme")
        try await ConsoleAccounts(catalog: h.catalog, cost: 4).add(name: "co", role: "compliance", company: nil, password: Self.password)
        try await h.test { client in
            let origin: HTTPFields = [.origin: "http://localhost", .contentType: "application/x-www-form-urlencoded"]
            // Signed out, a page sends you to sign in.
            let home = try await client.execute(uri: "/", method: .get)
            #expect(home.status == .found && home.headers[.location] == "/login?next=/")

            let form = try await client.execute(uri: "/login", method: .get)
            #expect(form.status == .ok && form.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
            let loginCSRF = try #require(Self.cookie(form, "callrec_login"))

            // Without the form's token, or from another origin: refused.
            let body = "username=co&password=\(Self.password.replacingOccurrences(of: " ", with: "+"))&next=/r/1732467600.1"
            var noToken = origin
            noToken[.cookie] = "callrec_login=\(loginCSRF)"
            #expect(try await client.execute(uri: "/login", method: .post, headers: noToken, body: ByteBuffer(string: body)).status == .forbidden)
            var evil = noToken
            evil[.origin] = "http://evil.example"
            #expect(try await client.execute(uri: "/login", method: .post, headers: evil, body: ByteBuffer(string: body + "&csrf=\(loginCSRF)")).status == .forbidden)

            let wrong = try await client.execute(
                uri: "/login", method: .post, headers: noToken, body: ByteBuffer(string: "username=co&password=nope&csrf=\(loginCSRF)"))
            #expect(wrong.status == .unauthorized && wrong.text.contains("data-testid=\"login-error\" class=\"error\" role=\"alert\">"))

            let ok = try await client.execute(uri: "/login", method: .post, headers: noToken, body: ByteBuffer(string: body + "&csrf=\(loginCSRF)"))
            #expect(ok.status == .seeOther && ok.headers[.location] == "/r/1732467600.1")
            let setCookie = ok.headers[values: .setCookie].first { $0.hasPrefix("callrec_session=") } ?? ""
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/") && !setCookie.contains("Secure"))
            let session = try #require(Self.cookie(ok, "callrec_session"))
            let cookie: HTTPFields = [.cookie: "callrec_session=\(session)"]

            let page = try await client.execute(uri: "/r/1732467600.1", method: .get, headers: cookie)
            #expect(page.status == .ok && page.text.contains("data-testid=\"player-audio\""))
            let csrf = try #require(Self.attribute(page.text, "data-csrf"))

            // A hold needs the token and this origin.
            var post = origin
            post[.cookie] = "callrec_session=\(session)"
            #expect(try await client.execute(uri: "/r/1732467600.1/hold", method: .post, headers: post, body: ByteBuffer(string: "reason=x")).status == .forbidden)
            var foreign = post
            foreign[.origin] = "http://evil.example"
            #expect(
                try await client.execute(uri: "/r/1732467600.1/hold", method: .post, headers: foreign, body: ByteBuffer(string: "reason=x&csrf=\(csrf)")).status
                    == .forbidden)
            #expect(try h.catalog.recording("1732467600.1")?.legalHold == false)
            let held = try await client.execute(uri: "/r/1732467600.1/hold", method: .post, headers: post, body: ByteBuffer(string: "reason=court&csrf=\(csrf)"))
            #expect(held.status == .seeOther)
            #expect(try h.catalog.recording("1732467600.1")?.legalHold == true)

            // The console's JSON routes are the API's, with the session's principal.
            let list = try await client.execute(uri: "/console/api/recordings?from=2024-11-24&to=2024-11-25", method: .get, headers: cookie)
            #expect(list.status == .ok && (list.json["items"] as? [Any])?.count == 1)
            var json = cookie
            json[.contentType] = "application/json"
            json[.origin] = "http://localhost"
            #expect(
                try await client.execute(uri: "/console/api/exports", method: .post, headers: json, body: ByteBuffer(string: #"{"from":"2024-11-24","to":"2024-11-25"}"#))
                    .status == .forbidden)

            #expect(try await client.execute(uri: "/logout", method: .post, headers: post, body: ByteBuffer(string: "csrf=\(csrf)")).status == .seeOther)
            #expect(try await client.execute(uri: "/console/api/recordings", method: .get, headers: cookie).status == .unauthorized)
        }
    }

    @Test func ssoTokensWorkOnceAndLiveShort() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "acme")
        try h.add("speech.wav", as: "1732467600.2", company: "beta")
        func sso(_ jti: String?, ttl: TimeInterval = 60, company: String = "acme") async throws -> String {
            var c = SSOClaims(
                sub: .init(value: "crm-7"), exp: .init(value: Date() + ttl), role: .viewer, company: company, jti: .init(value: jti ?? ""))
            if jti == nil { c.jti = .init(value: "") }
            return try await h.tokens.keys.sign(c)
        }
        let once = try await sso("jti-1")
        let far = try await sso("jti-2", ttl: 600)
        let noJTI = try await sso(nil)
        try await h.test { client in
            let first = try await client.execute(uri: "/console/sso?token=\(once)&next=/r/1732467600.1", method: .get)
            #expect(first.status == .ok && first.text.contains("url=/r/1732467600.1"))
            let session = try #require(Self.cookie(first, "callrec_session"))
            let cookie: HTTPFields = [.cookie: "callrec_session=\(session)"]
            #expect(try await client.execute(uri: "/r/1732467600.1", method: .get, headers: cookie).status == .ok)
            // The CRM's company scope holds: beta's recording is not there.
            #expect(try await client.execute(uri: "/r/1732467600.2", method: .get, headers: cookie).status == .notFound)
            #expect(try await client.execute(uri: "/console/sso?token=\(once)", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/console/sso?token=\(far)", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/console/sso?token=\(noJTI)", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/console/sso?token=garbage", method: .get).status == .unauthorized)
        }
    }

    static func cookie(_ r: TestResponse, _ name: String) -> String? {
        for v in r.headers[values: .setCookie] where v.hasPrefix(name + "=") {
            return String(v.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }

    static func attribute(_ html: String, _ name: String) -> String? {
        guard let r = html.range(of: name + "=\"") else { return nil }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }
}
