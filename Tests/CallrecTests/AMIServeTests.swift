import CallrecCatalog
import CallrecTestSupport
import Foundation
import Testing

/// `callrec serve` with CALLREC_AMI, end to end: the built binary logs in to `AMIPeer` (a replay
/// of Asterisk 22's events, not a live Asterisk), a recorder pauses a live call over HTTP, and
/// the AMI secret appears nowhere in the log.
@Suite(.offThePool) struct AMIServeTests {
    @Test func serveLogsInPausesAndNeverLogsTheSecret() async throws {
        let dir = TempDir()
        let peer = AMIPeer(secret: "s3cret pass")
        let port = try peer.start()
        defer { peer.stop() }
        let data = dir.file("data")
        let serve = try ServeProcess(
            data: data, spool: dir.file("spool"),
            env: ["CALLREC_AMI": "tcp://callrec:s3cret%20pass@127.0.0.1:\(port)", "CALLREC_LOG_LEVEL": "debug"], log: dir.file("serve.log"))
        #expect(await peer.waitForLogin())
        let events = try AMIPeer.load(Paths.root + "/Fixtures/audio/asterisk-22/1795635615.61.ami.log")
        let upTo = try #require(events.firstIndex { $0.name == "BridgeEnter" && $0["Uniqueid"] == "1795635615.61" })
        try await peer.replay(Array(events[...upTo]), speed: 100)
        let token = try callrec(["token", "--role", "recorder", "--company", "acme", "--data", data]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let admin = try callrec(["token", "--role", "admin", "--data", data]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        try http("PUT", serve.url + "/recordings/1795635615.61/metadata", token: admin, headers: ["Content-Type": "application/json"], body: Data(#"{"company":"acme"}"#.utf8))
        var answer = try http("POST", serve.url + "/recordings/1795635615.61/pause", token: token)
        // The events reach serve a moment after the replay sent them.
        _ = eventually(60) {
            if answer.status == 200 { return true }
            answer = (try? http("POST", serve.url + "/recordings/1795635615.61/pause", token: token)) ?? answer
            return answer.status == 200
        }
        #expect(answer.status == 200, "\(answer.text)")
        #expect(peer.actions.contains { $0["Action"] == "MixMonitorMute" && $0["State"] == "1" && $0["Channel"] == "Local/t6@caller-0000001e;2" })
        #expect(serve.stop(SIGTERM) == 0)
        let log = serve.text()
        #expect(log.contains("AMI connected"), "\(log)")
        #expect(log.contains("tcp://callrec:***@127.0.0.1:\(port)"))
        #expect(!log.contains("s3cret"))
    }

    /// `callrec show` prints the call's times, its pauses and who asked (facts as AMI left them).
    @Test func showPrintsThePauses() async throws {
        let dir = TempDir()
        let data = dir.file("data")
        let id = "1795635615.61"
        let catalog = try Catalog(data: DataDirectory(data))
        var call = CallRow(uniqueid: id, channel: "Local/t6@caller-0000001e;2")
        call.monitorStartedAt = 1795635615.880350
        call.answeredAt = 1795635615.883933
        call.endedAt = 1795635627.879820
        call.hangupCause = 16
        call.bridgeSpans = [(1795635615.883933, 1795635627.878676)]
        try await catalog.saveCall(call)
        _ = try await catalog.confirmPause(id, by: "agent-1001", requestedAt: 1795635619.880, confirmedAt: 1795635619.885)
        try await catalog.noteMute(id, on: true, at: 1795635619.884511)
        try await catalog.endPause(id, by: "agent-1001", at: 1795635622.885, source: "callrec")
        try await catalog.noteMute(id, on: false, at: 1795635622.884472)
        let wav = try placeFixture(Paths.root + "/Fixtures/audio/asterisk-22/\(id).wav", at: dir.file("\(id).wav"))
        #expect(try callrec(["ingest", wav, "--data", data]).status == 0)
        let shown = try callrec(["show", id, "--data", data])
        #expect(shown.status == 0)
        #expect(shown.out.contains("paused  0:00:04.00"), "\(shown.out)")
        #expect(shown.out.contains("by agent-1001"))
        #expect(shown.out.contains("cause 16"))
        #expect(!shown.out.contains("NOT MUTED"))
    }

    @Test func aBadSettingFailsWithOneLineAndNoSecret() throws {
        let dir = TempDir()
        let r = try callrec(["serve", "--data", dir.file("data"), "--spool", dir.file("spool"), "--port", "0"], env: ["CALLREC_AMI": "tcp://callrec:topsecret@"])
        #expect(r.status != 0)
        #expect(r.err.contains("CALLREC_AMI must be tcp://USER:SECRET@HOST:PORT"), "\(r.err)")
        #expect(!r.err.contains("topsecret"))
    }
}
