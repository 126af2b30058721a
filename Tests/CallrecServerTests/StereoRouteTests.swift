import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// Two-channel recordings over HTTP: the recording's JSON, the list's filters, the peaks and
/// the WAV view.
struct StereoRouteTests {
    @Test func speakersInJSONListPeaksAndWav() async throws {
        let h = try await Harness()
        let stereo = try h.add("stereo/call.wav", as: "1795635700.1")
        _ = try h.add("speech.wav", as: "1795635700.2")
        #expect(stereo.channels == 2 && stereo.overtalkMs != nil)
        let token = try await h.token(.admin)
        try await h.test { client in
            func get(_ uri: String) async throws -> TestResponse {
                try await client.execute(uri: uri, method: .get, headers: h.bearer(token))
            }
            func object(_ r: TestResponse) throws -> [String: Any] {
                try JSONSerialization.jsonObject(with: Data(r.bytes)) as? [String: Any] ?? [:]
            }
            let one = try object(try await get("/recordings/1795635700.1"))
            let speakers = try #require(one["speakers"] as? [[String: Any]])
            #expect(speakers.map { $0["role"] as? String } == ["agent", "customer"])
            #expect(abs((speakers[0]["talk_ms"] as? Int ?? 0) - 6500) <= 20)
            #expect(abs((one["overtalk_ms"] as? Int ?? 0) - 1800) <= 20)
            #expect(one["talk_ratio"] is Double)
            let mono = try object(try await get("/recordings/1795635700.2"))
            #expect(mono["speakers"] is NSNull && mono["overtalk_ms"] is NSNull && mono["lone_leg"] is NSNull)

            func ids(_ query: String) async throws -> [String] {
                let r = try await get("/recordings?" + query)
                #expect(r.status == .ok, "\(query)")
                return (try object(r)["items"] as? [[String: Any]] ?? []).compactMap { $0["uniqueid"] as? String }
            }
            #expect(try await ids("min_overtalk_ms=1000") == ["1795635700.1"])
            #expect(try await ids("min_overtalk_ms=5000") == [])
            #expect(try await ids("max_talk_ratio=0.9") == ["1795635700.1"])
            #expect(try await ids("max_talk_ratio=0.1") == [])
            #expect(try await ids("min_talk_ratio=0.5&min_dead_air_ms=1000") == ["1795635700.1"])
            #expect(try await ids("channels=1") == ["1795635700.2"])
            #expect(try await get("/recordings?max_talk_ratio=2").status == .badRequest)
            #expect(try await get("/recordings?min_overtalk_ms=-1").status == .badRequest)

            // Peaks: audiowaveform's --split-channels layout.
            let peaks = try object(try await get("/recordings/1795635700.1/waveform.json"))
            #expect(peaks["channels"] as? Int == 2)
            #expect((peaks["data"] as? [Int])?.count == (peaks["length"] as? Int ?? 0) * 4)

            // The WAV view: both channels, exact length, channel 0 silent where the script says.
            let wav = try await get("/recordings/1795635700.1.wav")
            #expect(wav.status == .ok)
            let bytes = wav.bytes
            #expect(bytes.count == 44 + 96000 * 4)
            #expect(bytes[22] == 2 && bytes[23] == 0)  // channels
            func sample(_ frame: Int, _ ch: Int) -> Int16 {
                let i = 44 + frame * 4 + ch * 2
                return Int16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
            }
            let quietLeft = (7000..<7200).map { abs(Int(sample(6 * 8000 + $0, 0))) }.max()!  // 6.875 s: agent silent
            let loudRight = (7000..<7200).map { abs(Int(sample(6 * 8000 + $0, 1))) }.max()!  // customer talking
            #expect(quietLeft < 300 && loudRight > 1000, "\(quietLeft) \(loudRight)")
        }
    }

    /// `waveform.json` serves what the Transcoder measured, encoded as JSONEncoder encodes it,
    /// byte for byte, now that the ingest stores it in pieces: mono and stereo, and a 10-minute
    /// call whose JSON takes several of the catalog's 64 KiB pieces.
    @Test func servedPeaksAreTheMeasuredOnes() async throws {
        let h = try await Harness()
        let long = try h.longWAV(seconds: 600)
        var expected: [String: Data] = [:]
        for (source, id) in [(Paths.fixture("speech.wav"), "1795635700.2"), (Paths.fixture("stereo/call.wav"), "1795635700.1"), (long, "1795635700.3")] {
            let w = try Transcoder().transcode(input: source, output: h.dir.file("check.opus"), tags: RecordingTags(uniqueid: id)).waveform
            expected[id] = try JSONEncoder.callrec.encode(w)
            let path = h.dir.file("\(id).wav")
            try FileManager.default.copyItem(atPath: source, toPath: path)
            try h.catalog.setMetadata(id, Metadata(company: "42"))
            guard case .ingested = h.ingestor.ingest(path: path) else { throw DecodeError(message: "ingest of \(id) failed") }
        }
        #expect(expected["1795635700.3"]!.count > 2 * 64 * 1024)
        let token = try await h.token(.admin)
        let checks = expected.sorted { $0.key < $1.key }
        try await h.test { client in
            for (id, json) in checks {
                let r = try await client.execute(uri: "/recordings/\(id)/waveform.json", method: .get, headers: h.bearer(token))
                #expect(r.status == .ok, "\(id)")
                #expect(Data(r.bytes) == json, "\(id): \(r.bytes.count) B served, \(json.count) B measured")
            }
        }
    }
}
