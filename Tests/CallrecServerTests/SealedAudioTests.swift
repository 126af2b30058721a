import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import CallrecServer

/// A sealed recording plays exactly as a plaintext one: `.opus` ranges through the fast path and
/// the router (the plaintext's bytes, its ETag), `.wav`; a damaged segment fails closed.
struct SealedAudioTests {
    static func sealedIngestor(_ h: Harness) throws -> Ingestor {
        var t = Transcoder()
        let keys = h.catalog.keys
        t.sealing = { try keys.dataKey(forRecording: $0) }
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return Ingestor(catalog: h.catalog, transcoder: t, naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
    }

    static func addSealed(_ h: Harness, _ source: String, as uniqueid: String) throws -> RecordingRow {
        let path = try placeFixture(source, at: h.dir.file("sealed/\(uniqueid).wav"))
        try h.catalog.setMetadata(uniqueid, Metadata(company: "42"))
        guard case .ingested = try sealedIngestor(h).ingest(path: path) else { throw DecodeError(message: "ingest failed") }
        return try h.catalog.recording(uniqueid)!
    }

    @Test func playsAsPlaintextThroughBothPaths() async throws {
        let h = try await Harness()
        let row = try Self.addSealed(h, h.longWAV(seconds: 120), as: "1732467600.42")
        let plainRow = try h.add(h.longWAV(seconds: 120), as: "1732467600.43")
        let path = h.data.absolute(row.opusPath)
        #expect(SealFormat.isSealed(path: path))
        let plain = try StoredFile(path: path).bytes(0..<row.opusBytes)
        #expect(plain.count == row.opusBytes && plain.count > 3 * 65536)
        let token = try await h.token(.admin)
        let uri = "/recordings/1732467600.42.opus"
        try await h.test { client in
            let whole = try await client.execute(uri: uri, method: .get, headers: h.bearer(token))
            #expect(whole.status == .ok && whole.bytes == plain)
            #expect(whole.headers[.contentLength] == String(plain.count))
            #expect(whole.headers[.eTag] == "\"\(row.opusSHA256.prefix(32))\"")
            let etag = try #require(whole.headers[.eTag])
            let ranges: [(String, Range<Int>)] = [
                ("bytes=0-99", 0..<100), ("bytes=65530-65545", 65530..<65546), ("bytes=100000-170000", 100000..<170001),
                ("bytes=-100", (plain.count - 100)..<plain.count), ("bytes=131072-", 131072..<plain.count),
            ]
            for (range, expected) in ranges {
                var answeredFast = false
                for _ in 0..<3 where !answeredFast {
                    // The router's request fills the row cache and the key cache the fast path reads.
                    let routed = try await client.execute(uri: uri, method: .get, headers: h.bearer(token) + [.range: range])
                    #expect(routed.status == .partialContent && routed.bytes == Array(plain[expected]), "\(range) router")
                    let before = AudioFastPath.answers(data: h.data.root)
                    let fast = try await client.execute(uri: h.signed(uri), method: .get, headers: [.range: range, .ifRange: etag])
                    answeredFast = AudioFastPath.answers(data: h.data.root) == before + 1
                    #expect(fast.status == .partialContent && fast.bytes == Array(plain[expected]), "\(range) signed")
                    #expect(fast.headers[.contentRange] == routed.headers[.contentRange])
                }
                #expect(answeredFast, "\(range): the fast path never answered")
            }
            // If-Range with another validator: the whole representation.
            let other = try await client.execute(uri: h.signed(uri), method: .get, headers: [.range: "bytes=0-9", .ifRange: "\"other\""])
            #expect(other.status == .ok && other.bytes == plain)
            // The .wav is the same as the plaintext recording's of the same audio.
            let wav = try await client.execute(uri: "/recordings/1732467600.42.wav", method: .get, headers: h.bearer(token) + [.range: "bytes=500000-600000"])
            let plainWav = try await client.execute(uri: "/recordings/1732467600.43.wav", method: .get, headers: h.bearer(token) + [.range: "bytes=500000-600000"])
            #expect(wav.status == .partialContent && wav.bytes == plainWav.bytes && wav.bytes.count == 100001)
            _ = plainRow
        }
    }

    /// A damaged segment: ranges over intact segments still play; one over the damaged segment
    /// is a JSON error through either path, never its bytes.
    @Test func aDamagedSegmentFailsClosed() async throws {
        let h = try await Harness()
        let row = try Self.addSealed(h, h.longWAV(seconds: 120), as: "1732467600.42")
        let path = h.data.absolute(row.opusPath)
        let plain = try StoredFile(path: path).bytes(0..<row.opusBytes)
        var sealed = try Data(contentsOf: URL(fileURLWithPath: path))
        sealed[64 + SealFormat.sealedSegmentSize + 500] ^= 0x01  // segment 1
        try sealed.write(to: URL(fileURLWithPath: path))
        let token = try await h.token(.admin)
        let uri = "/recordings/1732467600.42.opus"
        try await h.test { client in
            for _ in 0..<2 {
                let ok = try await client.execute(uri: h.signed(uri), method: .get, headers: [.range: "bytes=0-999"])
                #expect(ok.status == .partialContent && ok.bytes == Array(plain[0..<1000]))
                for headers in [[.range: "bytes=70000-70999"], h.bearer(token) + [.range: "bytes=70000-70999"]] as [HTTPFields] {
                    let bad = try await client.execute(uri: headers[.authorization] == nil ? h.signed(uri) : uri, method: .get, headers: headers)
                    #expect(bad.status == .serviceUnavailable, "\(headers)")
                    #expect(bad.text.contains("audio_unavailable"))
                    #expect(!bad.bytes.isEmpty && Array(plain[70000..<71000]).withUnsafeBytes { p in !bad.bytes.elementsEqual(p) })
                }
            }
        }
    }

    /// Damaged in place after the fast path has opened the file and holds its header's context
    /// (key included): still refused, through both paths, never a byte of the damaged segment.
    @Test func aSegmentDamagedWhileItsFileIsHeldOpenFailsClosed() async throws {
        let h = try await Harness()
        let row = try Self.addSealed(h, h.longWAV(seconds: 120), as: "1732467600.42")
        let path = h.data.absolute(row.opusPath)
        let plain = try StoredFile(path: path).bytes(0..<row.opusBytes)
        let token = try await h.token(.admin)
        let uri = "/recordings/1732467600.42.opus"
        try await h.test { client in
            var byFastPath = false
            for _ in 0..<5 where !byFastPath {
                let before = AudioFastPath.answers(data: h.data.root)
                let ok = try await client.execute(uri: h.signed(uri), method: .get, headers: [.range: "bytes=70000-70999"])
                #expect(ok.status == .partialContent && ok.bytes == Array(plain[70000..<71000]))
                byFastPath = AudioFastPath.answers(data: h.data.root) == before + 1
            }
            #expect(byFastPath)
            // One bit of segment 1 flipped in place (same inode, same descriptor).
            let fd = open(path, O_RDWR)
            var byte: UInt8 = 0
            let at = off_t(64 + SealFormat.sealedSegmentSize + 500)
            #expect(pread(fd, &byte, 1, at) == 1)
            byte ^= 0x01
            #expect(pwrite(fd, &byte, 1, at) == 1)
            close(fd)
            for _ in 0..<2 {
                for headers in [[.range: "bytes=70000-70999"], h.bearer(token) + [.range: "bytes=70000-70999"]] as [HTTPFields] {
                    let bad = try await client.execute(uri: headers[.authorization] == nil ? h.signed(uri) : uri, method: .get, headers: headers)
                    #expect(bad.status == .serviceUnavailable, "\(headers)")
                    #expect(bad.text.contains("audio_unavailable"))
                }
                let ok = try await client.execute(uri: h.signed(uri), method: .get, headers: [.range: "bytes=0-999"])
                #expect(ok.status == .partialContent && ok.bytes == Array(plain[0..<1000]))
            }
        }
    }

    /// Cut short at a segment boundary (every remaining segment authentic): refused through both
    /// paths, even for a range the remaining segments cover — the fast path by the catalog's
    /// size, the router by the last segment's flag.
    @Test func aFileCutAtASegmentBoundaryIsRefused() async throws {
        let h = try await Harness()
        let row = try Self.addSealed(h, h.longWAV(seconds: 120), as: "1732467600.42")
        let path = h.data.absolute(row.opusPath)
        let sealed = try Data(contentsOf: URL(fileURLWithPath: path))
        let segments = (sealed.count - 64 + SealFormat.sealedSegmentSize - 1) / SealFormat.sealedSegmentSize
        try sealed.prefix(64 + (segments - 1) * SealFormat.sealedSegmentSize).write(to: URL(fileURLWithPath: path))
        let token = try await h.token(.admin)
        let uri = "/recordings/1732467600.42.opus"
        try await h.test { client in
            for _ in 0..<2 {
                let routed = try await client.execute(uri: uri, method: .get, headers: h.bearer(token) + [.range: "bytes=0-999"])
                #expect(routed.status == .serviceUnavailable, "\(routed.status)")
                let before = AudioFastPath.answers(data: h.data.root)
                let fast = try await client.execute(uri: h.signed(uri), method: .get, headers: [.range: "bytes=0-999"])
                #expect(fast.status == .serviceUnavailable && AudioFastPath.answers(data: h.data.root) == before)
            }
        }
    }

    /// `"recipient"` in POST /exports: validated (400 JSON), kept with the job, and the download
    /// is the ZIP sealed in the age format, which `age -d` opens.
    @Test func exportsSealedForARecipient() async throws {
        let h = try await Harness()
        let row = try Self.addSealed(h, "speech.wav", as: "1732467600.42")
        let key = h.dir.file("age-key.txt")
        #expect(try run("age-keygen", ["-o", key]).status == 0)
        let recipient = String(decoding: try run("age-keygen", ["-y", key]).out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let compliance = try await h.token(.compliance)
        try await h.test { client in
            for bad in ["age1nope", "AGE-SECRET-KEY-1QQQ", ""] {
                let r = try await client.execute(
                    uri: "/exports", method: .post, headers: h.bearer(compliance),
                    body: ByteBuffer(string: #"{"from":"2024-11-24","to":"2024-11-25","recipient":"\#(bad)"}"#))
                #expect(r.status == .badRequest && (r.json["error"] as? [String: Any])?["code"] as? String == "invalid_recipient", "\(bad): \(r.text)")
            }
            let created = try await client.execute(
                uri: "/exports", method: .post, headers: h.bearer(compliance),
                body: ByteBuffer(string: #"{"from":"2024-11-24","to":"2024-11-25","recipient":"\#(recipient)"}"#))
            #expect(created.status == .accepted && created.json["recipient"] as? String == recipient)
            let id = try #require(created.json["id"] as? String)
            _ = try await eventuallyAsync(10, every: .milliseconds(100)) {
                try await client.execute(uri: "/exports/\(id)", method: .get, headers: h.bearer(compliance)).json["status"] as? String == "completed"
            }
            let download = try await client.execute(uri: "/exports/\(id)/download", method: .get, headers: h.bearer(compliance))
            #expect(download.status == .ok)
            #expect(download.headers[.contentDisposition]?.hasSuffix(".zip.age\"") == true)
            let sealed = h.dir.file("export.age"), zip = h.dir.file("export.zip")
            try Data(download.bytes).write(to: URL(fileURLWithPath: sealed))
            #expect(try run("age", ["-d", "-i", key, "-o", zip, sealed]).status == 0)
            let entry = try run("unzip", ["-p", zip, row.opusPath])
            try entry.out.write(to: URL(fileURLWithPath: h.dir.file("e.opus")))
            #expect(try Transcoder.sha256(of: h.dir.file("e.opus")) == row.opusSHA256)
        }
    }
}
