import CSampleRate

/// Converts a source rate Opus cannot take (11.025, 22.05, 32, 44.1, 96 kHz…) to the Opus rate
/// the encoder runs at, with libsamplerate's medium-quality sinc converter, streaming.
final class Resampler {
    let channels: Int
    let ratio: Double
    private let state: OpaquePointer
    private var input: [Float] = []
    private var output: [Float] = []
    private var shorts: [Int16] = []

    init(from: Int, to: Int, channels: Int) throws {
        var err: Int32 = 0
        guard let s = src_new(Int32(SRC_SINC_MEDIUM_QUALITY), Int32(channels), &err) else {
            throw MediaError(.encoder, "libsamplerate: \(String(cString: src_strerror(err)))")
        }
        state = s
        self.channels = channels
        ratio = Double(to) / Double(from)
    }

    deinit { src_delete(state) }

    /// Resamples `samples` (interleaved) and hands the converted samples to `sink`.
    func process(_ samples: UnsafeBufferPointer<Int16>, end: Bool, sink: (UnsafeBufferPointer<Int16>) throws -> Void) throws {
        let frames = samples.count / channels
        if input.count < samples.count { input = [Float](repeating: 0, count: samples.count) }
        if frames > 0 { src_short_to_float_array(samples.baseAddress, &input, Int32(samples.count)) }
        let outFrames = Int(Double(frames) * ratio) + 4096
        if output.count < outFrames * channels {
            output = [Float](repeating: 0, count: outFrames * channels)
            shorts = [Int16](repeating: 0, count: outFrames * channels)
        }
        var consumed = 0
        repeat {
            var data = SRC_DATA()
            let generated: Int = try input.withUnsafeBufferPointer { inp in
                try output.withUnsafeMutableBufferPointer { out in
                    data.data_in = inp.baseAddress! + consumed * channels
                    data.input_frames = frames - consumed
                    data.data_out = out.baseAddress
                    data.output_frames = outFrames
                    data.end_of_input = end ? 1 : 0
                    data.src_ratio = ratio
                    let err = src_process(state, &data)
                    guard err == 0 else { throw MediaError(.encoder, "libsamplerate: \(String(cString: src_strerror(err)))") }
                    return data.output_frames_gen
                }
            }
            consumed += data.input_frames_used
            if generated > 0 {
                src_float_to_short_array(output, &shorts, Int32(generated * channels))
                try shorts.withUnsafeBufferPointer { try sink(UnsafeBufferPointer(rebasing: $0[0..<generated * channels])) }
            }
            if consumed >= frames && (!end || generated == 0) { break }
        } while true
    }
}
