import CallrecTestSupport
import Foundation
import Testing
import Yams

/// There is no Docker engine here: the compose file is parsed and checked instead.
@Suite(.offThePool)
struct DeployTests {
    @Test func composeSharesTheSpoolAndChecksHealth() throws {
        let text = try String(contentsOfFile: Paths.root + "/docker-compose.yml", encoding: .utf8)
        let doc = try #require(try Yams.load(yaml: text) as? [String: Any])
        let services = try #require(doc["services"] as? [String: Any])
        let asterisk = try #require(services["asterisk"] as? [String: Any])
        let callrec = try #require(services["callrec"] as? [String: Any])
        #expect((asterisk["image"] as? String)?.contains("asterisk") == true)
        #expect(callrec["image"] as? String == "callrec:latest" && callrec["build"] as? String == ".")
        func volumes(_ s: [String: Any]) -> [String: String] {
            Dictionary(((s["volumes"] as? [String]) ?? []).compactMap { v in
                let p = v.split(separator: ":").map(String.init)
                return p.count >= 2 ? (p[1], p[0]) : nil
            }, uniquingKeysWith: { a, _ in a })
        }
        // The same named volume at Asterisk's monitor folder and at callrec's spool.
        let spool = try #require(volumes(asterisk)["/var/spool/asterisk/monitor"])
        #expect(volumes(callrec)["/var/spool/asterisk/monitor"] == spool)
        #expect((callrec["environment"] as? [String: Any])?["CALLREC_SPOOL"] as? String == "/var/spool/asterisk/monitor")
        // callrec's data on its own volume; both declared.
        let data = try #require(volumes(callrec)["/var/lib/callrec"])
        #expect(data != spool)
        #expect(Set(((doc["volumes"] as? [String: Any]) ?? [:]).keys) == [spool, data])
        // Asterisk runs with callrec's uid/gid (its entrypoint chowns the spool to its user), so
        // callrec can remove what it has ingested; callrec runs as that same uid/gid.
        let asteriskEnv = try #require(asterisk["environment"] as? [String: Any])
        #expect(asteriskEnv["ASTERISK_UID"] as? String == "10001" && asteriskEnv["ASTERISK_GID"] as? String == "10001")
        #expect(callrec["user"] as? String == "10001:10001")
        let dockerfile = try String(contentsOfFile: Paths.root + "/Dockerfile", encoding: .utf8)
        #expect(dockerfile.contains("--uid 10001 --gid 10001"))
        let health = try #require(callrec["healthcheck"] as? [String: Any])
        #expect((health["test"] as? [String])?.contains { $0.contains("/healthz") } == true)
        // Every setting in .env.example is one callrec reads (README lists them).
        let env = try String(contentsOfFile: Paths.root + "/.env.example", encoding: .utf8)
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        for line in env.split(separator: "\n") where !line.hasPrefix("#") {
            let key = String(line.split(separator: "=")[0])
            #expect(readme.contains(key), "\(key) is not documented")
        }
        // The dialplan writes what CALLREC_SPOOL_PATTERN reads.
        let dialplan = try String(contentsOfFile: Paths.root + "/deploy/asterisk/extensions.conf", encoding: .utf8)
        #expect(dialplan.contains("MixMonitor(${COMPANY_ID}/${AGENT}-${LEAD_NUMBER}-${UNIQUEID}.wav,b)"))
        #expect(env.contains("CALLREC_SPOOL_PATTERN={company}/{agent}-{lead_number}-{uniqueid}.{ext}"))
    }

    /// The unit keeps what callrec creates away from other local users.
    @Test func systemdUnitSetsAPrivateUMask() throws {
        let unit = try String(contentsOfFile: Paths.root + "/deploy/systemd/callrec.service", encoding: .utf8)
        #expect(unit.split(separator: "\n").contains("UMask=0027"))
    }
}
