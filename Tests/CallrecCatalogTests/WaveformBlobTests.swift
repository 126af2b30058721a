import CallrecTestSupport
import Foundation
import GRDB
import Testing

@testable import CallrecCatalog
@testable import CallrecMedia

/// The waveform committed in pieces through SQLite's incremental blob I/O (`Catalog.saveWaveform`):
/// what is stored is `Waveform.json()` byte for byte, and a commit that fails half-way through the
/// JSON leaves the catalog as it was.
@Suite(.offThePool)
struct WaveformBlobTests {
    /// Real peaks of real audio: the fixture (or `seconds` of it, looped) through the Transcoder;
    /// `stereo` puts the same audio, rotated by 7 s, on a second channel.
    static func waveform(_ dir: TempDir, seconds: Int? = nil, stereo: Bool = false) throws -> Waveform {
        var source = Paths.fixture("speech.wav")
        if let seconds {
            let looped = dir.file("long-\(seconds).wav")
            let r = try run("sox", [source, looped, "repeat", String(seconds / 6 + 1), "trim", "0", String(seconds)])
            #expect(r.status == 0, "\(r.err)")
            source = looped
        }
        if stereo {
            let rotated = dir.file("rotated.wav"), merged = dir.file("stereo.wav")
            let head = dir.file("head.wav"), tail = dir.file("tail.wav")
            for args in [[source, tail, "trim", "7"], [source, head, "trim", "0", "7"], [tail, head, rotated], ["-M", source, rotated, merged]] {
                let r = try run("sox", args)
                #expect(r.status == 0, "sox \(args): \(r.err)")
            }
            source = merged
        }
        let w = try Transcoder().transcode(input: source, output: dir.file("w.opus"), tags: RecordingTags(uniqueid: "1")).waveform
        #expect(w.channels == (stereo ? 2 : 1))
        return w
    }

    static func count(_ catalog: Catalog, _ table: String, _ uniqueid: String) throws -> Int {
        try catalog.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table) WHERE uniqueid = ?", arguments: [uniqueid]) ?? -1 }
    }

    /// Mono and stereo, a few seconds (one piece) and 10 minutes (several 64 KiB pieces: 10 min of
    /// stereo is 120,000 peaks, ~340 KB of JSON): stored exactly as `json()` writes it, and as
    /// JSONEncoder writes the waveform.
    @Test(arguments: [(nil, false), (nil, true), (600, false), (600, true)] as [(Int?, Bool)])
    func storedBytesAreJSONs(seconds: Int?, stereo: Bool) throws {
        let dir = TempDir()
        let w = try Self.waveform(dir, seconds: seconds, stereo: stereo)
        let catalog = try Catalog(data: DataDirectory(dir.path))
        let row = sampleRow("1732467600.42", startedAt: 1_732_467_600)
        try catalog.commit(recording: row, parts: [part(row.uniqueid, sha: "s1")], waveform: w)
        let stored = try #require(try catalog.waveform(row.uniqueid))
        let json = w.json()
        if seconds != nil { #expect(json.count > 2 * Catalog.blobChunkSize, "\(json.count) B: not several pieces") }
        #expect(stored.count == json.count)
        #expect(stored == json)
        #expect(stored == (try JSONEncoder.callrec.encode(w)))
        // A second commit of the same recording (an append re-makes it) replaces the peaks.
        let shorter = Waveform(channels: w.channels, sampleRate: w.sampleRate, samplesPerPixel: w.samplesPerPixel, length: 1, data: Array(w.data.prefix(w.channels * 2)))
        try catalog.commit(recording: row, parts: [part(row.uniqueid, sha: "s1")], waveform: shorter)
        #expect(try catalog.waveform(row.uniqueid) == shorter.json())
        #expect(try Self.count(catalog, "waveform", row.uniqueid) == 1)
    }

    /// A blob whose writer fails, or hands over more or fewer bytes than it announced.
    struct Faulty: StreamedBlob {
        enum Fault { case throwsAfter(Int), extraByte, missingByte }
        struct Broken: Error {}
        let base: Data
        let fault: Fault
        var byteCount: Int { base.count }
        func write(chunkSize: Int, to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            var pieces = 0
            switch fault {
            case .throwsAfter(let n):
                try base.write(chunkSize: chunkSize) { piece in
                    if pieces == n { throw Broken() }
                    pieces += 1
                    try sink(piece)
                }
            case .extraByte: try (base + Data("}".utf8)).write(chunkSize: chunkSize, to: sink)
            case .missingByte: try base.dropLast().write(chunkSize: chunkSize, to: sink)
            }
        }
    }

    /// A failure in the middle of the waveform rolls the whole commit back: no recording, parts,
    /// waveform or event for a new recording; the previous row, parts and peaks for one stored
    /// before. So does a length that is off by one byte either way.
    @Test func aFailureHalfWayLeavesNothing() throws {
        let dir = TempDir()
        let json = try Self.waveform(dir, seconds: 600, stereo: true).json()
        #expect(json.count > 4 * Catalog.blobChunkSize)
        let catalog = try Catalog(data: DataDirectory(dir.path))
        let id = "1732467600.42"
        let row = sampleRow(id, startedAt: 1_732_467_600)
        for fault in [Faulty.Fault.throwsAfter(2), .throwsAfter(0), .extraByte, .missingByte] {
            #expect(throws: (any Error).self, "\(fault)") {
                try catalog.commit(recording: row, parts: [part(id, sha: "s1")], waveform: Faulty(base: json, fault: fault))
            }
            #expect(try catalog.recording(id) == nil, "\(fault)")
            for table in ["recording", "source_part", "waveform", "outbox"] {
                #expect(try Self.count(catalog, table, id) == 0, "\(fault): \(table)")
            }
        }

        // Stored once; then a re-commit (as after an append) fails half-way: the first stays whole.
        let small = Data(#"{"bits":8,"channels":1,"data":[0,1],"length":1,"sample_rate":8000,"samples_per_pixel":160,"version":2}"#.utf8)
        try catalog.commit(recording: row, parts: [part(id, sha: "s1")], waveform: small)
        var changed = row
        changed.samples = 16000
        #expect(throws: Faulty.Broken.self) {
            try catalog.commit(recording: changed, parts: [part(id, sha: "s2")], waveform: Faulty(base: json, fault: .throwsAfter(3)))
        }
        #expect(try catalog.recording(id) == row)
        #expect(try catalog.parts(of: id).map(\.sha256) == ["s1"])
        #expect(try catalog.waveform(id) == small)
        // And the catalog still takes the next commit.
        try catalog.commit(recording: changed, parts: [part(id, sha: "s2")], waveform: json)
        #expect(try catalog.waveform(id) == json)
        #expect(try catalog.recording(id)?.samples == 16000)
    }
}
