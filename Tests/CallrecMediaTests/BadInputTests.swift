import Foundation
import CallrecTestSupport
import Testing

@testable import CallrecMedia

/// Bad input: a clear error, nothing written, the input untouched.
@Suite(.offThePool)
struct BadInputTests {
    @Test(arguments: ["bad-empty.wav", "bad-random.wav", "bad-text.wav", "bad-truncated.wav", "bad-channels.wav", "bad-zerohz.wav"])
    func refused(_ name: String) throws {
        let dir = TempDir()
        let before = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture(name)))
        #expect {
            try Transcoder().transcode(input: Paths.fixture(name), output: dir.file("o.opus"), tags: RecordingTags(uniqueid: "b"))
        } throws: { error in
            guard let e = error as? MediaError else { return false }
            return e.isPermanent && !e.message.contains("\n")
        }
        #expect(dir.contents.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: Paths.fixture(name))) == before)
    }

    @Test func missingAndDirectory() throws {
        let dir = TempDir()
        for input in [dir.file("nope.wav"), dir.path] {
            #expect(throws: MediaError.self) {
                try Transcoder().transcode(input: input, output: dir.file("o.opus"), tags: RecordingTags(uniqueid: "b"))
            }
        }
        #expect(dir.contents.isEmpty)
    }

    /// Failing to write (no such directory) is not the audio's fault: not permanent.
    @Test func unwritableOutputIsTransient() throws {
        do {
            _ = try Transcoder().transcode(input: Paths.fixture("speech.wav"), output: "/nonexistent-dir/o.opus", tags: RecordingTags(uniqueid: "b"))
            Issue.record("expected a failure")
        } catch let e as MediaError {
            #expect(!e.isPermanent)
        }
    }
}

/// A decoder fuzz test: random bytes, truncations and bit flips of real fixtures, under every
/// extension. The pipeline either succeeds with a verified file or fails with a MediaError; it
/// never crashes and never leaves a file behind on failure.
@Suite(.offThePool)
struct FuzzTests {
    struct LCG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
    }

    @Test func randomAndMutatedInputs() throws {
        let dir = TempDir()
        var rng = LCG(state: 20261125)
        let seeds = ["speech.wav", "speech.WAV", "crashed.wav", "hd48k-24bit.wav", "stereo16k.wav", "speech.gsm"]
        let extensions = ["wav", "WAV", "wav16", "gsm", "ulaw", "alaw", "sln", "sln16"]
        var outcomes = (ok: 0, refused: 0)
        for round in 0..<120 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:  // random bytes, sometimes behind a real RIFF header
                bytes = (0..<Int(rng.next() % 3000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if rng.next() % 2 == 0 {
                    let head = try Array(Data(contentsOf: URL(fileURLWithPath: Paths.fixture("speech.wav"))).prefix(44))
                    bytes = head + bytes
                }
            case 1:  // a truncated fixture
                let seed = try Array(Data(contentsOf: URL(fileURLWithPath: Paths.fixture(seeds[Int(rng.next()) % seeds.count]))))
                bytes = Array(seed.prefix(Int(rng.next()) % min(seed.count, 4000)))
            default:  // a fixture with its header bytes flipped
                var seed = try Array(Data(contentsOf: URL(fileURLWithPath: Paths.fixture(seeds[Int(rng.next()) % seeds.count]))).prefix(6000))
                for _ in 0..<(1 + Int(rng.next() % 6)) {
                    seed[Int(rng.next()) % min(seed.count, 80)] = UInt8(truncatingIfNeeded: rng.next())
                }
                bytes = seed
            }
            let input = dir.file("in-\(round).\(extensions[Int(rng.next()) % extensions.count])")
            try Data(bytes).write(to: URL(fileURLWithPath: input))
            let output = dir.file("out-\(round).opus")
            do {
                let r = try Transcoder().transcode(input: input, output: output, tags: RecordingTags(uniqueid: "f"))
                #expect(FileManager.default.fileExists(atPath: output))
                // Whatever the input was, a success is a verified file of exactly the decoded samples.
                let rate = r.measurements.sampleRate
                if Transcoder.encoderRate(for: rate) == rate { #expect(r.opus.samples(at: rate) == r.measurements.samples) }
                #expect(r.opus.sha256 == (try Transcoder.sha256(of: output)))
                outcomes.ok += 1
            } catch let e as MediaError {
                #expect(!FileManager.default.fileExists(atPath: output), "\(e)")
                outcomes.refused += 1
            }
            try? FileManager.default.removeItem(atPath: input)
            try? FileManager.default.removeItem(atPath: output)
        }
        #expect(outcomes.ok > 0 && outcomes.refused > 0)
        #expect(dir.contents.isEmpty, "no temporary files left: \(dir.contents)")
    }
}
