import Foundation

/// Silence on the mono mix, as the contract defines it: consecutive 20 ms windows from the start,
/// silent when their RMS is below `thresholdDBFS`, gathered into runs of at least `minMs`.
public struct Silence: Codable, Sendable, Equatable {
    public var thresholdDBFS: Double
    public var minMs: Int
    public var totalMs: Int
    public var ratio: Double
    public var longestMs: Int
    public var leadingMs: Int
    public var trailingMs: Int
    public var segments: [[Int]]

    public init(thresholdDBFS: Double, minMs: Int, totalMs: Int, ratio: Double, longestMs: Int, leadingMs: Int, trailingMs: Int, segments: [[Int]]) {
        self.thresholdDBFS = thresholdDBFS
        self.minMs = minMs
        self.totalMs = totalMs
        self.ratio = ratio
        self.longestMs = longestMs
        self.leadingMs = leadingMs
        self.trailingMs = trailingMs
        self.segments = segments
    }

    enum CodingKeys: String, CodingKey {
        case thresholdDBFS = "threshold_dbfs", minMs = "min_ms", totalMs = "total_ms", ratio
        case longestMs = "longest_ms", leadingMs = "leading_ms", trailingMs = "trailing_ms", segments
    }
}

/// Levels over every sample of every channel. A recording of digital silence has no peak or RMS in
/// dBFS (−∞): those are `nil` (JSON `null`).
public struct Levels: Codable, Sendable, Equatable {
    public var peakDBFS: Double?
    public var rmsDBFS: Double?
    public var clippedSamples: Int

    public init(peakDBFS: Double?, rmsDBFS: Double?, clippedSamples: Int) {
        self.peakDBFS = peakDBFS
        self.rmsDBFS = rmsDBFS
        self.clippedSamples = clippedSamples
    }

    enum CodingKeys: String, CodingKey {
        case peakDBFS = "peak_dbfs", rmsDBFS = "rms_dbfs", clippedSamples = "clipped_samples"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(peakDBFS, forKey: .peakDBFS)  // null, not absent, for −∞
        try c.encode(rmsDBFS, forKey: .rmsDBFS)
        try c.encode(clippedSamples, forKey: .clippedSamples)
    }
}

/// Everything measured on a recording's samples.
public struct Measurements: Codable, Sendable, Equatable {
    public var samples: Int
    public var sampleRate: Int
    public var channels: Int
    public var silence: Silence
    public var levels: Levels
    /// Runs of exact digital zeros on every channel, at least 20 ms long, as `[first, end)` frames
    /// (not serialised: the ingest checks PCI pauses against them).
    public var zeroRuns: [[Int]] = []
    /// Two-channel recordings only: who talked when (channel 0 as `agent` until roles are given).
    /// Not part of this type's own JSON: the report and the catalog carry it.
    public var speakers: SpeakerAnalysis?

    /// round(samples × 1000 / sample_rate)
    public var durationMs: Int { Measurements.milliseconds(samples, rate: sampleRate) }

    static func milliseconds(_ samples: Int, rate: Int) -> Int {
        guard rate > 0 else { return 0 }
        return (samples * 1000 * 2 + rate) / (2 * rate)
    }

    enum CodingKeys: String, CodingKey {
        case samples, sampleRate = "sample_rate", channels, durationMs = "duration_ms", silence, levels
    }

    public init(samples: Int, sampleRate: Int, channels: Int, silence: Silence, levels: Levels) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.channels = channels
        self.silence = silence
        self.levels = levels
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        samples = try c.decode(Int.self, forKey: .samples)
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        channels = try c.decode(Int.self, forKey: .channels)
        silence = try c.decode(Silence.self, forKey: .silence)
        levels = try c.decode(Levels.self, forKey: .levels)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(samples, forKey: .samples)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(channels, forKey: .channels)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(silence, forKey: .silence)
        try c.encode(levels, forKey: .levels)
    }
}

/// Waveform peaks in BBC audiowaveform's JSON format, version 2, 8-bit: one (min, max) pair per
/// pixel of `samplesPerPixel` samples of the mono mix, as peaks.js and wavesurfer.js read them.
/// A two-channel recording has `channels: 2` and, as `audiowaveform --split-channels` writes, per
/// pixel min0, max0, min1, max1 (channel 0 first); `length` counts pixels.
public struct Waveform: Codable, Sendable, Equatable {
    public var version = 2
    public var channels = 1
    public var sampleRate: Int
    public var samplesPerPixel: Int
    public var bits = 8
    public var length: Int
    public var data: [Int8]

    enum CodingKeys: String, CodingKey {
        case version, channels, sampleRate = "sample_rate", samplesPerPixel = "samples_per_pixel", bits, length, data
    }

    /// The same JSON as `JSONEncoder.callrec` writes (sorted keys), written directly: a long call
    /// has millions of peaks, and JSONEncoder's intermediate tree of them took tens of MiB.
    public func json() -> Data {
        var out = Data()
        out.reserveCapacity(data.count * 4 + 128)
        out.append(contentsOf: Array("{\"bits\":\(bits),\"channels\":\(channels),\"data\":[".utf8))
        var first = true
        for v in data {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(contentsOf: Array(String(v).utf8))
        }
        out.append(contentsOf: Array("],\"length\":\(length),\"sample_rate\":\(sampleRate),\"samples_per_pixel\":\(samplesPerPixel),\"version\":\(version)}".utf8))
        return out
    }

    // The same bytes in pieces, for a sink that must know the length first (SQLite's incremental
    // blob I/O into a `zeroblob(n)`): a 2-hour stereo call has 1.4 M peaks, ~5 MB of JSON, and
    // building it whole (then SQLite copying it as a bound blob) was 12–13 MiB of the ingest's peak.

    private var jsonHead: [UInt8] { Array("{\"bits\":\(bits),\"channels\":\(channels),\"data\":[".utf8) }
    private var jsonTail: [UInt8] {
        Array("],\"length\":\(length),\"sample_rate\":\(sampleRate),\"samples_per_pixel\":\(samplesPerPixel),\"version\":\(version)}".utf8)
    }

    /// The exact length in bytes of `json()`, computed without building it: a sign and one to three
    /// digits per peak, a comma between peaks, and the fixed keys around them.
    public var jsonByteCount: Int {
        var digits = 0
        for v in data {
            let m = v < 0 ? -Int(v) : Int(v)
            digits += (v < 0 ? 1 : 0) + (m >= 100 ? 3 : m >= 10 ? 2 : 1)
        }
        return jsonHead.count + digits + max(0, data.count - 1) + jsonTail.count
    }

    /// Hands `json()`'s bytes to `sink` in order, in pieces of at most `chunkSize` bytes (the last
    /// may be shorter), through one reused buffer: memory is `chunkSize` whatever the length.
    public func writeJSON(chunkSize: Int = 64 * 1024, to sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        precondition(chunkSize >= 8, "a chunk must hold at least one peak and its comma")
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        try buffer.withUnsafeMutableBufferPointer { whole in
            let buf = whole
            var n = 0
            func flush() throws {
                if n > 0 { try sink(UnsafeRawBufferPointer(start: buf.baseAddress, count: n)) }
                n = 0
            }
            func put(_ bytes: [UInt8]) throws {
                for b in bytes {
                    if n == chunkSize { try flush() }
                    buf[n] = b
                    n += 1
                }
            }
            try put(jsonHead)
            var first = true
            for v in data {
                if n + 5 > chunkSize { try flush() }  // ",-128" is the longest a peak takes
                if !first { buf[n] = UInt8(ascii: ","); n += 1 }
                first = false
                var m = Int(v)
                if m < 0 { buf[n] = UInt8(ascii: "-"); n += 1; m = -m }
                if m >= 100 { buf[n] = UInt8(ascii: "0") + UInt8(m / 100); n += 1 }
                if m >= 10 { buf[n] = UInt8(ascii: "0") + UInt8(m / 10 % 10); n += 1 }
                buf[n] = UInt8(ascii: "0") + UInt8(m % 10)
                n += 1
            }
            try put(jsonTail)
            try flush()
        }
    }
}
