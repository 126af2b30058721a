import CallrecTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CallrecServer

/// `/openapi.yaml` stays true: every path and method it lists is routed by the live server (no
/// 404 "no such route", no 405) and answers one of the statuses it documents.
@Suite(.offThePool)
struct OpenAPITests {
    @Test func everyDocumentedOperationExists() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: "1732467600.1")
        let admin = try await h.token(.admin)
        try await h.test { client in
            let doc = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(doc.status == .ok)
            #expect(doc.text.hasPrefix("openapi: 3.1.0"))
            // paths → methods → documented statuses, read from the YAML's indentation.
            var operations: [(path: String, method: String, statuses: Set<Int>)] = []
            var inPaths = false
            var path = ""
            for line in doc.text.split(separator: "\n", omittingEmptySubsequences: false) {
                if line == "paths:" { inPaths = true; continue }
                guard inPaths else { continue }
                if line.hasPrefix("  /") { path = String(line.dropFirst(2).dropLast()) }
                else if line.hasPrefix("    "), !line.hasPrefix("     "), let colon = line.firstIndex(of: ":") {
                    let method = line[line.index(line.startIndex, offsetBy: 4)..<colon]
                    guard ["get", "head", "put", "delete", "post"].contains(method) else { continue }
                    operations.append((path, String(method), []))
                } else if !operations.isEmpty {
                    for m in line.matches(of: /"([0-9]{3})"/) { operations[operations.count - 1].statuses.insert(Int(m.1)!) }
                }
            }
            #expect(operations.count >= 11)
            for op in operations {
                let uri = op.path.replacingOccurrences(of: "{file}", with: "1732467600.1.opus").replacingOccurrences(of: "{company}", with: "42")
                    .replacingOccurrences(of: "exports/{id}", with: "exports/" + String(repeating: "0", count: 32))
                    .replacingOccurrences(of: "quarantine/{id}", with: "quarantine/1").replacingOccurrences(of: "{id}", with: "1732467600.1")
                let bodies = [
                    "/recordings/{id}/hold": #"{"reason":"audit"}"#, "/recordings/{id}/metadata": #"{"agent":"1"}"#,
                    "/exports": #"{"from":"2024-11-24","to":"2024-11-25"}"#, "/holds": #"{"company":"9","reason":"audit"}"#,
                    "/erasures": #"{"lead_number":"000"}"#, "/retention/{company}": #"{"days":30}"#,
                    "/tokens/revocations": #"{"jti":"openapi-test"}"#,
                ]
                let body: String? = op.method == "put" || op.method == "post" ? bodies[op.path] : nil
                let r = try await client.execute(
                    uri: uri, method: HTTPRequest.Method(op.method.uppercased())!, headers: h.bearer(admin), body: body.map { ByteBuffer(string: $0) })
                #expect(r.status != .methodNotAllowed && (r.errorCode != "not_found" || op.method == "delete" || op.path.hasPrefix("/exports/") || op.path.hasPrefix("/quarantine/")), "\(op.method) \(op.path) → \(r.status)")
                if !op.statuses.isEmpty {
                    #expect(op.statuses.contains(Int(r.status.code)), "\(op.method) \(op.path) answered \(r.status.code), documented \(op.statuses.sorted())")
                }
            }
        }
    }

    /// The document hangs together: every `$ref` names a component it defines, and every
    /// operation that needs credentials documents the 401 it answers without them.
    @Test func documentIsSelfConsistent() {
        let text = OpenAPIRoute.document
        #expect(!text.contains("\t"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // components → kind (2 spaces in) → names (4 spaces in)
        var defined = Set<String>()
        var kind = ""
        var inComponents = false
        for line in lines {
            if line == "components:" { inComponents = true; continue }
            if !line.hasPrefix(" ") { inComponents = false }
            guard inComponents else { continue }
            if line.hasPrefix("  "), !line.hasPrefix("   "), line.hasSuffix(":") { kind = String(line.dropFirst(2).dropLast()) }
            else if line.hasPrefix("    "), !line.hasPrefix("     "), let colon = line.firstIndex(of: ":") {
                defined.insert(kind + "/" + line[line.index(line.startIndex, offsetBy: 4)..<colon])
            }
        }
        for m in text.matches(of: /\$ref: '#\/components\/([A-Za-z]+\/[A-Za-z]+)'/) {
            #expect(defined.contains(String(m.1)), "$ref to #/components/\(m.1), which is not defined")
        }
        // Each operation's block: from its method line to the next line indented 4 or less.
        var op: (name: String, secured: Bool, has401: Bool)?
        var ops: [(name: String, secured: Bool, has401: Bool)] = []
        var path = ""
        var inPaths = false
        for line in lines + ["end:"] {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            let indent = line.prefix { $0 == " " }.count
            if indent <= 4, let o = op { ops.append(o); op = nil }
            if indent == 2 { path = String(line.dropFirst(2).dropLast()) }
            if indent == 4, let method = line.dropFirst(4).split(separator: ":").first, ["get", "head", "put", "post", "delete"].contains(method) {
                op = ("\(method) \(path)", false, false)
            }
            if op != nil, line.contains("security: [{bearer") { op!.secured = true }
            if op != nil, line.contains("\"401\"") { op!.has401 = true }
        }
        #expect(ops.count >= 20)
        for o in ops where o.secured { #expect(o.has401, "\(o.name) needs credentials but documents no 401") }
    }
}
