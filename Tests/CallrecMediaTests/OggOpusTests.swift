import CallrecMedia
import CallrecTestSupport
import Foundation
import Testing

/// The one Ogg page reader and OpusHead parser behind OpusVerifier, OpusReader and WavView: a
/// stored file that was damaged in any of these ways is refused by the verifier, never passed.
@Suite(.offThePool)
struct OggOpusTests {
    /// A stored recording of a real fixture, and its bytes.
    static func stored(_ dir: TempDir) throws -> (String, [UInt8]) {
        let out = dir.file("a.opus")
        _ = try Transcoder().transcode(input: Paths.fixture("speech.wav"), output: out, tags: RecordingTags(uniqueid: "1732467600.1"))
        return (out, Array(try Data(contentsOf: URL(fileURLWithPath: out))))
    }

    static func refused(_ bytes: [UInt8], _ dir: TempDir, _ label: String) throws -> String? {
        let path = dir.file("\(label).opus")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try OpusVerifier.inspect(path: path)
            return nil
        } catch let e as MediaError {
            #expect(e.kind == .verification, "\(label): \(e)")
            return e.message
        }
    }

    @Test func damagedFilesAreRefused() throws {
        let dir = TempDir()
        let (path, bytes) = try Self.stored(dir)
        let good = try OpusVerifier.inspect(path: path)
        #expect(good.channels == 1 && good.inputSampleRate == 8000 && good.preSkip > 0)
        #expect(good.bytes == bytes.count)

        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x40  // a CRC no longer matches: libogg skips the page
        #expect(try Self.refused(flipped, dir, "flipped")?.contains("lost sync") == true)

        let truncated = Array(bytes.prefix(bytes.count - 100))  // no end-of-stream page
        #expect(try Self.refused(truncated, dir, "truncated") != nil)

        let junk = bytes + Array("trailing junk that is not a page".utf8)
        #expect(try Self.refused(junk, dir, "junk") != nil)

        let twice = bytes + bytes  // a second stream after the end
        #expect(try Self.refused(twice, dir, "twice")?.contains("after the end") == true)

        var notHead = bytes
        let at = try #require(Self.find(Array("OpusHead".utf8), in: bytes))
        notHead[at + 8] = 0x20  // version 32: not an OpusHead callrec can read (and the CRC breaks too)
        #expect(try Self.refused(notHead, dir, "version") != nil)
    }

    /// WavView reads the same header and pages: its length is the verifier's sample count.
    @Test func wavViewAgreesWithTheVerifier() throws {
        let dir = TempDir()
        let (path, _) = try Self.stored(dir)
        let info = try OpusVerifier.inspect(path: path, decodeRate: 8000)
        let view = try WavView(path: path)
        #expect(view.samples == info.samples(at: 8000))
        #expect(view.channels == info.channels && view.sampleRate == 8000)
        #expect(view.contentLength == 44 + info.samples(at: 8000) * 2)
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        return (0...(hay.count - needle.count)).first { hay[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
