import CallrecCatalog
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// `waveform.json?pixels=N` and the list's duration and hold filters.
@Suite(.offThePool)
struct PeaksTests {
    static func json(channels: Int, length: Int, spp: Int = 160, value: (Int, Int) -> (Int, Int)) -> Data {
        var data: [Int] = []
        for i in 0..<length { for c in 0..<channels { let (lo, hi) = value(i, c); data += [lo, hi] } }
        let object: [String: Any] = ["version": 2, "channels": channels, "sample_rate": 8000, "samples_per_pixel": spp, "bits": 8, "length": length, "data": data]
        return try! JSONSerialization.data(withJSONObject: object)
    }

    static func decode(_ d: Data) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: d) as? [String: Any]) }

    /// Stereo as audiowaveform writes it (min0, max0, min1, max1 per pixel): each channel reduced
    /// on its own, every stored pixel in exactly one column.
    @Test func stereoColumnsKeepTheirChannels() throws {
        // Channel 0 loud only in pixel 7, channel 1 only in pixel 93; both quiet elsewhere.
        let stored = Self.json(channels: 2, length: 100) { i, c in
            if c == 0 && i == 7 { return (-100, 90) }
            if c == 1 && i == 93 { return (-50, 120) }
            return (-1, 1)
        }
        let out = try Self.decode(try PeaksReducer.reduce(stored, pixels: 10))
        #expect(out["channels"] as? Int == 2 && out["length"] as? Int == 10 && out["version"] as? Int == 2)
        #expect(out["samples_per_pixel"] as? Int == 1600)
        let data = try #require(out["data"] as? [Int])
        #expect(data.count == 10 * 2 * 2)
        func column(_ j: Int, _ c: Int) -> [Int] { [data[(j * 2 + c) * 2], data[(j * 2 + c) * 2 + 1]] }
        #expect(column(0, 0) == [-100, 90] && column(0, 1) == [-1, 1])
        #expect(column(9, 0) == [-1, 1] && column(9, 1) == [-50, 120])
        for j in 1..<9 { #expect(column(j, 0) == [-1, 1] && column(j, 1) == [-1, 1], "column \(j)") }
    }

    /// Uneven division: 7 stored pixels into 3 columns, each pixel counted once, none left out.
    @Test func unevenColumnsCoverEveryPixel() throws {
        let stored = Self.json(channels: 1, length: 7) { i, _ in (-i, i) }
        let data = try #require(try Self.decode(try PeaksReducer.reduce(stored, pixels: 3))["data"] as? [Int])
        // Columns ⌊j·7/3⌋: [0,2) [2,4) [4,7).
        #expect(data == [-1, 1, -3, 3, -6, 6])
        // As many columns as stored, or more: answered as stored.
        #expect(try PeaksReducer.reduce(stored, pixels: 7) == stored)
        #expect(try PeaksReducer.reduce(stored, pixels: 8192) == stored)
    }

    @Test func malformedStoredPeaksAreAnError() {
        for bad in [#"{"version":2}"#, #"{"version":2,"sample_rate":8000,"samples_per_pixel":160,"length":3,"data":[1,2]}"#,
                    #"{"version":2,"sample_rate":8000,"samples_per_pixel":160,"length":3,"data":[1,2,x,4,5,6]}"#] {
            #expect(throws: PeaksReducer.Failure.self) { try PeaksReducer.reduce(Data(bad.utf8), pixels: 1) }
        }
    }

    static func addLong(_ h: Harness, seconds: Int, as uniqueid: String) throws {
        let path = h.dir.file("\(uniqueid).wav")
        try FileManager.default.moveItem(atPath: try h.longWAV(seconds: seconds), toPath: path)
        try h.catalog.setMetadata(uniqueid, Metadata(company: "42"))
        guard case .ingested = h.ingestor.ingest(path: path) else { throw DecodeError(message: "ingest failed") }
    }

    @Test func route() async throws {
        let h = try await Harness()
        try Self.addLong(h, seconds: 120, as: "1732467600.9")
        try h.add("speech.wav", as: "1732467600.1", company: "42")
        let admin = try await h.token(.admin)
        let viewer7 = try await h.token(.viewer, company: "7")
        let stored = try #require(try await h.catalog.waveform("1732467600.9"))
        try await h.test { client in
            let full = try await client.execute(uri: "/recordings/1732467600.9/waveform.json", method: .get, headers: h.bearer(admin))
            #expect(full.status == .ok && Data(full.bytes) == stored)  // without pixels: exactly as stored
            let r = try await client.execute(uri: "/recordings/1732467600.9/waveform.json?pixels=1200", method: .get, headers: h.bearer(admin))
            #expect(r.status == .ok)
            let j = r.json
            #expect(j["length"] as? Int == 1200 && (j["data"] as? [Int])?.count == 2400)
            #expect(r.headers[.eTag] != full.headers[.eTag])
            #expect(r.bytes.count < 20_000)
            // The reduced peaks hold the stored extremes.
            let all = try #require(try Self.decode(stored)["data"] as? [Int])
            let got = try #require(j["data"] as? [Int])
            #expect(got.min() == all.min() && got.max() == all.max())
            for bad in ["0", "8193", "-1", "abc", "", "1.5", "99999999999999999999"] {
                let e = try await client.execute(uri: "/recordings/1732467600.9/waveform.json?pixels=\(bad)", method: .get, headers: h.bearer(admin))
                #expect(e.status == .badRequest && e.errorCode == "invalid_pixels", "pixels=\(bad)")
            }
            // Scoped exactly like the stored peaks; a signed URL's answer may be read cross-origin.
            let other = try await client.execute(uri: "/recordings/1732467600.9/waveform.json?pixels=10", method: .get, headers: h.bearer(viewer7))
            #expect(other.status == .notFound)
            let signed = try await client.execute(uri: h.signed("/recordings/1732467600.9/waveform.json") + "&pixels=300", method: .get)
            #expect(signed.status == .ok && signed.json["length"] as? Int == 300)
            #expect(signed.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == "*")
            #expect(r.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
        }
    }

    @Test func listFiltersDurationAndHold() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "42")
        try Self.addLong(h, seconds: 30, as: "1732467600.2")
        try h.add("speech.wav", as: "1732467600.3", company: "42")
        let admin = try await h.token(.admin)
        try await h.test { client in
            func ids(_ q: String) async throws -> [String] {
                let r = try await client.execute(uri: "/recordings?" + q, method: .get, headers: h.bearer(admin))
                #expect(r.status == .ok, "\(q): \(r.text)")
                return (r.json["items"] as? [[String: Any]] ?? []).compactMap { $0["uniqueid"] as? String }
            }
            #expect(try await ids("min_duration_ms=20000") == ["1732467600.2"])
            #expect(try await ids("min_duration_ms=0").count == 3)
            #expect(try await ids("min_duration_ms=").count == 3)
            #expect(try await ids("held=true") == [])
            let hold = try await client.execute(
                uri: "/recordings/1732467600.3/hold", method: .put, headers: h.bearer(admin).merging([.contentType: "application/json"]),
                body: ByteBuffer(string: #"{"reason":"case 9"}"#))
            #expect(hold.status == .ok)
            #expect(try await ids("held=true") == ["1732467600.3"])
            #expect(try await ids("held=false").count == 3)
            #expect(try await ids("held=true&min_duration_ms=20000") == [])
            for bad in ["held=yes", "min_duration_ms=-5", "min_duration_ms=1e3", "min_duration_ms=99999999999"] {
                let r = try await client.execute(uri: "/recordings?" + bad, method: .get, headers: h.bearer(admin))
                #expect(r.status == .badRequest, "\(bad)")
            }
        }
    }
}

extension HTTPFields {
    fileprivate func merging(_ other: HTTPFields) -> HTTPFields {
        var h = self
        for f in other { h[f.name] = f.value }
        return h
    }
}
