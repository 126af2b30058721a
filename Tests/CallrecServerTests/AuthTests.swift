import CallrecCatalog
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// The auth matrix: route × role × company × signed/unsigned/expired/tampered.
@Suite(.offThePool)
struct AuthTests {
    /// The fast path reads `Authorization` as bytes (`plainBearer`): it finds exactly the token the
    /// router's `bearer` finds, or nothing (the request then goes to the router).
    @Test func theFastPathReadsTheBearerTokenAsTheRouterDoes() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
        let headers = [
            "Bearer \(token)", "bearer \(token)", "BEARER \(token)", "bEaReR \(token)", "Bearer  \(token)", " Bearer \(token)",
            "Bearer", "Bearer ", "Bearerx \(token)", "Basic \(token)", "Bearer \(token) extra", "Bearer\t\(token)", "Bearer é\(token)",
            "Bearer " + String(repeating: "a", count: 8191), "Bearer " + String(repeating: "a", count: 8192), "", "B", "Bea@er \(token)",
        ]
        var found = 0
        for h in headers {
            let fast = Authenticator.plainBearer(h)
            #expect(fast == nil || fast == Authenticator.bearer(h), "\(h.prefix(30))")
            if fast != nil { found += 1 }
        }
        #expect(Authenticator.plainBearer("bEaReR \(token)") == token)
        #expect(found == 7)
    }

    /// A verified URL is remembered, but never past its expiry, and a tampered one is never taken.
    @Test func rememberedSignaturesStillExpire() {
        let signer = URLSigner(secret: "url-secret-for-tests")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let path = "/recordings/1732467600.42.opus"
        let sig = signer.signature(path: path, expires: 1_800_000_060)
        #expect(signer.verify(path: path, exp: "1800000060", sig: sig, now: now))
        #expect(signer.verify(path: path, exp: "1800000060", sig: sig, now: now))  // from the cache
        #expect(!signer.verify(path: path, exp: "1800000060", sig: sig, now: now.addingTimeInterval(60)))
        #expect(!signer.verify(path: path + "x", exp: "1800000060", sig: sig, now: now))
        #expect(!signer.verify(path: path, exp: "1800000061", sig: sig, now: now))
        #expect(!signer.verify(path: path, exp: "1800000060", sig: String(sig.dropLast()) + (sig.last == "A" ? "B" : "A"), now: now))
    }

    @Test func matrix() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "42")
        try h.add("u8.wav", as: "1732467600.2", company: "7")
        let admin = try await h.token(.admin)
        let compliance = try await h.token(.compliance)
        let compliance7 = try await h.token(.compliance, company: "7")
        let viewer42 = try await h.token(.viewer, company: "42")
        let expired = try await h.token(.admin, expires: -10)
        let forged = try await TokenAuthority(secret: String(repeating: "x", count: 40)).issue(
            Claims(subject: "mallory", expires: Date().addingTimeInterval(600), role: .admin, company: nil))
        try await h.test { client in
            func status(_ uri: String, _ method: HTTPRequest.Method = .get, _ token: String? = nil, body: String? = nil) async throws -> TestResponse {
                var headers: HTTPFields = token.map { h.bearer($0) } ?? [:]
                if body != nil { headers[.contentType] = "application/json" }
                return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
            }
            let reads = ["/recordings/1732467600.1.opus", "/recordings/1732467600.1.wav", "/recordings/1732467600.1", "/recordings/1732467600.1/waveform.json", "/recordings"]
            for uri in reads {
                // No credentials, a bad token, an expired one: 401 with the contract's JSON.
                for token in [nil, "not-a-jwt", expired, forged] {
                    let r = try await status(uri, .get, token)
                    #expect(r.status == .unauthorized, "\(uri) \(token?.prefix(8) ?? "none")")
                    #expect(r.errorCode != nil)
                }
                #expect(try await status(uri, .get, admin).status == .ok, "\(uri) admin")
                #expect(try await status(uri, .get, compliance).status == .ok, "\(uri) compliance")
                #expect(try await status(uri, .get, viewer42).status == .ok, "\(uri) viewer of 42")
            }
            // Another company's recording answers exactly like a missing one.
            for (uri, missing) in [("/recordings/1732467600.2", "/recordings/1732467600.99"), ("/recordings/1732467600.2.opus", "/recordings/1732467600.99.opus"),
                                   ("/recordings/1732467600.2/waveform.json", "/recordings/1732467600.99/waveform.json")] {
                for token in [viewer42, try await h.token(.compliance, company: "42")] {
                    let other = try await status(uri, .get, token)
                    let none = try await status(missing, .get, token)
                    #expect(other.status == .notFound && none.status == .notFound)
                    #expect(other.errorCode == none.errorCode)
                    #expect(other.text.replacingOccurrences(of: "1732467600.2", with: "X") == none.text.replacingOccurrences(of: "1732467600.99", with: "X"))
                }
            }
            let page = try await status("/recordings", .get, viewer42)
            #expect((page.json["items"] as? [[String: Any]])?.map { $0["uniqueid"] as? String } == ["1732467600.1"])
            #expect((try await status("/recordings?company=7", .get, viewer42).json["items"] as? [Any])?.isEmpty == true)
            #expect((try await status("/recordings", .get, admin).json["items"] as? [Any])?.count == 2)

            // Signed URLs: valid for that path only, until exp; not for JSON routes, not tampered.
            let path = "/recordings/1732467600.1.opus"
            #expect(try await status(h.signed(path)).status == .ok)
            #expect(try await status(h.signed("/recordings/1732467600.1/waveform.json")).status == .ok)
            #expect(try await status(h.signed(path, ttl: -1)).status == .unauthorized)
            let good = h.signed(path)
            #expect(try await status(good.replacingOccurrences(of: "1732467600.1.opus", with: "1732467600.2.opus")).status == .unauthorized)
            let tampered = good.dropLast() + (good.last == "A" ? "B" : "A")
            #expect(try await status(String(tampered)).status == .unauthorized)
            let exp = good.split(separator: "exp=")[1].prefix(10)
            #expect(try await status(good.replacingOccurrences(of: "exp=\(exp)", with: "exp=\(Int(exp)! + 100)")).status == .unauthorized)
            #expect(try await status(h.signed("/recordings/1732467600.1")).status == .unauthorized)
            #expect(try await status(h.signed("/recordings/1732467600.1.wav")).status == .ok)
            // A signed URL of a recording of another company still plays: the signer vouches for it.
            #expect(try await status(h.signed("/recordings/1732467600.2.opus")).status == .ok)

            // Writes: metadata (admin), hold (compliance, admin), delete (admin).
            let meta = #"{"company":"42","agent":"1001","lead_number":"5511999990000"}"#
            #expect(try await status("/recordings/1732467600.1/metadata", .put, viewer42, body: meta).status == .forbidden)
            #expect(try await status("/recordings/1732467600.1/metadata", .put, compliance, body: meta).status == .forbidden)
            #expect(try await status("/recordings/1732467600.1/metadata", .put, admin, body: meta).status == .ok)
            #expect(try await status("/recordings/1732467700.5/metadata", .put, admin, body: meta).status == .ok)  // before the audio
            #expect(try h.catalog.metadata(for: "1732467700.5")?.leadNumber == "5511999990000")
            #expect(try h.catalog.recording("1732467600.1")?.agent == "1001")

            let hold = #"{"reason":"court order 123/2026"}"#
            #expect(try await status("/recordings/1732467600.1/hold", .put, viewer42, body: hold).status == .forbidden)
            #expect(try await status("/recordings/1732467600.1/hold", .put, compliance7, body: hold).status == .notFound)
            #expect(try await status("/recordings/1732467600.1/hold", .put, compliance, body: "{}").status == .badRequest)
            let held = try await status("/recordings/1732467600.1/hold", .put, compliance, body: hold)
            #expect(held.status == .ok && held.json["legal_hold"] as? Bool == true)
            let conflict = try await status("/recordings/1732467600.1", .delete, admin)
            #expect(conflict.status == .conflict && conflict.errorCode == "legal_hold")
            #expect(try await status("/recordings/1732467600.1", .delete, compliance).status == .forbidden)
            #expect(try await status("/recordings/1732467600.1/hold", .delete, compliance).json["legal_hold"] as? Bool == false)
            let audio = h.data.absolute(try #require(try h.catalog.recording("1732467600.1")).opusPath)
            #expect(try await status("/recordings/1732467600.1", .delete, admin).status == .noContent)
            #expect(!FileManager.default.fileExists(atPath: audio))
            #expect(try await status("/recordings/1732467600.1", .get, admin).status == .notFound)
            #expect(try await status("/recordings/1732467600.1", .delete, admin).status == .notFound)
            #expect(try h.catalog.tombstone("1732467600.1") != nil)
        }
        // Every access and change is in the audit log, with who and from where.
        let log = try h.catalog.auditLog(from: nil, to: nil)
        let actions = Set(log.map(\.action))
        #expect(actions.isSuperset(of: ["audio.opus", "audio.wav", "metadata.set", "hold", "release", "delete"]))
        #expect(log.first { $0.action == "hold" }?.detail == "court order 123/2026")
        #expect(log.first { $0.action == "delete" }?.actor == "tester")
        #expect(log.allSatisfy { $0.client == "127.0.0.1" })
        #expect(log.contains { $0.actor == "signed-url" })
    }
}

/// Hostile requests: the right 4xx with the contract's JSON, never a 5xx, never a byte from
/// outside the data directory.
struct HostileTests {
    @Test func hostileRequests() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1")
        let admin = try await h.token(.admin)
        try await h.test { client in
            let uris = [
                "/recordings/..%2F..%2F..%2Fetc%2Fpasswd.opus", "/recordings/%2e%2e%2fcatalog.sqlite", "/recordings/..",
                "/recordings/.hidden.opus", "/recordings/1732467600.1%00.opus", "/recordings/" + String(repeating: "9", count: 5000) + ".wav",
                "/recordings/a%2Fb/waveform.json", "/recordings/%ff%fe.opus", "/recordings?limit=0", "/recordings?limit=abc",
                "/recordings?from=yesterday", "/recordings?cursor=%%%", "/recordings/1732467600.1.opus/../../../catalog.sqlite",
                "/../../etc/passwd", "/recordings/1732467600.1.mp3",
            ]
            for uri in uris {
                let r = try await client.execute(uri: uri, method: .get, headers: h.bearer(admin))
                #expect((400..<500).contains(Int(r.status.code)), "\(uri) → \(r.status)")
                #expect(!r.text.contains("root:") && !r.text.contains("SQLite format"), "\(uri)")
                if r.status != .notFound || !r.text.isEmpty { #expect(r.errorCode != nil, "\(uri): \(r.text.prefix(100))") }
            }
            for body in ["{", "[]", "null", "{\"company\": 5}", String(repeating: "x", count: 100_000)] {
                let r = try await client.execute(uri: "/recordings/1732467600.1/metadata", method: .put, headers: h.bearer(admin), body: ByteBuffer(string: body))
                #expect([400, 413].contains(Int(r.status.code)), "\(body.prefix(20)) → \(r.status)")
                #expect(r.errorCode != nil)
            }
            for method in [HTTPRequest.Method.patch, .post, .options] {
                let r = try await client.execute(uri: "/recordings/1732467600.1", method: method, headers: h.bearer(admin))
                #expect((400..<500).contains(Int(r.status.code)), "\(method) → \(r.status)")
                #expect(r.errorCode != nil)
            }
            let huge = try await client.execute(uri: "/recordings/1732467600.1.opus", method: .get, headers: h.bearer(admin) + [.range: "bytes=" + String(repeating: "0-1,", count: 500) + "0-1"])
            #expect(huge.status == .ok)
        }
    }
}
