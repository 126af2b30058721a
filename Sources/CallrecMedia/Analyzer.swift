import Foundation

/// What to measure and how, from the contract's defaults.
public struct AnalysisOptions: Sendable, Equatable {
    public var silenceThresholdDBFS: Double = -40
    public var silenceMinMs: Int = 500
    /// Waveform resolution; `nil` gives one pixel per 20 ms (the silence window).
    public var waveformSamplesPerPixel: Int?

    public init() {}
}

/// The measuring stage: consumes interleaved 16-bit blocks in order and keeps only running totals,
/// so it measures a call of any length in constant memory (plus its silence segments and peaks).
struct Analyzer {
    let sampleRate: Int
    let channels: Int
    let options: AnalysisOptions

    private(set) var frames = 0
    private var peak: Int32 = 0
    private var sumSquares: Double = 0
    private var clipped = 0

    // Silence: the current 20 ms window of the mono mix.
    private var windowIndex = 0
    private var windowEnd: Int
    private var windowStart = 0
    private var windowSquares: Double = 0
    private let thresholdPower: Double
    private var runStart: Int?  // first frame of the current run of silent windows
    private var segments: [[Int]] = []

    // Waveform: min/max per pixel of the mono mix (one channel) or of each channel (two: the
    // layout of audiowaveform's --split-channels).
    private let samplesPerPixel: Int
    private var pixelCount = 0
    private var pixelMin = Int.max
    private var pixelMax = Int.min
    private var pixelMin1 = Int.max
    private var pixelMax1 = Int.min
    private var peaks: [Int8] = []

    // Exact digital zeros on every channel (what MixMonitorMute writes), in frames.
    private var zeroStart: Int?
    private var zeroRuns: [[Int]] = []
    // Two channels: who talks when.
    private var speakers: SpeakerTracker?

    init(sampleRate: Int, channels: Int, options: AnalysisOptions) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.options = options
        self.windowEnd = Self.windowBoundary(1, rate: sampleRate)
        // rms < 32768 · 10^(dB/20)  ⇔  mean square < 32768² · 10^(dB/10)
        let ref = 32768.0 * pow(10, options.silenceThresholdDBFS / 20)
        self.thresholdPower = ref * ref
        self.samplesPerPixel = max(1, options.waveformSamplesPerPixel ?? sampleRate / 50)
        if channels == 2 { speakers = SpeakerTracker(rate: sampleRate, thresholdPower: thresholdPower, minMs: options.silenceMinMs) }
    }

    /// Window k covers frames [⌊k·rate/50⌋, ⌊(k+1)·rate/50⌋): exactly 20 ms on average at any rate.
    static func windowBoundary(_ k: Int, rate: Int) -> Int { k * rate / 50 }

    mutating func consume(_ block: UnsafeBufferPointer<Int16>) {
        if channels == 2 { return consumeStereo(block) }
        let n = block.count / channels
        var i = 0
        for f in 0..<n {
            // mono mix: the mean of the channels (kept exact as a sum; divided below)
            var sum: Int32 = 0
            var bits: Int32 = 0
            for _ in 0..<channels {
                let s = Int32(block[i])
                i += 1
                bits |= s
                let a = abs(s)
                if a > peak { peak = a }
                if a >= 32767 { clipped += 1 }
                sumSquares += Double(s * s)
                sum += s
            }
            let mono = channels == 1 ? Double(sum) : Double(sum) / Double(channels)
            windowSquares += mono * mono

            // waveform (8-bit: the 16-bit value's high byte, as audiowaveform does)
            let m = Int(channels == 1 ? sum : sum / Int32(channels))
            if m < pixelMin { pixelMin = m }
            if m > pixelMax { pixelMax = m }
            pixelCount += 1
            if pixelCount == samplesPerPixel { flushPixel() }

            if bits == 0 {
                if zeroStart == nil { zeroStart = frames + f }
            } else if zeroStart != nil {
                closeZeros(end: frames + f)
            }

            let frame = frames + f + 1
            if frame == windowEnd { closeWindow(end: frame) }
        }
        frames += n
    }

    /// Runs of at least one 20 ms frame are kept.
    private mutating func closeZeros(end: Int) {
        guard let start = zeroStart else { return }
        zeroStart = nil
        if end - start >= max(1, sampleRate / 50) { zeroRuns.append([start, end]) }
    }

    /// Two channels: the mono mix for the contract's silence and levels, each channel alone for
    /// the speakers and the waveform.
    private mutating func consumeStereo(_ block: UnsafeBufferPointer<Int16>) {
        let n = block.count / 2
        var tracker = speakers!
        speakers = nil  // tracked in a local, so its arrays are mutated in place
        defer { speakers = tracker }
        for f in 0..<n {
            let l = Int32(block[2 * f]), r = Int32(block[2 * f + 1])
            let frame = frames + f
            let al = abs(l), ar = abs(r)
            if al > peak { peak = al }
            if ar > peak { peak = ar }
            if al >= 32767 { clipped += 1 }
            if ar >= 32767 { clipped += 1 }
            sumSquares += Double(l * l) + Double(r * r)
            tracker.sample(0, l, frame: frame)
            tracker.sample(1, r, frame: frame)
            let mono = Double(l + r) / 2
            windowSquares += mono * mono

            if Int(l) < pixelMin { pixelMin = Int(l) }
            if Int(l) > pixelMax { pixelMax = Int(l) }
            if Int(r) < pixelMin1 { pixelMin1 = Int(r) }
            if Int(r) > pixelMax1 { pixelMax1 = Int(r) }
            pixelCount += 1
            if pixelCount == samplesPerPixel { flushPixel() }

            if l | r == 0 {  // a PCI mute zeroes both sides
                if zeroStart == nil { zeroStart = frame }
            } else if zeroStart != nil {
                closeZeros(end: frame)
            }

            if frame + 1 == windowEnd {
                tracker.closeWindow(start: windowStart, end: frame + 1)
                closeWindow(end: frame + 1)
            }
        }
        frames += n
    }

    private mutating func flushPixel() {
        peaks.append(Int8(truncatingIfNeeded: pixelMin >> 8))
        peaks.append(Int8(truncatingIfNeeded: pixelMax >> 8))
        if channels == 2 {
            peaks.append(Int8(truncatingIfNeeded: pixelMin1 >> 8))
            peaks.append(Int8(truncatingIfNeeded: pixelMax1 >> 8))
            pixelMin1 = .max
            pixelMax1 = .min
        }
        pixelCount = 0
        pixelMin = .max
        pixelMax = .min
    }

    private mutating func closeWindow(end: Int) {
        let length = end - windowStart
        let silent = length > 0 && windowSquares / Double(length) < thresholdPower
        if silent {
            if runStart == nil { runStart = windowStart }
        } else {
            closeRun(end: windowStart)
        }
        windowIndex += 1
        windowStart = end
        windowEnd = Self.windowBoundary(windowIndex + 1, rate: sampleRate)
        windowSquares = 0
    }

    private mutating func closeRun(end: Int) {
        guard let start = runStart else { return }
        runStart = nil
        let startMs = Measurements.milliseconds(start, rate: sampleRate)
        let endMs = Measurements.milliseconds(end, rate: sampleRate)
        if endMs - startMs >= options.silenceMinMs { segments.append([startMs, endMs]) }
    }

    /// The measurements of everything consumed, and the waveform peaks.
    mutating func finish() -> (Measurements, Waveform) {
        if frames > windowStart {  // the last, shorter window
            speakers?.closeWindow(start: windowStart, end: frames)
            closeWindow(end: frames)
        }
        closeRun(end: frames)
        closeZeros(end: frames)
        if pixelCount > 0 { flushPixel() }

        let durationMs = Measurements.milliseconds(frames, rate: sampleRate)
        let total = segments.reduce(0) { $0 + $1[1] - $1[0] }
        let leading = segments.first.flatMap { $0[0] == 0 ? $0[1] : nil } ?? 0
        let trailing = segments.last.flatMap { $0[1] == durationMs ? $0[1] - $0[0] : nil } ?? 0
        let silence = Silence(
            thresholdDBFS: options.silenceThresholdDBFS, minMs: options.silenceMinMs, totalMs: total,
            ratio: durationMs > 0 ? Self.round(Double(total) / Double(durationMs), 4) : 0,
            longestMs: segments.map { $0[1] - $0[0] }.max() ?? 0,
            leadingMs: leading, trailingMs: trailing, segments: segments)
        let count = Double(frames * channels)
        let levels = Levels(
            peakDBFS: peak > 0 ? Self.round(20 * log10(Double(peak) / 32768), 2) : nil,
            rmsDBFS: sumSquares > 0 ? Self.round(10 * log10(sumSquares / count / (32768.0 * 32768.0)), 2) : nil,
            clippedSamples: clipped)
        var m = Measurements(samples: frames, sampleRate: sampleRate, channels: channels, silence: silence, levels: levels)
        m.zeroRuns = zeroRuns
        m.speakers = speakers?.finish(frames: frames)
        let w = Waveform(
            channels: channels == 2 ? 2 : 1, sampleRate: sampleRate, samplesPerPixel: samplesPerPixel,
            length: peaks.count / (channels == 2 ? 4 : 2), data: peaks)
        return (m, w)
    }

    static func round(_ v: Double, _ places: Int) -> Double {
        let f = pow(10, Double(places))
        return (v * f).rounded() / f + 0  // + 0 turns −0 (a level a hair under full scale) into 0
    }
}
