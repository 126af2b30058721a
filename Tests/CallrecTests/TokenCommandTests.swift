import CallrecCatalog
import CallrecTestSupport
import Foundation
import Testing

/// `callrec token` issues tokens with a `jti` and an `iat`; `callrec token revoke` cuts them off
/// in a running `callrec serve` (another process) through the shared catalog.
@Suite(.offThePool)
struct TokenCommandTests {
    static func payload(_ token: String) throws -> [String: Any] {
        var b64 = String(token.split(separator: ".")[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        let json = try #require(Data(base64Encoded: b64))
        return try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
    }

    @Test func revokedByTheCLIInARunningServer() throws {
        let dir = TempDir()
        let data = dir.file("data")
        let spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        func token(_ args: [String]) throws -> String {
            let r = try callrec(["token"] + args + ["--data", data])
            #expect(r.status == 0, "\(r.err)")
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let viewer = try token(["--role", "viewer", "--company", "42", "--sub", "ana"])
        let claims = try Self.payload(viewer)
        let jti = try #require(claims["jti"] as? String)
        #expect(jti.count >= 20)
        let iat = try #require(claims["iat"] as? Double)
        #expect(abs(iat - Date().timeIntervalSince1970) < 60)
        let exp = try #require(claims["exp"] as? Double)
        let other = try token(["issue", "--role", "compliance", "--sub", "bob"])  // `issue` named, as the default is
        #expect(try Self.payload(other)["jti"] as? String != jti)

        let serve = try ServeProcess(data: data, spool: spool, log: dir.file("serve.log"))
        defer { serve.stop() }
        #expect(try serve.get("/recordings", token: viewer).status == 200)
        #expect(try serve.get("/recordings", token: viewer).status == 200)  // remembered now

        let revoke = try callrec(["token", "revoke", "--jti", jti, "--exp", String(Int(exp)), "--data", data])
        #expect(revoke.status == 0, "\(revoke.err)")
        #expect(revoke.out.hasPrefix("revoked token \(jti) until "))
        var answer = try serve.get("/recordings", token: viewer)
        #expect(try eventually(10) {
            answer = try serve.get("/recordings", token: viewer)
            return answer.status == 401
        })
        #expect(answer.text.contains(#""code":"revoked""#), "\(answer.text)")
        #expect(try serve.get("/recordings", token: other).status == 200)

        // Every token of bob's issued until now; one issued in a later second works.
        #expect(try callrec(["token", "revoke", "--subject", "bob", "--data", data]).status == 0)
        #expect(try eventually(10) { try serve.get("/recordings", token: other).status == 401 })
        Thread.sleep(forTimeInterval: 1.1)
        let fresh = try token(["--role", "compliance", "--sub", "bob"])
        #expect(try serve.get("/recordings", token: fresh).status == 200)

        let list = try callrec(["token", "revocations", "--json", "--data", data])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["value"] as? String } == [jti, "bob"])
        #expect(rows.first?["exp"] as? Int == Int(exp))

        for bad in [["token", "revoke"], ["token", "revoke", "--jti", "a", "--subject", "b"], ["token", "revoke", "--subject", "b", "--exp", "5"]] {
            let r = try callrec(bad + ["--data", data])
            #expect(r.status != 0, "\(bad)")
            #expect(r.err.contains("--jti") || r.err.contains("--exp"), "\(r.err)")
        }
        let audited = try Catalog(data: DataDirectory(data)).auditLog(from: nil, to: nil).filter { $0.action == "token.revoke" }
        #expect(audited.map(\.detail) == ["jti=\(jti)", "sub=bob"])
        #expect(audited.allSatisfy { $0.role == "cli" })
    }
}
