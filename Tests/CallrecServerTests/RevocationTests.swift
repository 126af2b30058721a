import CallrecCatalog
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CallrecServer

/// Bearer-token revocation: by `jti`, or every token of a subject issued until a moment; through
/// `POST /tokens/revocations` (in force at once, remembered tokens included, on the router and on
/// both fast paths) or by another process writing the catalog (heard by the watcher's poll).
/// Real server on loopback, real catalog file.
@Suite(.offThePool)
struct RevocationTests {
    static let id = "1732467600.42"
    static let path = "/recordings/1732467600.42.opus"

    static func issue(_ h: Harness, _ role: Role = .viewer, company: String? = "42", sub: String = "ana", jti: String? = Claims.newID(), iat: Date? = Date()) async throws -> String {
        try await h.tokens.issue(Claims(subject: sub, expires: Date() + 3600, role: role, company: company, id: jti, issuedAt: iat))
    }

    static func revoke(_ client: some TestClientProtocol, _ h: Harness, _ json: String, as token: String) async throws -> TestResponse {
        try await client.execute(uri: "/tokens/revocations", method: .post, headers: h.bearer(token) + [.contentType: "application/json"], body: ByteBuffer(string: json))
    }

    static func wire(_ port: Int, _ token: String) throws -> String {
        try HTTPWire(port: port).exchange("GET \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nRange: bytes=0-9\r\n\r\n", isHead: false)
    }

    /// The defect: a token the fast path remembers was served until its `exp` whatever happened.
    /// Now a revocation through the API drops it at once: the next request, over the raw path's
    /// socket or the HTTP one, goes to the router, which refuses it (401 `revoked`).
    @Test(arguments: [FastPathMode.raw, .http])
    func aRememberedTokenIsRefusedRightAfterAnAPIRevocation(mode: FastPathMode) async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        FastPathMode.set(mode, data: h.data.root)
        defer { FastPathMode.set(nil, data: h.data.root) }
        let jti = Claims.newID()
        let viewer = try await Self.issue(h, jti: jti)
        let other = try await Self.issue(h)  // the same subject, another token
        let legacy = try await h.token(.viewer, company: "42")  // no jti, no iat: as tokens were before
        let admin = try await h.token(.admin)
        try await h.test { client in
            let port = try #require(client.port)
            let remembered = try await OpenAudioCacheTests.fast(client, h, Self.path, headers: h.bearer(viewer) + [.range: "bytes=0-9"])
            #expect(remembered.status == .partialContent)
            if mode == .raw {
                let before = AudioFastPath.rawAnswers(data: h.data.root)
                #expect(try Self.wire(port, viewer).hasPrefix("HTTP/1.1 206"))
                #expect(AudioFastPath.rawAnswers(data: h.data.root) == before + 1, "the raw path did not answer the remembered token")
            }
            let revoked = try await Self.revoke(client, h, #"{"jti":"\#(jti)"}"#, as: admin)
            #expect(revoked.status == .created)
            #expect(try revoked.jsonObject()["jti"] as? String == jti)

            let before = AudioFastPath.answers(data: h.data.root)
            let refused = try await client.execute(uri: Self.path, method: .get, headers: h.bearer(viewer) + [.range: "bytes=0-9"])
            #expect(refused.status == .unauthorized)
            #expect(refused.errorCode == "revoked")
            let raw = try Self.wire(port, viewer)
            #expect(raw.hasPrefix("HTTP/1.1 401"), "\(raw.prefix(200))")
            #expect(raw.contains(#""code":"revoked""#))
            let json = try await client.execute(uri: "/recordings/\(Self.id)", method: .get, headers: h.bearer(viewer))
            #expect(json.status == .unauthorized && json.errorCode == "revoked")
            #expect(AudioFastPath.answers(data: h.data.root) == before, "a revoked token was answered by the fast path")
            // Only that token: another of the same subject, and one with no jti at all, still play.
            #expect(try await client.execute(uri: Self.path, method: .get, headers: h.bearer(other) + [.range: "bytes=0-9"]).status == .partialContent)
            #expect(try await client.execute(uri: Self.path, method: .get, headers: h.bearer(legacy) + [.range: "bytes=0-9"]).status == .partialContent)
            let legacyFast = try await OpenAudioCacheTests.fast(client, h, Self.path, headers: h.bearer(legacy) + [.range: "bytes=0-9"])
            #expect(legacyFast.status == .partialContent)
        }
    }

    /// `callrec token revoke` writes the catalog from another process: the server hears of it by
    /// its poll and refuses the token (remembered before) within a bounded wait.
    @Test func aRevocationWrittenByAnotherCatalogIsHonoured() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let jti = Claims.newID()
        let viewer = try await Self.issue(h, jti: jti)
        let elsewhere = try Catalog(data: h.data)  // another connection pool on the same file, as the CLI opens it
        try await h.test { client in
            _ = try await OpenAudioCacheTests.fast(client, h, Self.path, headers: h.bearer(viewer) + [.range: "bytes=0-9"])
            try await elsewhere.revoke(
                TokenRevocation(jti: jti, exp: nil, actor: "cli:test", company: nil, now: Date()),
                audit: AuditEntry(at: Date(), actor: "cli:test", role: "cli", company: nil, action: "token.revoke", uniqueid: nil, detail: "jti=\(jti)"))
            let deadline = Date() + 10
            var last: TestResponse?
            while Date() < deadline {
                last = try await client.execute(uri: Self.path, method: .get, headers: h.bearer(viewer) + [.range: "bytes=0-9"])
                if last?.status == .unauthorized { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(last?.status == .unauthorized)
            #expect(last?.errorCode == "revoked")
        }
    }

    /// "Sign this user out everywhere": every token of the subject issued until the revocation, and
    /// every one without `iat`, is refused; one issued after it works; other subjects are untouched.
    @Test func aSubjectRevocationRefusesOlderTokensOnly() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let old = try await Self.issue(h, iat: Date() - 60)
        let noIAT = try await Self.issue(h, jti: nil, iat: nil)
        let bob = try await Self.issue(h, sub: "bob", iat: Date() - 60)
        let admin = try await h.token(.admin)
        try await h.test { client in
            for t in [old, noIAT, bob] {
                _ = try await OpenAudioCacheTests.fast(client, h, Self.path, headers: h.bearer(t) + [.range: "bytes=0-9"])
            }
            #expect(try await Self.revoke(client, h, #"{"sub":"ana"}"#, as: admin).status == .created)
            for t in [old, noIAT] {
                let r = try await client.execute(uri: Self.path, method: .get, headers: h.bearer(t) + [.range: "bytes=0-9"])
                #expect(r.status == .unauthorized && r.errorCode == "revoked")
            }
            #expect(try await client.execute(uri: Self.path, method: .get, headers: h.bearer(bob) + [.range: "bytes=0-9"]).status == .partialContent)
            // `iat` has a resolution of a second; the revocation's own second counts as before it.
            let later = try await Self.issue(h, iat: Date() + 2)
            #expect(try await client.execute(uri: Self.path, method: .get, headers: h.bearer(later) + [.range: "bytes=0-9"]).status == .partialContent)
            let list = try await client.execute(uri: "/tokens/revocations", method: .get, headers: h.bearer(admin))
            let items = try #require(try list.jsonObject()["items"] as? [[String: Any]])
            #expect(items.count == 1)
            #expect(items.first?["sub"] as? String == "ana")
            #expect(items.first?["jti"] is NSNull)
            #expect(items.first?["kept_until"] is NSNull)
        }
    }

    /// Admin only; a subject only by an unscoped admin; a scoped admin lists its company's; bad
    /// bodies are 400s that say why. Every revocation is audited.
    @Test func rolesBodiesAndAudit() async throws {
        let h = try await Harness()
        let admin = try await h.token(.admin)
        let scopedAdmin = try await h.token(.admin, company: "42")
        let viewer = try await h.token(.viewer, company: "42")
        let compliance = try await h.token(.compliance)
        let recorder = try await h.token(.recorder, company: "42")
        try await h.test { client in
            for t in [viewer, compliance, recorder] {
                #expect(try await Self.revoke(client, h, #"{"jti":"x"}"#, as: t).status == .forbidden)
                #expect(try await client.execute(uri: "/tokens/revocations", method: .get, headers: h.bearer(t)).status == .forbidden)
            }
            #expect(try await client.execute(uri: "/tokens/revocations", method: .get).status == .unauthorized)
            let bySubject = try await Self.revoke(client, h, #"{"sub":"ana"}"#, as: scopedAdmin)
            #expect(bySubject.status == .forbidden)
            let byID = try await Self.revoke(client, h, #"{"jti":"leaked-1","exp":4102444800}"#, as: scopedAdmin)
            #expect(byID.status == .created)
            #expect(try byID.jsonObject()["kept_until"] as? String == "2100-01-01T00:00:00Z")
            #expect(try await Self.revoke(client, h, #"{"jti":"other-2"}"#, as: admin).status == .created)
            for (body, code) in [
                (#"{"jti":"a","reason":"x"}"#, "unknown_field"), (#"{"jti":"a","sub":"b"}"#, "invalid_json"), ("{}", "invalid_json"),
                (#"{"sub":"b","exp":4102444800}"#, "invalid_exp"), (#"{"jti":""}"#, "invalid_jti"), (#"{"jti":5}"#, "invalid_json"), ("[", "invalid_json"),
                (#"{"jti":null,"sub":"b"}"#, "invalid_json"), (#"{"sub":"a\u0007"}"#, "invalid_sub"), (#"{"jti":"a","exp":0}"#, "invalid_exp"),
            ] {
                let r = try await Self.revoke(client, h, body, as: admin)
                #expect(r.status == .badRequest, "\(body)")
                #expect(r.errorCode == code, "\(body): \(r.text)")
            }
            let scoped = try #require(try await client.execute(uri: "/tokens/revocations", method: .get, headers: h.bearer(scopedAdmin)).jsonObject()["items"] as? [[String: Any]])
            #expect(scoped.map { $0["jti"] as? String } == ["leaked-1"])
            let all = try #require(try await client.execute(uri: "/tokens/revocations", method: .get, headers: h.bearer(admin)).jsonObject()["items"] as? [[String: Any]])
            #expect(Set(all.compactMap { $0["jti"] as? String }) == ["leaked-1", "other-2"])
        }
        let audited = try h.catalog.auditLog(from: nil, to: nil).filter { $0.action == "token.revoke" }
        #expect(audited.map(\.detail) == ["jti=leaked-1", "jti=other-2"])
        #expect(audited.first?.role == "admin" && audited.first?.company == "42" && audited.first?.client == "127.0.0.1" && audited.first?.actor == "tester")
    }

    /// An open event stream of a token revoked since ends at its next heartbeat (it would
    /// otherwise run until the token's `exp`: 30 s here, the bound should this fail).
    @Test func anOpenEventStreamEndsWhenItsTokenIsRevoked() async throws {
        let h = try await Harness()
        let hub = EventHub(changes: h.catalog.changes, live: LiveCalls())
        let jti = Claims.newID()
        let viewer = try await h.tokens.issue(Claims(subject: "ana", expires: Date() + 30, role: .viewer, company: "42", id: jti, issuedAt: Date()))
        let admin = try await h.token(.admin)
        try await h.test(limits: ConnectionLimits(maxConnections: 64), freeBytes: FileSystemSpace.free, eventHeartbeat: .milliseconds(200), eventHub: hub) { client in
            var headers = h.bearer(viewer)
            headers[.accept] = "text/event-stream"
            async let stream = client.execute(uri: "/events", method: .get, headers: headers)
            #expect(await LiveTests.eventually { hub.count == 1 })
            // On a connection of its own: the test client's is the stream's until it ends.
            let port = try #require(client.port)
            let revoked = try http("POST", "http://127.0.0.1:\(port)/tokens/revocations", token: admin, body: Data(#"{"jti":"\#(jti)"}"#.utf8))
            #expect(revoked.status == 201)
            #expect(await LiveTests.eventually(10) { hub.count == 0 }, "the stream of a revoked token is still open")
            let r = try await stream
            #expect(r.status == .ok && r.text.hasPrefix("retry: 3000\n\nevent: calls\n"))
        }
    }

    /// A subject's revocation ends the console sessions its CRM opened for it, and refuses its
    /// sign-in tokens issued until then (and those without `iat`).
    @Test func aSubjectRevocationEndsItsConsoleSessions() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "acme")
        @Sendable func sso(_ jti: String, iat: Date?) async throws -> String {
            try await h.tokens.keys.sign(
                SSOClaims(sub: .init(value: "crm-7"), exp: .init(value: Date() + 60), role: .viewer, company: "acme", jti: .init(value: jti), iat: iat.map { .init(value: $0) }))
        }
        let first = try await sso("s-1", iat: Date())
        let stale = try await sso("s-2", iat: Date() - 5)
        let noIAT = try await sso("s-3", iat: nil)
        let admin = try await h.token(.admin)
        try await h.test { client in
            let signedIn = try await client.execute(uri: "/console/sso?token=\(first)", method: .get)
            let cookie: HTTPFields = [.cookie: "callrec_session=\(try #require(ConsoleTests.cookie(signedIn, "callrec_session")))"]
            #expect(try await client.execute(uri: "/r/1732467600.1", method: .get, headers: cookie).status == .ok)
            #expect(try await Self.revoke(client, h, #"{"sub":"crm-7"}"#, as: admin).status == .created)
            #expect(try await client.execute(uri: "/r/1732467600.1", method: .get, headers: cookie).status != .ok)
            #expect(try await client.execute(uri: "/console/sso?token=\(stale)", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/console/sso?token=\(noIAT)", method: .get).status == .unauthorized)
            let fresh = try await sso("s-4", iat: Date() + 2)
            #expect(try await client.execute(uri: "/console/sso?token=\(fresh)", method: .get).status == .ok)
        }
    }
}

/// `VerifiedTokens` alone: revocations drop what they match, and a verification under way when a
/// revocation arrives can neither let a revoked token in nor put it back in the cache.
struct VerifiedTokensRevocationTests {
    static func claims(_ sub: String = "ana", jti: String? = nil, iat: Date? = nil) -> Claims {
        Claims(subject: sub, expires: Date() + 3600, role: .viewer, company: "42", id: jti, issuedAt: iat)
    }

    @Test func aVerificationInFlightCannotReinsertARevokedToken() {
        let cache = VerifiedTokens()
        let c = Self.claims(jti: "t-1")
        let generation = cache.generation  // read as the verification begins …
        cache.revoke(TokenRevocation(jti: "t-1", exp: nil, actor: "a", company: nil, now: Date()))  // … a revocation lands …
        #expect(!cache.admit("token-1", c, generation: generation))  // … and it is refused when it ends
        #expect(cache.claims("token-1", now: Date()) == nil)
        // Another token verified across that revocation is let in but not remembered (its
        // verification may have raced a revocation not yet seen); the next one is.
        let d = Self.claims(jti: "t-2")
        #expect(cache.admit("token-2", d, generation: generation))
        #expect(cache.claims("token-2", now: Date()) == nil)
        #expect(cache.admit("token-2", d, generation: cache.generation))
        #expect(cache.claims("token-2", now: Date()) == d)
    }

    @Test func aRevocationDropsTheRememberedTokensItMatches() {
        let cache = VerifiedTokens()
        let t = Date()
        let entries: [(String, Claims)] = [
            ("old", Self.claims(iat: t - 10)), ("none", Self.claims()), ("same-second", Self.claims(iat: t)), ("bob", Self.claims("bob", iat: t - 10)),
        ]
        for (token, c) in entries { #expect(cache.admit(token, c, generation: cache.generation)) }
        #expect(cache.count == 4)
        cache.revoke(TokenRevocation(subject: "ana", actor: "a", company: nil, now: t))
        #expect(cache.count == 1)
        #expect(cache.claims("bob", now: t) != nil)
        #expect(cache.admit("new", Self.claims(iat: t + 1.5), generation: cache.generation))
    }

    /// A load from the catalog that began before our own revocation's commit does not undo it.
    @Test func aStaleLoadKeepsARevocationMadeHere() {
        let cache = VerifiedTokens()
        var mine = TokenRevocation(jti: "t-9", exp: nil, actor: "a", company: nil, now: Date())
        mine.id = 7
        var older = TokenRevocation(jti: "t-1", exp: nil, actor: "a", company: nil, now: Date())
        older.id = 6
        cache.revoke(mine)
        cache.replaceRevocations([older])  // read before id 7 was committed
        #expect(cache.isRevoked(Self.claims(jti: "t-9")))
        #expect(cache.isRevoked(Self.claims(jti: "t-1")))
        cache.replaceRevocations([older, mine])
        cache.replaceRevocations([older])  // id 7 purged (spent) since: no longer held here either
        #expect(!cache.isRevoked(Self.claims(jti: "t-9")))
    }
}
