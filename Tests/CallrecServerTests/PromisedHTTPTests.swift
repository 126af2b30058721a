import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing

@testable import CallrecServer

/// `GET /recordings` over a real catalog of ingested recordings, served live on loopback: every
/// filter, every page size, pages with neither duplicates nor gaps.
struct PromisedHTTPTests {
    struct Call: Sendable {
        var uniqueid: String
        var start: Int
        var company: String
        var agent: String
        var lead: String
    }

    /// 15 short calls: three at each of five start times 12 hours apart (so that the cursor must
    /// order by uniqueid within one start), two companies, three agents, two numbers shared.
    static let calls: [Call] = (0..<15).map { i in
        let start = 1_732_467_600 + (i / 3) * 43200
        return Call(
            uniqueid: "\(start).\(10 + (i * 7) % 15)", start: start, company: i % 2 == 0 ? "42" : "77", agent: ["1001", "1002", "1003"][i % 3],
            lead: i % 5 == 0 ? "5511999990000" : "55119999900\(10 + i)")
    }

    /// The calls a query should answer, in the order it should answer them.
    static func expected(from: Int? = nil, to: Int? = nil, company: String? = nil, agent: String? = nil, lead: String? = nil) -> [String] {
        calls.filter { c in
            (from.map { c.start >= $0 } ?? true) && (to.map { c.start < $0 } ?? true) && (company.map { c.company == $0 } ?? true)
                && (agent.map { c.agent == $0 } ?? true) && (lead.map { c.lead == $0 } ?? true)
        }.sorted { ($0.start, $0.uniqueid) < ($1.start, $1.uniqueid) }.map(\.uniqueid)
    }

    final class Server: @unchecked Sendable {
        let dir = TempDir()
        let catalog: Catalog
        let tokens: TokenAuthority
        let signer = URLSigner(secret: "promised-url-secret")

        init() async throws {
            let data = DataDirectory(dir.file("data"))
            catalog = try Catalog(data: data)
            tokens = try await TokenAuthority(secret: "promised-jwt-secret-0123456789abcdef")
            var logger = Logger(label: "promised")
            logger.logLevel = .critical
            let ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
            // Half a second of speech each: short, so that 15 ingests stay quick.
            let pcm = Array(try MixMonitorWriter.samples(ofWAV: Paths.fixture("speech.wav")).prefix(8000))
            for c in PromisedHTTPTests.calls {
                try catalog.setMetadata(c.uniqueid, Metadata(company: c.company, agent: c.agent, leadNumber: c.lead))
                let path = dir.file("\(c.uniqueid).wav")
                try (MixMonitorWriter.header(dataBytes: pcm.count, sampleRate: 8000) + Data(pcm)).write(to: URL(fileURLWithPath: path))
                let outcome = ingestor.ingest(path: path)
                guard case .ingested = outcome else { throw DecodeError(message: "\(c.uniqueid): \(outcome)") }
            }
        }

        func token(_ role: Role, company: String? = nil) async throws -> String {
            try await tokens.issue(Claims(subject: "promised", expires: Date().addingTimeInterval(3600), role: role, company: company))
        }

        func live(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            var settings = try Settings(environment: [:])
            settings.port = 0
            settings.data = catalog.data
            var logger = Logger(label: "promised")
            logger.logLevel = .critical
            let app = CallrecApplication.make(
                settings: settings, catalog: catalog, watcher: nil, auth: Authenticator(signer: signer, tokens: tokens),
                registry: PrometheusCollectorRegistry(), logger: logger)
            try await app.test(.live) { client in try await body(client) }
        }
    }

    /// Every page of `query` (`limit` each), following `next_cursor`: the uniqueids in order.
    static func walk(_ client: any TestClientProtocol, _ query: String, limit: Int, token: String) async throws -> [String] {
        var ids: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            var q = query.isEmpty ? "limit=\(limit)" : query + "&limit=\(limit)"
            if let cursor { q += "&cursor=\(cursor)" }
            let r = try await client.execute(uri: "/recordings?\(q)", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(r.status == .ok, "\(q): \(String(buffer: r.body))")
            let page = try #require(try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any])
            let items = try #require(page["items"] as? [[String: Any]])
            #expect(items.count <= limit)
            ids += items.compactMap { $0["uniqueid"] as? String }
            cursor = page["next_cursor"] as? String
            if cursor != nil { #expect(items.count == limit, "a page before the last is full") }
            #expect(page.keys.contains("next_cursor"), "next_cursor is there, null on the last page")
            pages += 1
        } while cursor != nil && pages < 100
        return ids
    }

    /// Each filter alone and together, walked with page sizes 1, 2, 4 and 100: every page
    /// concatenated is exactly the matching recordings in start order, with no duplicate and no
    /// gap. Checked to fail: with the keyset condition `>` made `>=` (a duplicate at each page
    /// boundary).
    @Test func listFiltersAndCursorsGiveEveryMatchOnceInOrder() async throws {
        let server = try await Server()
        let admin = try await server.token(.admin)
        let day = 1_732_467_600
        let cases: [(String, [String])] = [
            ("", Self.expected()),
            ("from=2024-11-25T05:00:00Z", Self.expected(from: day + 43200)),
            ("to=2024-11-25T17:00:00Z", Self.expected(to: day + 86400)),
            ("from=2024-11-24T17:00:01Z&to=2024-11-26", Self.expected(from: day + 1, to: day + 7 * 3600 + 86400)),
            ("company=42", Self.expected(company: "42")),
            ("company=77", Self.expected(company: "77")),
            ("agent=1002", Self.expected(agent: "1002")),
            ("lead_number=5511999990000", Self.expected(lead: "5511999990000")),
            ("company=42&agent=1003", Self.expected(company: "42", agent: "1003")),
            ("company=77&lead_number=5511999990000", Self.expected(company: "77", lead: "5511999990000")),
            ("from=2024-11-25&company=42&agent=1001", Self.expected(from: day + 7 * 3600, company: "42", agent: "1001")),
            ("company=99", []),
        ]
        #expect(Self.expected().count == 15 && Set(Self.expected()).count == 15)
        #expect(Self.expected(company: "77", lead: "5511999990000").count >= 1, "the data exercises the combination")
        try await server.live { client in
            for (query, expected) in cases {
                for limit in [1, 2, 4, 100] {
                    let got = try await Self.walk(client, query, limit: limit, token: admin)
                    #expect(got == expected, "\(query) limit \(limit)")
                }
            }
        }
    }

    /// The default page is 100 and the largest 1000; a limit outside 1…1000, a cursor that is
    /// not one, an empty filter or an unknown parameter is a 400 with its code; a company-scoped
    /// token pages through its company only, whatever `company` it asks for.
    @Test func listRejectsBadParametersAndScopesByCompany() async throws {
        let server = try await Server()
        let admin = try await server.token(.admin)
        let viewer = try await server.token(.viewer, company: "77")
        try await server.live { client in
            for (query, code) in [
                ("limit=0", "invalid_limit"), ("limit=1001", "invalid_limit"), ("limit=x", "invalid_limit"), ("cursor=bm9wZQ", "invalid_cursor"),
                ("agent=%01", "invalid_agent"), ("colour=red", "unknown_parameter"), ("from=yesterday", "invalid_time"),
            ] {
                let r = try await client.execute(uri: "/recordings?\(query)", method: .get, headers: [.authorization: "Bearer \(admin)"])
                #expect(r.status == .badRequest, "\(query)")
                let error = (try? JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any])?["error"] as? [String: Any]
                #expect(error?["code"] as? String == code, "\(query): \(String(buffer: r.body))")
            }
            let all = try await client.execute(uri: "/recordings", method: .get, headers: [.authorization: "Bearer \(admin)"])
            let page = try #require(try JSONSerialization.jsonObject(with: Data(all.body.readableBytesView)) as? [String: Any])
            #expect((page["items"] as? [Any])?.count == 15)
            #expect(page["next_cursor"] is NSNull)
            #expect(try await Self.walk(client, "", limit: 2, token: viewer) == Self.expected(company: "77"))
            #expect(try await Self.walk(client, "company=42", limit: 2, token: viewer) == [])
            #expect(try await Self.walk(client, "agent=1002", limit: 1, token: viewer) == Self.expected(company: "77", agent: "1002"))
            let none = try await client.execute(uri: "/recordings", method: .get)
            #expect(none.status == .unauthorized)
        }
    }
}
