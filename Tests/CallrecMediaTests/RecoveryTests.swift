import Foundation
import CallrecTestSupport
import Testing

@testable import CallrecMedia

/// Recordings Asterisk never closed: the header's sizes are 0 or stale, the audio is all there.
@Suite(.offThePool)
struct RecoveryTests {
    @Test(arguments: [("crashed.wav", "speech.wav"), ("stale.wav", "speech.wav"), ("crashed.WAV", "speech.WAV")])
    func recoversUnclosedHeaders(_ damaged: String, _ intact: String) throws {
        let dir = TempDir()
        let good = try Transcoder().transcode(input: Paths.fixture(intact), output: dir.file("good.opus"), tags: RecordingTags(uniqueid: "g"))
        let r = try Transcoder().transcode(input: Paths.fixture(damaged), output: dir.file("bad.opus"), tags: RecordingTags(uniqueid: "g"))
        #expect(r.source.recoveredHeader)
        #expect(!good.source.recoveredHeader)
        #expect(r.measurements == good.measurements)
        #expect(try opusfileDecode(dir.file("bad.opus")).total == 48000 * 6)
    }

    /// A file cut in the middle of a sample (or a GSM block) keeps every whole one.
    @Test(arguments: [("speech.wav", 2, 1001, 1000), ("speech.WAV", 65, 27, 320)])
    func recoversToTheLastWholeBlock(_ name: String, _ blockBytes: Int, _ cut: Int, _ samplesPerBlock: Int) throws {
        let dir = TempDir()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture(name)))
        let header = name == "speech.wav" ? 44 : 60
        // Asterisk killed mid-write: sizes 0, and the last block only partly on disk.
        bytes.replaceSubrange(4..<8, with: [0, 0, 0, 0])
        bytes.replaceSubrange(header - 4..<header, with: [0, 0, 0, 0])
        let blocks = 100
        bytes = bytes.prefix(header + blocks * blockBytes + (cut % blockBytes))
        let path = dir.file("1732467600.9.\(name.split(separator: ".").last!)")
        try bytes.write(to: URL(fileURLWithPath: path))
        let r = try Transcoder().transcode(input: path, output: dir.file("o.opus"), tags: RecordingTags(uniqueid: "o"))
        #expect(r.measurements.samples == blocks * (name == "speech.wav" ? 1 : samplesPerBlock))
    }

    /// A trailing chunk after the audio (LIST) is not audio: a declared size followed by a real
    /// chunk is believed.
    @Test func trailingChunkIsNotAudio() throws {
        let dir = TempDir()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("speech.wav")))
        let list = Data("LIST".utf8) + Data([12, 0, 0, 0]) + Data("INFOISFT\u{0}\u{0}\u{0}\u{0}".utf8)
        bytes += list
        let riff = UInt32(bytes.count - 8)
        bytes.replaceSubrange(4..<8, with: withUnsafeBytes(of: riff.littleEndian) { Data($0) })
        let path = dir.file("list.wav")
        try bytes.write(to: URL(fileURLWithPath: path))
        let r = try Transcoder().transcode(input: path, output: dir.file("o.opus"), tags: RecordingTags(uniqueid: "o"))
        #expect(r.measurements.samples == 48000)
        #expect(!r.source.recoveredHeader)
    }
}
