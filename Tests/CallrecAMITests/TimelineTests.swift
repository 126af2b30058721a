import CallrecAMI
import CallrecCatalog
import CallrecCompliance
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import Logging
import Testing

/// Call facts from the events onto the recording's timeline, through the real tracker, catalog
/// and ingest.
@Suite(.offThePool) struct TimelineTests {
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
        let pcm = try MixMonitorWriter.samples(ofWAV: Paths.root + "/Fixtures/audio/asterisk-22/1795635615.61.wav")
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

    /// A mute Asterisk reported (no request through callrec: `by` null) reaches the webhook event
    /// and both export manifests, on the fixture's zero run.
    @Test func aPauseIsInTheWebhookAndTheExportManifests() async throws {
        let dir = TempDir()
        let catalog = try Catalog(data: DataDirectory(dir.file("data")), recordsEvents: true)
        var logger = Logger(label: "t")
        logger.logLevel = .error
        let tracker = CallTracker(catalog: catalog, logger: logger)
        // The fixture call's own timestamps (1795635615.61.ami.log).
        for m in [
            Self.event("MixMonitorStart", 1795635615.880350), Self.event("BridgeEnter", 1795635615.883933),
            Self.event("MixMonitorMute", 1795635619.884511, [("Direction", "both"), ("State", "1")]),
            Self.event("MixMonitorMute", 1795635622.884472, [("Direction", "both"), ("State", "0")]),
            Self.event("BridgeLeave", 1795635627.878676), Self.event("Hangup", 1795635627.879820, [("Cause", "16")]),
        ] { tracker.handle(m) }
        await tracker.flush()
        let path = try placeFixture(Paths.root + "/Fixtures/audio/asterisk-22/1795635615.61.wav", at: dir.file("\(Self.id).wav"))
        let ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
        #expect(ingestor.ingest(path: path) == .ingested(uniqueid: Self.id, parts: 1))
        let event = try #require(try catalog.outbox().first { $0.uniqueid == Self.id })
        let body = try #require(try JSONSerialization.jsonObject(with: event.body) as? [String: Any])
        let recording = (body["data"] as? [String: Any]) ?? (body["recording"] as? [String: Any]) ?? body
        let pause = try #require((recording["pauses"] as? [[String: Any]])?.first, "\(body)")
        #expect(abs((pause["start_ms"] as? Int ?? 0) - 4000) <= 20 && abs((pause["end_ms"] as? Int ?? 0) - 7000) <= 20)
        #expect(pause["by"] is NSNull && pause["zeros"] as? Bool == true)
        let out = dir.file("export.zip")
        _ = try Exporter(catalog: catalog).export(ListQuery(), to: out)
        let unpacked = dir.file("unzipped")
        #expect(try run("unzip", ["-q", out, "-d", unpacked]).status == 0)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: unpacked + "/manifest.json"))) as? [String: Any])
        let item = try #require((manifest["recordings"] as? [[String: Any]])?.first)
        #expect((item["pauses"] as? [[String: Any]])?.count == 1)
        #expect(item["ended_at"] as? String == AMIFacts.iso(1795635627.879820))
        let csv = try String(contentsOfFile: unpacked + "/manifest.csv", encoding: .utf8).split(separator: "\r\n")
        let header = csv.first.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        let column = try #require(header.firstIndex(of: "pauses"))
        let row = csv.last.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        let cell = row.count == header.count ? row[column] : ""
        let bounds = cell.split(separator: "-").compactMap { Int($0) }
        #expect(bounds.count == 2 && abs(bounds[0] - 4000) <= 20 && abs(bounds[1] - 7000) <= 20, "\(cell)")
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
