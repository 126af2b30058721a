import CallrecAMI
import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

/// Call facts from the events onto the recording's timeline, through the real tracker, catalog
/// and ingest.
@Suite struct TimelineTests {
    static let id = "1795635615.61"

    /// An event in the fixture's shape (the recorded channel's snapshot), at `t`.
    static func event(_ name: String, _ t: Double, _ extra: [(String, String)] = []) -> AMIMessage {
        AMIMessage(
            [("Event", name), ("Privilege", "call,all"), ("Timestamp", String(format: "%.6f", t)), ("Channel", "Local/t6@caller-0000001e;2"),
             ("ChannelState", "6"), ("ChannelStateDesc", "Up"), ("CallerIDNum", "1001"), ("CallerIDName", "<unknown>"),
             ("ConnectedLineNum", "5511987654321"), ("ConnectedLineName", "<unknown>"), ("Language", "en"), ("AccountCode", ""),
             ("Context", "caller"), ("Exten", "t6"), ("Priority", "4"), ("Uniqueid", id), ("Linkedid", "1795635615.60"),
             ("ChanVariable", "MIXMONITOR_FILENAME=/var/spool/asterisk/monitor/\(id).wav")] + extra)
    }

    @Test func tenSecondsWithFourUnbridgedAndA594SecondFileSaysWhereTheFourWent() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")))
        var logger = Logger(label: "t")
        logger.logLevel = .error
        let tracker = CallTracker(catalog: catalog, logger: logger)
        let t0 = 1795635615.880350
        // Bridged 0.02–3.0 s and 7.0–10.0 s (a 4 s hold in between), hung up at 10.0 s.
        for m in [
            Self.event("Newchannel", t0 - 0.003), Self.event("MixMonitorStart", t0), Self.event("BridgeEnter", t0 + 0.02),
            Self.event("BridgeLeave", t0 + 3.0), Self.event("BridgeEnter", t0 + 7.0), Self.event("BridgeLeave", t0 + 10.0),
            Self.event("Hangup", t0 + 10.0, [("Cause", "16"), ("Cause-txt", "Normal Clearing")]),
        ] { tracker.handle(m) }
        await tracker.flush()
        #expect(tracker.live().isEmpty)
        // 5.94 s of the real recording: what MixMonitor with `b` wrote of that call.
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.root + "/Fixtures/asterisk-22/1795635615.61.wav")
        let path = dir.file("\(Self.id).wav")
        let audio = Array(pcm.prefix(47_520 * 2))
        try (MixMonitorWriter.header(dataBytes: audio.count, sampleRate: 8000) + Data(audio)).write(to: URL(fileURLWithPath: path))
        let ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
        #expect(ingestor.ingest(path: path) == .ingested(uniqueid: Self.id, parts: 1))
        let row = try #require(try catalog.recording(Self.id))
        let json = RecordingJSON(row)
        #expect(json.durationMs == 5940)
        #expect(json.gaps == [AMIFacts.Gap(atMs: 2980, lostMs: 4000, why: "not_bridged")])
        #expect(json.answeredAt == AMIFacts.iso(t0 + 0.02))
        #expect(json.endedAt == AMIFacts.iso(t0 + 10.0))
        #expect(json.hangupCause == 16)
        // The CRM gave no agent or lead number: the parties' numbers fill them.
        #expect(row.agent == "1001" && row.leadNumber == "5511987654321")
        // The numbers are not kept a second time in the facts, and an erasure forgets the call.
        #expect(row.ami?.contains("5511987654321") == false)
        #expect(try catalog.call(Self.id) != nil)
        _ = try catalog.forgetPendingMetadata(leadNumber: "5511987654321")
        #expect(try catalog.call(Self.id) == nil)
    }

    @Test func withoutAMIFactsTheRecordingSaysNull() throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")))
        var logger = Logger(label: "t")
        logger.logLevel = .error
        let path = try placeFixture("speech.wav", at: dir.file("1795635615.77.wav"))
        let ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
        #expect(ingestor.ingest(path: path) == .ingested(uniqueid: "1795635615.77", parts: 1))
        let data = try JSONEncoder.callrec.encode(RecordingJSON(try #require(try catalog.recording("1795635615.77"))))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["pauses"] as? [Any] != nil && (json["pauses"] as? [Any])?.isEmpty == true)
        #expect(json["gaps"] as? [Any] != nil && (json["gaps"] as? [Any])?.isEmpty == true)
        #expect(json["answered_at"] is NSNull && json["ended_at"] is NSNull)
        #expect(json["started_at"] as? String == "2026-11-25T19:40:15Z")
    }
}
