import Testing

@testable import CallrecIngest

struct SpoolNamingTests {
    @Test func plainAndSystemName() throws {
        let n = try SpoolNaming()
        #expect(n.parse("1732467600.42.wav")?.uniqueid == "1732467600.42")
        #expect(n.parse("pbx1-1732467600.42.wav")?.uniqueid == "pbx1-1732467600.42")
        #expect(n.parse("sp-pbx-01-1732467600.42.WAV")?.uniqueid == "sp-pbx-01-1732467600.42")
        #expect(n.parse("2026/11/24/1732467600.42.wav16")?.ext == "wav16")
        #expect(n.parse("notes.txt") == nil)
    }

    @Test func freePBX() throws {
        let n = try SpoolNaming()
        let out = try #require(n.parse("2026/11/24/out-5511999990000-1001-20261124-170000-1732467600.42.wav"))
        #expect(out.uniqueid == "1732467600.42")
        #expect(out.metadata.leadNumber == "5511999990000")
        #expect(out.metadata.agent == "1001")
        let inbound = try #require(n.parse("in-1001-5511988887777-20261124-170000-1732467600.43.wav"))
        #expect(inbound.metadata.leadNumber == "5511988887777")
        #expect(inbound.metadata.agent == "1001")
        let q = try #require(n.parse("q-500-5511-20261124-170000-pbx1-1732467600.44.wav"))
        #expect(q.uniqueid == "pbx1-1732467600.44")
    }

    @Test func configuredPattern() throws {
        let n = try SpoolNaming(pattern: "{company}/{agent}-{lead_number}-{uniqueid}.{ext}")
        let r = try #require(n.parse("42/1001-5511999990000-1732467600.42.wav"))
        #expect(r.uniqueid == "1732467600.42")
        #expect(r.metadata.company == "42")
        #expect(r.metadata.agent == "1001")
        #expect(r.metadata.leadNumber == "5511999990000")
        // Other names still fall back to FreePBX and plain uniqueids.
        #expect(try SpoolNaming(pattern: "{company}/{uniqueid}.{ext}").parse("1732467600.9.wav")?.uniqueid == "1732467600.9")
        #expect(throws: SpoolNamingError.self) { try SpoolNaming(pattern: "{company}.{ext}") }
        #expect(throws: SpoolNamingError.self) { try SpoolNaming(pattern: "{nope}/{uniqueid}.{ext}") }
    }

    @Test func candidates() {
        #expect(SpoolNaming.isCandidate(fileName: "1732467600.42.wav"))
        #expect(SpoolNaming.isCandidate(fileName: "1732467600.42.WAV"))
        #expect(SpoolNaming.isCandidate(fileName: "1732467600.42.sln16"))
        #expect(!SpoolNaming.isCandidate(fileName: ".1732467600.42.wav"))
        #expect(!SpoolNaming.isCandidate(fileName: "1732467600.42.wav~"))
        #expect(!SpoolNaming.isCandidate(fileName: "1732467600.42.wav.tmp"))
        #expect(!SpoolNaming.isCandidate(fileName: "1732467600.42.txt"))
    }
}
