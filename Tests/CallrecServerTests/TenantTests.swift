import CallrecCatalog
import CallrecCompliance
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// Company scoping of every change, as an attacker holding another company's token would try it.
/// Each of these was reproduced against a running build before it was fixed.
struct TenantTests {
    static let json: HTTPFields = [.contentType: "application/json"]

    /// A partial PUT keeps the fields it leaves out, whatever their origin (here the spool path).
    @Test func partialMetadataKeepsWhatItLeavesOut() async throws {
        let h = try await Harness()
        #expect(try h.addFromSpool("speech.wav", at: "beta/5511999990000-1732467600.9.wav") == .ingested(uniqueid: "1732467600.9", parts: 1))
        let admin = try await h.token(.admin)
        let viewer = try await h.token(.viewer, company: "beta")
        try await h.test { client in
            let put = try await client.execute(
                uri: "/recordings/1732467600.9/metadata", method: .put, headers: h.bearer(admin) + Self.json, body: ByteBuffer(string: #"{"agent":"1001"}"#))
            #expect(put.status == .ok)
            #expect(put.json["company"] as? String == "beta")
            #expect(put.json["lead_number"] as? String == "5511999990000")
            let row = try #require(try h.catalog.recording("1732467600.9"))
            #expect(row.company == "beta" && row.leadNumber == "5511999990000" && row.agent == "1001")
            // The company's viewers still see it.
            #expect(try await client.execute(uri: "/recordings/1732467600.9", method: .get, headers: h.bearer(viewer)).status == .ok)
            // null clears a field on purpose.
            let cleared = try await client.execute(
                uri: "/recordings/1732467600.9/metadata", method: .put, headers: h.bearer(admin) + Self.json, body: ByteBuffer(string: #"{"agent":null}"#))
            #expect(cleared.status == .ok)
            #expect(try h.catalog.recording("1732467600.9")?.agent == nil)
            #expect(try h.catalog.recording("1732467600.9")?.company == "beta")
        }
    }

    /// A company-scoped admin neither erases, nor sets retention for, nor lists another company.
    @Test func scopedAdminStaysInItsCompany() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1", company: "beta")
        try h.catalog.setMetadata("1732467600.1", Metadata(leadNumber: "5511888887777"))
        let root = try await h.token(.admin)
        let acmeAdmin = try await h.token(.admin, company: "acme")
        let acmeCompliance = try await h.token(.compliance, company: "acme")
        try await h.test { client in
            #expect(try await client.execute(uri: "/retention/beta", method: .put, headers: h.bearer(root), body: ByteBuffer(string: #"{"days":30}"#)).status == .ok)
            let erased = try await client.execute(uri: "/erasures", method: .post, headers: h.bearer(acmeAdmin), body: ByteBuffer(string: #"{"lead_number":"5511888887777"}"#))
            #expect(erased.status == .ok)
            #expect(erased.json["count"] as? Int == 0)
            #expect(try h.catalog.recording("1732467600.1") != nil)

            let retention = try await client.execute(uri: "/retention/beta", method: .put, headers: h.bearer(acmeAdmin), body: ByteBuffer(string: #"{"days":0}"#))
            #expect(retention.status == .forbidden)
            #expect(try await client.execute(uri: "/retention/beta", method: .delete, headers: h.bearer(acmeAdmin)).status == .forbidden)
            #expect(try h.catalog.retentionOverrides() == ["beta": 30])
            #expect(try await client.execute(uri: "/retention/acme", method: .put, headers: h.bearer(acmeAdmin), body: ByteBuffer(string: #"{"days":10}"#)).status == .ok)

            let listed = try await client.execute(uri: "/retention", method: .get, headers: h.bearer(acmeCompliance))
            #expect(listed.status == .ok)
            #expect(listed.json as? [String: Int] == ["acme": 10])
        }
    }

    /// Metadata never moves a call across companies: not by pre-registering it, not by overwriting
    /// another company's pending metadata, not by moving one's own call away.
    @Test func metadataCannotMoveCallsAcrossCompanies() async throws {
        let h = try await Harness()
        let root = try await h.token(.admin)
        let acme = try await h.token(.admin, company: "acme")
        try h.add("u8.wav", as: "1732467600.2", company: "acme")
        try await h.test { client in
            func put(_ id: String, _ token: String, _ body: String) async throws -> TestResponse {
                try await client.execute(uri: "/recordings/\(id)/metadata", method: .put, headers: h.bearer(token) + Self.json, body: ByteBuffer(string: body))
            }
            // acme claims a call the spool will file under beta: the spool path wins, and says so.
            #expect(try await put("1732467600.9", acme, #"{"company":"acme","agent":"666"}"#).status == .ok)
            #expect(try h.addFromSpool("speech.wav", at: "beta/5511777776666-1732467600.9.wav") == .ingested(uniqueid: "1732467600.9", parts: 1))
            let row = try #require(try h.catalog.recording("1732467600.9"))
            #expect(row.company == "beta")
            #expect(row.agent == nil)
            #expect(try h.catalog.auditLog(from: nil, to: nil).contains { $0.action == "metadata.conflict" && $0.uniqueid == "1732467600.9" })

            // beta's pending metadata: invisible to acme (404, no echo), unchanged.
            #expect(try await put("1732467600.5", root, #"{"company":"beta","lead_number":"5511666665555"}"#).status == .ok)
            let overwrite = try await put("1732467600.5", acme, #"{"agent":"1"}"#)
            #expect(overwrite.status == .notFound)
            #expect(!overwrite.text.contains("5511666665555"))
            #expect(try h.catalog.metadata(for: "1732467600.5") == Metadata(company: "beta", leadNumber: "5511666665555"))

            // acme's own call cannot be moved to beta by acme; an unscoped admin may move it.
            #expect(try await put("1732467600.2", acme, #"{"company":"beta"}"#).status == .forbidden)
            #expect(try h.catalog.recording("1732467600.2")?.company == "acme")
            #expect(try await put("1732467600.2", root, #"{"company":"beta"}"#).status == .ok)
            #expect(try h.catalog.recording("1732467600.2")?.company == "beta")

            // A scoped token's new registration is its own company's.
            #expect(try await put("1732467600.6", acme, #"{"agent":"7"}"#).json["company"] as? String == "acme")
        }
    }

    /// Fields that are not the route's are named in a 400, not dropped silently.
    @Test func unknownFieldsAreRefused() async throws {
        let h = try await Harness()
        let root = try await h.token(.admin)
        try await h.test { client in
            let r = try await client.execute(
                uri: "/recordings/1732467600.7/metadata", method: .put, headers: h.bearer(root) + Self.json, body: ByteBuffer(string: #"{"compnay":"42"}"#))
            #expect(r.status == .badRequest)
            #expect(r.errorCode == "unknown_field")
            #expect(r.text.contains("compnay"))
            #expect(try h.catalog.metadata(for: "1732467600.7") == nil)
            let hold = try await client.execute(uri: "/holds", method: .post, headers: h.bearer(root), body: ByteBuffer(string: #"{"reason":"x","lead":"1"}"#))
            #expect(hold.status == .badRequest && hold.text.contains("lead"))
        }
    }
}
