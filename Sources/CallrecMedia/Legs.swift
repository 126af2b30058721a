import Foundation

/// One MixMonitor `r()`/`t()` leg to combine: an open file (which stays the caller's), its name
/// (for its format and for errors) and its SHA-256 (the caller hashed it to find duplicates).
public struct LegSource: Sendable {
    public var descriptor: Int32
    public var name: String
    public var sha256: String
    public init(descriptor: Int32, name: String, sha256: String) {
        self.descriptor = descriptor
        self.name = name
        self.sha256 = sha256
    }
}

/// Two mono readers as one stereo stream: channel 0 from `left`, channel 1 from `right`. Asterisk
/// keeps its legs the same length sample for sample; should one end early, its side is padded
/// with zeros to the other's length (and `padded` says by how many frames), never cut.
final class InterleaveReader: PCMReader {
    let sampleRate: Int
    let channels = 2
    private let left: SourceReader
    private let right: SourceReader
    private var leftDone = false
    private var rightDone = false
    private var l: [Int16] = []
    private var r: [Int16] = []
    private(set) var padded = 0

    init(left: SourceReader, right: SourceReader) throws {
        guard left.info.channels == 1, right.info.channels == 1 else {
            throw MediaError(.unsupported, "r()/t() legs must be mono; \(left.info.channels) and \(right.info.channels) channels found")
        }
        guard left.info.sampleRate == right.info.sampleRate else {
            throw MediaError(.unsupported, "r()/t() legs at different rates (\(left.info.sampleRate) and \(right.info.sampleRate) Hz)")
        }
        self.left = left
        self.right = right
        sampleRate = left.info.sampleRate
    }

    func read(into buffer: UnsafeMutablePointer<Int16>, frames: Int) throws -> Int {
        if l.count < frames { l = [Int16](repeating: 0, count: frames) }
        if r.count < frames { r = [Int16](repeating: 0, count: frames) }
        let nl = leftDone ? 0 : try l.withUnsafeMutableBufferPointer { try Self.fill(left, $0.baseAddress!, frames) }
        let nr = rightDone ? 0 : try r.withUnsafeMutableBufferPointer { try Self.fill(right, $0.baseAddress!, frames) }
        if nl < frames { leftDone = true }
        if nr < frames { rightDone = true }
        let n = max(nl, nr)
        if n > 0, nl != nr { padded += n - min(nl, nr) }
        for i in 0..<n {
            buffer[2 * i] = i < nl ? l[i] : 0
            buffer[2 * i + 1] = i < nr ? r[i] : 0
        }
        return n
    }

    /// Reads exactly `frames` frames unless the source ends.
    static func fill(_ reader: SourceReader, _ p: UnsafeMutablePointer<Int16>, _ frames: Int) throws -> Int {
        var done = 0
        while done < frames {
            let n = try reader.read(into: p + done, frames: frames - done)
            if n == 0 { break }
            done += n
        }
        return done
    }
}

/// What checking a mixed file against its legs found.
public enum MixCheck: Sendable, Equatable {
    /// Every sample of the mix is the saturated sum of the legs' (within ±`tolerance`).
    case equal(samples: Int)
    /// It is not: the first frame that differs, or a length or format that does not match.
    case differs(String)
}

extension Transcoder {
    /// The most a mix sample may differ from the saturated sum of the legs' (a codec's rounding).
    public static let mixTolerance = 2

    /// Transcodes two MixMonitor legs into one 2-channel recording: channel 0 from `read` (the
    /// `r()` leg, read from the recorded channel), channel 1 from `write`. The OpusTags carry both
    /// legs' SOURCE_SHA256, read leg first. Same guarantees as `transcode` (verified, atomic).
    public func transcode(read: LegSource, write: LegSource, output: String, tags: RecordingTags) throws -> TranscodeResult {
        let left = try SourceReader(descriptor: read.descriptor, name: read.name)
        let right = try SourceReader(descriptor: write.descriptor, name: write.name)
        let reader = try InterleaveReader(left: left, right: right)
        var info = left.info
        info.channels = 2
        info.bytes = left.info.bytes + right.info.bytes
        info.recoveredHeader = left.info.recoveredHeader || right.info.recoveredHeader
        return try run(
            reader: reader, info: info, sources: [read.sha256, write.sha256], timeDescriptor: read.descriptor, input: read.name,
            output: output, tags: tags, previous: nil, sourceFramesRead: { left.framesRead })
    }

    /// Whether the mixed file behind `mix` is exactly the saturated sum of the two legs (MixMonitor
    /// mixes by adding with saturation), sample for sample, within `mixTolerance`. Reads all three
    /// in blocks; nothing is kept.
    public static func checkMix(mix: (descriptor: Int32, name: String), read: (descriptor: Int32, name: String), write: (descriptor: Int32, name: String)) throws -> MixCheck {
        let m = try SourceReader(descriptor: mix.descriptor, name: mix.name)
        let legs = try InterleaveReader(
            left: try SourceReader(descriptor: read.descriptor, name: read.name), right: try SourceReader(descriptor: write.descriptor, name: write.name))
        guard m.info.channels == 1 else { return .differs("the mix has \(m.info.channels) channels") }
        guard m.info.sampleRate == legs.sampleRate else {
            return .differs("the mix is at \(m.info.sampleRate) Hz, the legs at \(legs.sampleRate) Hz")
        }
        let block = 8192
        var a = [Int16](repeating: 0, count: block), b = [Int16](repeating: 0, count: 2 * block)
        var frame = 0
        while true {
            let nm = try a.withUnsafeMutableBufferPointer { try InterleaveReader.fill(m, $0.baseAddress!, block) }
            let nl = try b.withUnsafeMutableBufferPointer { p -> Int in
                var done = 0
                while done < block {
                    let n = try legs.read(into: p.baseAddress! + 2 * done, frames: block - done)
                    if n == 0 { break }
                    done += n
                }
                return done
            }
            for i in 0..<min(nm, nl) {
                let sum = max(-32768, min(32767, Int(b[2 * i]) + Int(b[2 * i + 1])))
                if abs(sum - Int(a[i])) > mixTolerance {
                    return .differs("sample \(frame + i) of the mix is \(a[i]), the legs sum to \(sum)")
                }
            }
            if nm != nl { return .differs("the mix has \(nm < nl ? "fewer" : "more") samples than the legs (they differ from frame \(frame + min(nm, nl)))") }
            frame += nm
            if nm < block { break }
        }
        return .equal(samples: frame)
    }
}
