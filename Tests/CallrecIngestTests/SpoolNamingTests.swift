import CallrecTestSupport
import Testing

@testable import CallrecIngest

@Suite(.offThePool)
struct SpoolNamingTests {
    @Test func plainAndSystemName() throws {
        let n = try SpoolNaming()
        #expect(n.parse("1732467600.42.wav")?.uniqueid == "1732467600.42")
        #expect(n.parse("pbx1-1732467600.42.wav")?.uniqueid == "pbx1-1732467600.42")
        #expect(n.parse("sp-pbx-01-1732467600.42.WAV")?.uniqueid == "sp-pbx-01-1732467600.42")
        #expect(n.parse("2026/11/24/1732467600.42.wav16")?.ext == "wav16")
        #expect(n.parse("notes.txt") == nil)
    }

    /// MixMonitor `r()`/`t()` legs: `-r`/`-t` (and `-in`/`-out`) name the side of `<uniqueid>`.
    @Test func legs() throws {
        let n = try SpoolNaming()
        let r = try #require(n.parse("1795635600.57-r.wav"))
        #expect(r.uniqueid == "1795635600.57")
        #expect(r.leg == .read)
        #expect(n.parse("1795635600.57-t.wav")?.leg == .write)
        #expect(n.parse("sub/1795635600.57-in.WAV")?.leg == .read)
        #expect(n.parse("pbx1-1795635600.57-out.wav")?.leg == .write)
        #expect(n.parse("pbx1-1795635600.57-out.wav")?.uniqueid == "pbx1-1795635600.57")
        #expect(n.parse("1795635600.57.wav")?.leg == nil)
        #expect(n.parse("out-5511-1001-20261124-170000-1795635600.57-t.wav")?.leg == .write)
        let p = try SpoolNaming(pattern: "{company}/{uniqueid}.{leg}.{ext}")
        #expect(p.parse("42/1795635600.57.in.wav")?.leg == .read)
        #expect(p.parse("42/1795635600.57.in.wav")?.metadata.company == "42")
    }

    /// `{channels}` tells a `.raw` file's channel count (MixMonitor `D` writes 2).
    @Test func channelsPlaceholder() throws {
        let n = try SpoolNaming(pattern: "{channels}ch/{uniqueid}.{ext}")
        #expect(n.parse("2ch/1795635585.53.raw")?.channels == 2)
        #expect(n.parse("1ch/1795635585.53.raw")?.channels == 1)
        #expect(n.parse("1795635585.53.raw")?.channels == nil)
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
