import CallrecCatalog
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// Export jobs, holds by query, erasures and retention over HTTP.
struct ComplianceRouteTests {
    @Test func exportJobDownloadsAndResumes() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "42")
        try h.add("u8.wav", as: "1732467600.2", company: "42")
        try h.add("speech.WAV", as: "1732467600.3", company: "7")
        let compliance = try await h.token(.compliance)
        let compliance42 = try await h.token(.compliance, company: "42")
        let viewer = try await h.token(.viewer, company: "42")
        try await h.test { client in
            let body = ByteBuffer(string: #"{"from":"2024-11-24","to":"2024-11-25","company":"42"}"#)
            #expect(try await client.execute(uri: "/exports", method: .post, headers: h.bearer(viewer), body: body).status == .forbidden)
            #expect(try await client.execute(uri: "/exports", method: .post, headers: h.bearer(compliance42), body: ByteBuffer(string: #"{"from":"2024-11-24","to":"2024-11-25","company":"7"}"#)).status == .forbidden)
            #expect(try await client.execute(uri: "/exports", method: .post, headers: h.bearer(compliance), body: ByteBuffer(string: #"{"from":"2024-11-25","to":"2024-11-24"}"#)).status == .badRequest)
            let created = try await client.execute(uri: "/exports", method: .post, headers: h.bearer(compliance), body: body)
            #expect(created.status == .accepted)
            let id = try #require(created.json["id"] as? String)
            #expect(created.headers[.location] == "/exports/\(id)")
            var status = created.json
            _ = try await eventuallyAsync(10, every: .milliseconds(100)) {
                status = try await client.execute(uri: "/exports/\(id)", method: .get, headers: h.bearer(compliance)).json
                return status["status"] as? String == "completed"
            }
            #expect(status["status"] as? String == "completed")
            #expect((status["progress"] as? [String: Int])?["done"] == 2)
            // Another company's compliance officer cannot see it.
            #expect(try await client.execute(uri: "/exports/\(id)", method: .get, headers: h.bearer(try await h.token(.compliance, company: "7"))).status == .notFound)

            let full = try await client.execute(uri: "/exports/\(id)/download", method: .get, headers: h.bearer(compliance))
            #expect(full.status == .ok && full.headers[.contentType] == "application/zip")
            // A broken download resumes with Range.
            let half = full.bytes.count / 2
            let rest = try await client.execute(uri: "/exports/\(id)/download", method: .get, headers: h.bearer(compliance) + [.range: "bytes=\(half)-", .ifRange: full.headers[.eTag]!])
            #expect(rest.status == .partialContent)
            #expect(Array(full.bytes[0..<half]) + rest.bytes == full.bytes)
            let zip = h.dir.file("e.zip")
            try Data(full.bytes).write(to: URL(fileURLWithPath: zip))
            #expect(try run("unzip", ["-tq", zip]).status == 0)
            let listing = String(decoding: try run("unzip", ["-Z1", zip]).out, as: UTF8.self)
            #expect(listing.contains("1732467600.1.opus") && listing.contains("1732467600.2.opus") && !listing.contains("1732467600.3.opus"))
            #expect(listing.contains("manifest.csv") && listing.contains("manifest.json"))
            #expect(status["sha256"] as? String == (try Transcoder.sha256(of: zip)))
        }
    }

    @Test func holdsByQueryErasureAndRetention() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "42")
        try h.catalog.setMetadata("1732467600.1", Metadata(leadNumber: "5511"))
        try h.add("u8.wav", as: "1732467600.2", company: "42")
        try h.catalog.setMetadata("1732467600.2", Metadata(leadNumber: "5511"))
        let admin = try await h.token(.admin)
        let compliance = try await h.token(.compliance)
        try await h.test { client in
            let held = try await client.execute(uri: "/holds", method: .post, headers: h.bearer(compliance), body: ByteBuffer(string: #"{"company":"42","from":"2024-11-24T17:00:00Z","to":"2024-11-24T17:00:01Z","reason":"case 9"}"#))
            #expect(held.status == .ok)
            #expect(held.json["held"] as? [String] == ["1732467600.1", "1732467600.2"])
            #expect(try await client.execute(uri: "/holds", method: .post, headers: h.bearer(compliance), body: ByteBuffer(string: #"{"reason":"all"}"#)).status == .badRequest)
            // Release one; erase the number: the held one stays and is reported.
            _ = try await client.execute(uri: "/recordings/1732467600.2/hold", method: .delete, headers: h.bearer(compliance))
            #expect(try await client.execute(uri: "/erasures", method: .post, headers: h.bearer(compliance), body: ByteBuffer(string: #"{"lead_number":"5511"}"#)).status == .forbidden)
            let erased = try await client.execute(uri: "/erasures", method: .post, headers: h.bearer(admin), body: ByteBuffer(string: #"{"lead_number":"5511"}"#))
            #expect(erased.status == .ok)
            #expect(erased.json["uniqueids"] as? [String] == ["1732467600.2"])
            #expect(erased.json["held"] as? [String] == ["1732467600.1"])
            #expect(try await client.execute(uri: "/recordings/1732467600.2.opus", method: .get, headers: h.bearer(admin)).status == .notFound)
            #expect(try await client.execute(uri: "/recordings/1732467600.1.opus", method: .get, headers: h.bearer(admin)).status == .ok)

            let set = try await client.execute(uri: "/retention/42", method: .put, headers: h.bearer(admin), body: ByteBuffer(string: #"{"days":3650}"#))
            #expect(set.status == .ok && set.json["42"] as? Int == 3650)
            #expect(try await client.execute(uri: "/retention/42", method: .put, headers: h.bearer(compliance), body: ByteBuffer(string: #"{"days":1}"#)).status == .forbidden)
            #expect(try await client.execute(uri: "/retention", method: .get, headers: h.bearer(compliance)).json["42"] as? Int == 3650)
            // The overrides left: none. Parsed strictly (a body that is not JSON must not read as empty).
            let cleared = try await client.execute(uri: "/retention/42", method: .delete, headers: h.bearer(admin))
            #expect(cleared.status == .ok)
            #expect(try cleared.jsonObject().isEmpty, "\(cleared.text)")
            #expect(try await client.execute(uri: "/retention", method: .get, headers: h.bearer(compliance)).jsonObject().isEmpty)
        }
    }
}
