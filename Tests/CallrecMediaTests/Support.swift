import Foundation
import Testing
import CallrecTestSupport

@testable import CallrecMedia

/// The source's samples as sox decodes them (an independent decoder): interleaved Int16.
func soxDecode(_ path: String, type: String? = nil, rate: Int? = nil) throws -> [Int16] {
    var args: [String] = ["-D"]
    if let type { args += ["-t", type] }
    if let rate { args += ["-r", String(rate), "-c", "1"] }
    if type == "raw" { args += ["-e", "signed", "-b", "16", "-L"] }
    args += [path, "-t", "raw", "-e", "signed", "-b", "16", "-L", "-"]
    let r = try run("sox", args)
    guard r.status == 0 else { throw MediaError(.corrupt, "sox: \(r.err)") }
    return r.out.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
}

/// The contract's measurements, computed directly from a whole PCM array: the reference the
/// streaming `Analyzer` is checked against.
struct ReferenceMeasurements {
    var samples: Int
    var durationMs: Int
    var segments: [[Int]]
    var totalMs: Int
    var leadingMs: Int
    var trailingMs: Int
    var longestMs: Int
    var peakDBFS: Double?
    var rmsDBFS: Double?
    var clipped: Int

    init(pcm: [Int16], rate: Int, channels: Int, thresholdDBFS: Double = -40, minMs: Int = 500) {
        let frames = pcm.count / channels
        func ms(_ s: Int) -> Int { Int((Double(s) * 1000 / Double(rate)).rounded()) }
        samples = frames
        durationMs = ms(frames)
        let mono: [Double] = (0..<frames).map { f in
            (0..<channels).reduce(0.0) { $0 + Double(pcm[f * channels + $1]) } / Double(channels)
        }
        // 20 ms windows; window k = [k·rate/50, (k+1)·rate/50)
        var silentWindows: [(Int, Int)] = []
        var k = 0
        while k * rate / 50 < frames {
            let a = k * rate / 50
            let b = min((k + 1) * rate / 50, frames)
            let rms = sqrt(mono[a..<b].reduce(0) { $0 + $1 * $1 } / Double(b - a))
            if rms == 0 || 20 * log10(rms / 32768) < thresholdDBFS { silentWindows.append((a, b)) }
            k += 1
        }
        var runs: [(Int, Int)] = []
        for w in silentWindows {
            if let last = runs.last, last.1 == w.0 { runs[runs.count - 1].1 = w.1 } else { runs.append(w) }
        }
        segments = runs.map { [ms($0.0), ms($0.1)] }.filter { $0[1] - $0[0] >= minMs }
        totalMs = segments.reduce(0) { $0 + $1[1] - $1[0] }
        leadingMs = segments.first.map { $0[0] == 0 ? $0[1] : 0 } ?? 0
        trailingMs = segments.last.map { $0[1] == ms(frames) ? $0[1] - $0[0] : 0 } ?? 0
        longestMs = segments.map { $0[1] - $0[0] }.max() ?? 0
        let peak = pcm.map { abs(Int($0)) }.max() ?? 0
        peakDBFS = peak == 0 ? nil : 20 * log10(Double(peak) / 32768)
        let meanSquare = pcm.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(pcm.count, 1))
        rmsDBFS = meanSquare == 0 ? nil : 10 * log10(meanSquare / (32768.0 * 32768.0))
        clipped = pcm.filter { abs(Int($0)) >= 32767 }.count
    }
}

