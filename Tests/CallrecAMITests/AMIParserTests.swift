import CallrecAMI
import CallrecTestSupport
import Foundation
import Testing

@Suite(.offThePool) struct AMIParserTests {
    @Test func bannerThenMessagesInAnyPieces() {
        let wire = Array("Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\nEvent: Hangup\r\nUniqueid: 1.2\r\nCause: 16\r\n\r\n".utf8)
        for cut in 1..<wire.count {
            var p = AMIParser()
            let frames = p.feed(Array(wire[..<cut])) + p.feed(Array(wire[cut...]))
            #expect(frames.count == 3, "cut at \(cut)")
            #expect(frames.first == .banner("Asterisk Call Manager/11.0.0"))
            guard frames.count == 3, case .message(let r) = frames[1], case .message(let e) = frames[2] else { continue }
            #expect(r.response == "Success" && r["ActionID"] == "1" && r["Message"] == "Authentication accepted")
            #expect(e.event == "Hangup" && e["Uniqueid"] == "1.2" && e["Cause"] == "16")
        }
    }
}

extension AMIParserTests {
    /// The fixture's events as Asterisk sent them (CRLF), without the log's `# recv=` lines.
    static func fixtureWire() throws -> (wire: [UInt8], events: [AMIPeer.Event]) {
        let events = try AMIPeer.load(Paths.root + "/Fixtures/audio/asterisk-22/1795635615.61.ami.log")
        return (Array(events.map(\.wire).joined().utf8), events)
    }

    @Test func theFixtureCallParsesFieldForField() throws {
        let (wire, events) = try Self.fixtureWire()
        var p = AMIParser(expectBanner: false)
        // In uneven pieces, as TCP delivers them.
        var frames: [AMIFrame] = []
        var i = 0, step = 1
        while i < wire.count {
            let j = min(wire.count, i + step)
            frames += p.feed(Array(wire[i..<j]))
            i = j
            step = step * 3 % 1009 + 1
        }
        let messages = frames.compactMap { f -> AMIMessage? in if case .message(let m) = f { return m } else { return nil } }
        #expect(messages.count == events.count)
        for (m, e) in zip(messages, events) {
            #expect(m.fields.map(\.key) == e.fields.map(\.key))
            #expect(m.fields.map(\.value) == e.fields.map(\.value))
        }
        let start = try #require(messages.first { $0.event == "MixMonitorStart" })
        #expect(start.channelVariable("MIXMONITOR_FILENAME") == "/var/spool/asterisk/monitor/1795635615.61.wav")
        #expect(start["Timestamp"] == "1795635615.880350")
        #expect(messages.first { $0.event == "LocalBridge" }?["LocalOneChannel"] == "Local/t6@caller-0000001e;1")
    }

    @Test func unwantedEventsAreSkippedAndBareLFAccepted() throws {
        let (_, events) = try Self.fixtureWire()
        let lf = Array(events.map(\.wire).joined().replacingOccurrences(of: "\r\n", with: "\n").utf8)
        var p = AMIParser(expectBanner: false, wanted: { $0 == "Hangup" })
        let frames = p.feed(lf)
        #expect(frames.count == events.filter { $0.name == "Hangup" }.count)
        #expect(p.skipped == events.count - frames.count)
    }

    @Test func aSecretIsNeverShown() throws {
        let m = AMIMessage([("Action", "Login"), ("Username", "callrec"), ("Secret", "hunter2")])
        #expect(!m.description.contains("hunter2"))
        let e = try AMIEndpoint(url: "tcp://callrec:hunter2@127.0.0.1:5038")
        #expect(e.secret == "hunter2" && e.port == 5038 && !"\(e)".contains("hunter2"))
        #expect(throws: AMIError.self) { try AMIEndpoint(url: "tcp://127.0.0.1:5038") }
        #expect(throws: AMIError.self) { try AMIEndpoint(url: "http://a:b@127.0.0.1:5038") }
    }
}
