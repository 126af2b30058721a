import CallrecCatalog
import CallrecCompliance
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import CallrecServer

/// What a careless or hostile client tried against a running build: each was reproduced first.
@Suite(.offThePool)
struct HardeningTests {
    /// `bytes=0-,0-,…` asked for 16 copies of the file; overlapping ranges are merged.
    @Test func overlappingRangesAreServedOnce() async throws {
        let h = try await Harness()
        let row = try h.add("speech.wav", as: "1732467600.1")
        let admin = try await h.token(.admin)
        let sixteen = "bytes=" + Array(repeating: "0-", count: 16).joined(separator: ",")
        try await h.test { client in
            for ext in ["opus", "wav"] {
                let r = try await client.execute(uri: "/recordings/1732467600.1.\(ext)", method: .get, headers: h.bearer(admin) + [.range: sixteen])
                let whole = try await client.execute(uri: "/recordings/1732467600.1.\(ext)", method: .get, headers: h.bearer(admin))
                #expect(r.status == .partialContent)
                #expect(r.bytes == whole.bytes, "\(ext): \(r.bytes.count) bytes for a \(whole.bytes.count)-byte file")
            }
            #expect(row.opusBytes > 0)
        }
    }

    /// A method a path does not take is 405 with `Allow` (TRACE used to answer 404).
    @Test func otherMethodsAre405WithAllow() async throws {
        let h = try await Harness()
        try await h.test { client in
            let trace = try await client.execute(uri: "/recordings/1732467600.1.opus", method: .init("TRACE")!)
            #expect(trace.status == .methodNotAllowed)
            #expect(trace.headers[.allow] == "DELETE, GET, HEAD")
            let post = try await client.execute(uri: "/healthz", method: .post)
            #expect(post.status == .methodNotAllowed && post.headers[.allow] == "GET, HEAD")
            #expect(post.errorCode == "method_not_allowed")
            #expect(try await client.execute(uri: "/nowhere", method: .get).status == .notFound)
            // Every GET route answers HEAD: the headers, no body.
            let get = try await client.execute(uri: "/openapi.yaml", method: .get)
            let head = try await client.execute(uri: "/openapi.yaml", method: .head)
            #expect(head.status == .ok && head.bytes.isEmpty)
            #expect(head.headers[.contentLength] == String(get.bytes.count))
            #expect(try await client.execute(uri: "/healthz", method: .head).status == .ok)
        }
    }

    /// Path parameters are percent-decoded: `/retention/%41` is company `A`.
    @Test func pathParametersAreDecoded() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1")
        let admin = try await h.token(.admin)
        try await h.test { client in
            let put = try await client.execute(uri: "/retention/%41%C3%A9", method: .put, headers: h.bearer(admin), body: ByteBuffer(string: #"{"days":5}"#))
            #expect(put.status == .ok)
            #expect(try h.catalog.retentionOverrides() == ["Aé": 5])
            #expect(try await client.execute(uri: "/recordings/1732467600%2E1", method: .get, headers: h.bearer(admin)).status == .ok)
            #expect(try await client.execute(uri: "/retention/%ZZ", method: .put, headers: h.bearer(admin), body: ByteBuffer(string: #"{"days":5}"#)).status == .badRequest)
        }
    }

    /// A client is told why its credentials were refused.
    @Test func refusalsSayWhy() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1")
        let expired = try await h.token(.admin, expires: -60)
        let other = try await TokenAuthority(secret: "another-secret-another-secret-0123456789")
        let forged = try await other.issue(Claims(subject: "x", expires: Date().addingTimeInterval(60), role: .admin, company: nil))
        let path = "/recordings/1732467600.1.opus"
        let late = h.signer.sign(path: path, expires: Int(Date().timeIntervalSince1970) - 5)
        let good = h.signed(path)
        let wrong = good.replacingOccurrences(of: "sig=", with: "sig=A")
        try await h.test { client in
            func code(_ uri: String, _ headers: HTTPFields = [:]) async throws -> String? {
                try await client.execute(uri: uri, method: .get, headers: headers).errorCode
            }
            let json = "/recordings/1732467600.1"
            #expect(try await code(json, h.bearer(expired)) == "expired")
            #expect(try await code(json, h.bearer(forged)) == "bad_signature")
            #expect(try await code(json, h.bearer("not.a.jwt")) == "invalid_token")
            #expect(try await code(late) == "expired")
            #expect(try await code(wrong) == "bad_signature")
            #expect(try await code(path + "?sig=abc") == "missing_claim")
            let roleless = try await h.tokens.keys.sign(Claimless(sub: .init(value: "crm"), exp: .init(value: Date().addingTimeInterval(60))))
            #expect(try await code(json, h.bearer(roleless)) == "missing_claim")
            let ok = try await client.execute(uri: good, method: .get)
            #expect(ok.status == .ok)
        }
    }

    /// Export jobs are bounded per principal (429) and by free space (507).
    @Test func exportsAreBounded() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1")
        let compliance = try await h.token(.compliance)
        let body = #"{"from":"2024-11-24","to":"2024-11-25"}"#
        try await h.test { client in
            // Two jobs of this principal still running (the service takes only queued ones).
            for i in 0..<2 {
                var job = ExportJob(id: String(repeating: "\(i)", count: 32), from: Date(timeIntervalSince1970: 0), to: Date(), company: nil, requestedBy: "tester", now: Date())
                job.status = .running
                try await h.catalog.saveJob(job)
            }
            let r = try await client.execute(uri: "/exports", method: .post, headers: h.bearer(compliance), body: ByteBuffer(string: body))
            #expect(r.status == .tooManyRequests)
            #expect(r.errorCode == "too_many_exports")
            // Another principal is not held up by them.
            let other = try await h.tokens.issue(Claims(subject: "other", expires: Date().addingTimeInterval(60), role: .compliance, company: nil))
            #expect(try await client.execute(uri: "/exports", method: .post, headers: h.bearer(other), body: ByteBuffer(string: body)).status == .accepted)
        }
        try await h.test(limits: ConnectionLimits(maxConnections: 512), freeBytes: { _ in 100 << 20 }) { client in
            let other = try await h.tokens.issue(Claims(subject: "third", expires: Date().addingTimeInterval(60), role: .compliance, company: nil))
            let r = try await client.execute(uri: "/exports", method: .post, headers: h.bearer(other), body: ByteBuffer(string: body))
            #expect(r.status.code == 507)
            #expect(r.errorCode == "insufficient_storage")
        }
    }

    /// After an LGPD erasure the number is nowhere under the data directory: not in the outbox's
    /// events (the `recording.ready` sent earlier, the `recording.deleted` the erasure writes), not
    /// in free pages or the WAL; the audit names it by a keyed HMAC only.
    @Test func erasureLeavesNoTraceOfTheNumber() async throws {
        let dir = TempDir()
        let data = DataDirectory(dir.file("data"))
        let catalog = try Catalog(data: data, recordsEvents: true)
        let number = "5511987654321"
        let spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool + "/acme", withIntermediateDirectories: true)
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let ingestor = Ingestor(
            catalog: catalog, transcoder: Transcoder(), naming: try SpoolNaming(pattern: "{company}/{lead_number}-{uniqueid}.{ext}"), spoolRoot: spool, logger: logger)
        for (i, fixture) in ["speech.wav", "u8.wav"].enumerated() {
            let path = try placeFixture(fixture, at: spool + "/acme/\(number)-173246760\(i).\(i + 1).wav")
            guard case .ingested = ingestor.ingest(path: path) else { throw DecodeError(message: "ingest failed") }
        }
        try catalog.setMetadata("1732467609.9", Metadata(company: "acme", leadNumber: number))  // pending, no audio yet
        let report = try Remover(catalog: catalog).erase(leadNumber: number, actor: "dpo", now: Date())
        #expect(report.count == 2)
        let needle = Data(number.utf8)
        var found: [String] = []
        for file in FileManager.default.enumerator(atPath: data.root)!.compactMap({ $0 as? String }) {
            let path = data.root + "/" + file
            if let bytes = FileManager.default.contents(atPath: path), bytes.range(of: needle) != nil { found.append(file) }
        }
        #expect(found.isEmpty, "the number is still in \(found)")
        let erasure = try #require(try catalog.auditLog(from: nil, to: nil).first { $0.action == "erasure" && $0.uniqueid == nil })
        try Data(number.utf8).write(to: URL(fileURLWithPath: dir.file("number")))
        let bare = try Transcoder.sha256(of: dir.file("number"))
        #expect(erasure.detail?.contains(bare) == false)
        #expect(erasure.detail?.contains("hmac-sha256") == true)
        #expect(try catalog.outbox().count == 4)  // two ready, two deleted: delivered still, without the number
    }

    /// Idle connections and half-sent heads are closed.
    @Test func idleAndSlowConnectionsAreClosed() async throws {
        let h = try await Harness()
        let limits = ConnectionLimits(maxConnections: 3, idleTimeout: .milliseconds(600), headerTimeout: .milliseconds(600))
        try await h.test(limits: limits, freeBytes: FileSystemSpace.free) { client in
            let port = try #require(client.port)
            // A trickled head: one byte every 200 ms never completes; closed by the header timeout.
            let slow = try RawSocket(port: port)
            let started = Date()
            var closed = false
            for byte in Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa".utf8) {
                if !slow.send([byte]) { closed = true; break }
                if slow.isClosed(waitingMilliseconds: 200) { closed = true; break }
            }
            #expect(closed)
            #expect(Date().timeIntervalSince(started) < 3)
            // Idle connections are closed too.
            let idle = try RawSocket(port: port)
            #expect(idle.isClosed(waitingMilliseconds: 2000))

        }
    }

    /// At the cap a newcomer takes an idle connection's place: idle sockets cannot lock clients out
    /// (on the wire; the refusal when every place is busy is checked deterministically below).
    @Test func theCapEvictsIdleConnections() async throws {
        let h = try await Harness()
        let admin = try await h.token(.admin)
        let limits = ConnectionLimits(maxConnections: 3, idleTimeout: .seconds(60), headerTimeout: .seconds(60))
        try await h.test(limits: limits, freeBytes: FileSystemSpace.free) { client in
            let port = try #require(client.port)
            func healthz() throws -> String {
                let fresh = try RawSocket(port: port)
                _ = fresh.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
                return fresh.readAll(waitingMilliseconds: 10_000)
            }
            // Three idle sockets fill the cap: a fresh client still gets through (liveness bounds
            // only: the whole suite on 2 cores stalls for seconds at times).
            let idle = try (0..<3).map { _ in try RawSocket(port: port) }
            try await Task.sleep(for: .milliseconds(500))
            var through = ""
            for _ in 0..<3 where !through.hasPrefix("HTTP/1.1 200") { through = try healthz() }
            #expect(through.hasPrefix("HTTP/1.1 200"), "\(through)")
            #expect(idle.contains { $0.isClosed(waitingMilliseconds: 5000) }, "no idle connection was closed to make room")
        }
    }

    /// The cap's bookkeeping, deterministically: a newcomer takes an idle connection's place (which
    /// is closed, and whose close frees no place), and is refused only when every place is busy;
    /// the refusal is a 503 with the contract's error and the connection closed.
    @Test func theCapTakesIdlePlacesAndRefusesWhenAllAreBusy() throws {
        let counter = ConnectionCounter(ConnectionLimits(maxConnections: 2))
        let a = EmbeddedChannel(), b = EmbeddedChannel(), c = EmbeddedChannel()
        for ch in [a, b, c] { try ch.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
        #expect(counter.tryOpen() && counter.tryOpen())
        counter.setIdle(a, false)
        counter.setIdle(b, false)
        #expect(!counter.tryOpen(), "both places busy: refused")
        counter.setIdle(b, true)
        #expect(counter.tryOpen(), "an idle place is taken")
        #expect(!b.isActive, "the idle connection was closed for it")
        counter.closed(b)  // its close frees no place: the newcomer holds it
        #expect(counter.count == 2)
        counter.setIdle(c, false)
        #expect(!counter.tryOpen())
        counter.closed(a)
        #expect(counter.count == 1 && counter.tryOpen())

        let refused = EmbeddedChannel(handler: ConnectionCounter.Refuse())
        try refused.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var answer = try #require(try refused.readOutbound(as: ByteBuffer.self))
        let text = answer.readString(length: answer.readableBytes) ?? ""
        #expect(text.hasPrefix("HTTP/1.1 503") && text.contains("too_many_connections") && text.contains("Connection: close"), "\(text)")
        #expect(!refused.isActive)
    }

    /// The row cache hears of every commit in this process: a recording moved, held or deleted is
    /// never served from a row read before it. A removal by another process (the CLI) is
    /// a 404 at once, not a 503 while the cached row lives.
    @Test func theCacheFollowsCommits() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1")
        let admin = try await h.token(.admin)
        try await h.test { client in
            #expect(try await client.execute(uri: "/recordings/1732467600.1.opus", method: .get, headers: h.bearer(admin)).status == .ok)
            // A company move committed in this process: 42's viewer loses it at once, though its
            // row was cached a moment ago.
            let viewer = try await h.token(.viewer, company: "42")
            #expect(try await client.execute(uri: "/recordings/1732467600.1.opus", method: .get, headers: h.bearer(viewer)).status == .ok)
            try h.catalog.setMetadata("1732467600.1", Metadata(company: "7"))
            #expect(try await client.execute(uri: "/recordings/1732467600.1.opus", method: .get, headers: h.bearer(viewer)).status == .notFound)
            // Another process (a separate catalog connection, as `callrec erase` has) removes it.
            let cli = try Catalog(data: h.data)
            let row = try cli.delete("1732467600.1", reason: "cli", audit: AuditEntry(at: Date(), actor: "cli", role: nil, company: nil, action: "delete", uniqueid: "1732467600.1"))
            unlink(h.data.absolute(row.opusPath))
            #expect(try await client.execute(uri: "/recordings/1732467600.1.opus", method: .get, headers: h.bearer(admin)).status == .notFound)
        }
    }
}

/// A token without the role claim.
struct Claimless: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    func verify(using _: some JWTAlgorithm) async throws {}
}

/// A quarantined file can be found over HTTP (it used to be a plain 404 everywhere), by an
/// unscoped operator only; retry needs the spool `serve` watches.
struct QuarantineRouteTests {
    @Test func listShowAndRetry() async throws {
        let h = try await Harness()
        let junk = h.dir.file("1732467600.3.wav")
        try Data("not audio at all".utf8).write(to: URL(fileURLWithPath: junk))
        guard case .quarantined(let reason) = h.ingestor.ingest(path: junk) else { throw DecodeError(message: "not quarantined") }
        let compliance = try await h.token(.compliance)
        let scoped = try await h.token(.compliance, company: "42")
        let admin = try await h.token(.admin)
        try await h.test { client in
            let list = try await client.execute(uri: "/quarantine", method: .get, headers: h.bearer(compliance))
            #expect(list.status == .ok)
            let items = try #require(list.json["items"] as? [[String: Any]])
            #expect(items.count == 1)
            #expect(items.first?["source_name"] as? String == "1732467600.3.wav")
            #expect(items.first?["reason"] as? String == reason)
            let id = try #require(items.first?["id"] as? Int)
            let one = try await client.execute(uri: "/quarantine/\(id)", method: .get, headers: h.bearer(compliance))
            #expect(one.status == .ok && one.json["reason"] as? String == reason)
            #expect(try await client.execute(uri: "/quarantine", method: .get, headers: h.bearer(scoped)).status == .forbidden)
            #expect(try await client.execute(uri: "/quarantine/999", method: .get, headers: h.bearer(compliance)).status == .notFound)
            #expect(try await client.execute(uri: "/quarantine/\(id)/retry", method: .post, headers: h.bearer(compliance)).status == .forbidden)
            let retry = try await client.execute(uri: "/quarantine/\(id)/retry", method: .post, headers: h.bearer(admin))
            #expect(retry.status == .serviceUnavailable && retry.errorCode == "no_spool")
        }
    }
}

/// A plain TCP client, for what an HTTP client library will not do (trickle a head, hold a socket).
final class RawSocket: @unchecked Sendable {
    let fd: Int32

    /// `receiveBuffer`: SO_RCVBUF, set before connecting (a reader that takes little at a time).
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw DecodeError(message: "connect: \(String(cString: strerror(errno)))") }
    }

    deinit { Glibc.close(fd) }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count }

    /// Whether the peer closed within the wait (a read returns 0 or fails).
    func isClosed(waitingMilliseconds ms: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, ms) > 0 else { return false }
        var b = [UInt8](repeating: 0, count: 4096)
        return recv(fd, &b, b.count, 0) <= 0
    }

    func readAll(waitingMilliseconds ms: Int32) -> String {
        var out: [UInt8] = []
        var b = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, ms) > 0 else { break }
            let n = recv(fd, &b, b.count, 0)
            if n <= 0 { break }
            out += b[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
