import Crypto
import Foundation
import CallrecSupport

/// What one run of the pipeline produced.
public struct TranscodeResult: Sendable {
    public var source: SourceInfo
    public var sourceSHA256: String
    public var measurements: Measurements
    public var waveform: Waveform
    public var opus: OpusFileInfo
    public var bitrate: Int
    public var startedAt: Date
    public var tags: RecordingTags
    /// Frames that came from the previous recording when appending (0 otherwise).
    public var previousSamples: Int
}

/// A recording already stored, that a later part of the same call is appended to.
public struct PreviousRecording: Sendable {
    public var path: String
    /// The SHA-256 of each source it was made of, in order (its OpusTags' SOURCE_SHA256 values).
    public var sourceSHA256s: [String]
    public init(path: String, sourceSHA256s: [String]) {
        self.path = path
        self.sourceSHA256s = sourceSHA256s
    }
}

/// The media pipeline: decode → measure → encode → verify, in one pass over the samples.
///
/// The decoding thread reads blocks with libsndfile and measures them; the encoding thread resamples
/// (when needed), encodes and muxes them — for a new recording, it cuts them into pieces that
/// `encoder.threads` threads encode side by side (ParallelEncoder) and muxes their packets in
/// order; another thread hashes the source file. They meet in bounded queues, so memory stays
/// constant however long the call. The Opus file is written under a
/// temporary name beside `output`, fsynced, decoded back in full and checked sample for sample
/// before it is renamed into place; on any failure nothing is left at `output`.
public struct Transcoder: Sendable {
    public var encoder: EncoderOptions
    public var analysis: AnalysisOptions
    /// How many interleaved channels a `.raw` source holds: 1, or 2 for MixMonitor's `D` option
    /// (`CALLREC_RAW_CHANNELS`; a spool pattern's `{channels}` overrides it per file).
    public var rawChannels: Int
    /// The role of channel 0 of a two-channel recording (`CALLREC_RECORDED_ROLE`); written to the
    /// OpusTags (`RECORDED_ROLE`) so the figures can be rebuilt from the file alone.
    public var recordedRole: SpeakerRole
    /// Encryption at rest: when set, the Opus file is written sealed under the data key this
    /// returns for the recording's uniqueid (created and stored durably before any byte is sealed).
    public var sealing: (@Sendable (_ uniqueid: String) throws -> DataKey)?
    /// How a later part is appended (OggAppend.swift): the stored packets copied, by default.
    public var appendMethod = AppendMethod.copyingPackets
    static let blockFrames = 8192
    /// How a long call is cut for the parallel encoder (`encoder.threads` > 1).
    var pieces = PieceOptions()

    public init(
        encoder: EncoderOptions = EncoderOptions(), analysis: AnalysisOptions = AnalysisOptions(), rawChannels: Int = 1,
        recordedRole: SpeakerRole = .agent
    ) {
        self.encoder = encoder
        self.analysis = analysis
        self.rawChannels = rawChannels
        self.recordedRole = recordedRole
    }

    /// `CALLREC_RAW_CHANNELS` (1 or 2, default 1).
    public static func rawChannels(fromEnvironment env: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        guard let s = env["CALLREC_RAW_CHANNELS"], !s.isEmpty else { return 1 }
        guard let v = Int(s), v == 1 || v == 2 else {
            throw MediaError(.unsupported, "CALLREC_RAW_CHANNELS must be 1 or 2, not '\(s)'")
        }
        return v
    }

    /// The Opus rate the encoder runs at for a source rate: the source's own when Opus takes it,
    /// else the next one up (48 kHz at most).
    static func encoderRate(for rate: Int) -> Int {
        [8000, 12000, 16000, 24000, 48000].first { $0 >= rate } ?? 48000
    }

    /// Transcodes `input` to `output`. With `previous`, `input` is appended to the stored recording
    /// (MixMonitor's `a` option): the result holds both parts, in order, the stored part's Opus
    /// packets copied unchanged (OggAppend.swift), and its tags list every part's SOURCE_SHA256.
    /// Measurements are of everything the result holds (the stored part decoded).
    /// `sourceSHA256`: the input's hash when the caller already has it (the ingest hashes first,
    /// to find duplicates), so the file is not read a second time for it.
    public func transcode(
        input: String, output: String, tags: RecordingTags, appendingTo previous: PreviousRecording? = nil, sourceSHA256: String? = nil
    ) throws -> TranscodeResult {
        let fd = open(input, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw MediaError.posix("cannot open", input) }
        defer { close(fd) }
        return try transcode(descriptor: fd, name: input, output: output, tags: tags, appendingTo: previous, sourceSHA256: sourceSHA256)
    }

    /// Transcodes the file behind an open descriptor (which stays the caller's): decoding, hashing
    /// and the modification time all come from that one open file, never from its path again, so
    /// a path swapped meanwhile (a symlink, another file) cannot change what is read. `name` gives
    /// the format (its extension) and names the file in errors.
    public func transcode(
        descriptor: Int32, name input: String, output: String, tags: RecordingTags, appendingTo previous: PreviousRecording? = nil,
        sourceSHA256: String? = nil
    ) throws -> TranscodeResult {
        let source = try SourceReader(descriptor: descriptor, name: input, rawChannels: rawChannels)
        let info = source.info
        let rate = Self.encoderRate(for: info.sampleRate)
        if previous != nil, rate != info.sampleRate {
            throw MediaError(.unsupported, "cannot append a \(info.sampleRate) Hz part (not an Opus rate) to a stored recording")
        }
        // The hashing thread gets its own duplicate, which it closes: it may outlive this call on
        // a failure, and must never read a descriptor number the caller has closed and reused.
        let hashFD = sourceSHA256 == nil ? fcntl(descriptor, F_DUPFD_CLOEXEC, 0) : -1
        if sourceSHA256 == nil, hashFD < 0 { throw MediaError.posix("cannot duplicate the descriptor of", input) }
        let hashing = Worker(name: "callrec-hash") {
            defer { if hashFD >= 0 { close(hashFD) } }
            return try sourceSHA256 ?? Self.sha256(ofDescriptor: hashFD, name: input)
        }
        var reader: any PCMReader = source
        if let previous {
            if appendMethod == .copyingPackets,
                let appended = try appendByCopying(source: source, previous: previous, hashing: hashing, input: input, output: output, tags: tags)
            {
                return appended
            }
            reader = try ConcatReader([try OpusReader(path: previous.path, rate: rate), source])
        }
        return try run(
            reader: reader, info: info, sources: nil, hashing: hashing, timeDescriptor: descriptor, input: input, output: output, tags: tags,
            previous: previous, sourceFramesRead: { source.framesRead })
    }

    /// The last step of every pipeline: the file read back (`checked`) must hold the samples,
    /// channels, sources and uniqueid it was written with; then it is renamed into place and its
    /// folder fsynced.
    static func install(
        _ temp: String, as output: String, checked opus: OpusFileInfo, samples48k expected48: Int, channels: Int, sources: [String],
        uniqueid: String
    ) throws {
        guard opus.samples48k == expected48, opus.channels == channels else {
            throw MediaError(.verification, "\(output): decodes to \(opus.samples48k) samples at 48 kHz, expected \(expected48)")
        }
        guard opus.sourceSHA256s == sources, opus.tags["UNIQUEID"] == uniqueid else {
            throw MediaError(.verification, "\(output): OpusTags do not read back")
        }
        guard rename(temp, output) == 0 else { throw MediaError.posix("cannot rename into", output) }
        try syncDirectory(parentDirectory(of: output))
    }

    /// Reads `reader` to its end in blocks, measures each block and hands it to the encoding
    /// thread's queue; the queue ends with the input, or fails with a read error (the encoding
    /// thread stops either way). Stops early when the encoding thread has failed the queue.
    static func pump(_ reader: any PCMReader, channels: Int, measuring analyzer: inout Analyzer, into queue: BoundedQueue<[Int16]>) {
        do {
            while true {
                var block = [Int16](repeating: 0, count: blockFrames * channels)
                let n = try block.withUnsafeMutableBufferPointer { try reader.read(into: $0.baseAddress!, frames: blockFrames) }
                if n == 0 { break }
                if n < blockFrames { block.removeLast((blockFrames - n) * channels) }
                block.withUnsafeBufferPointer { analyzer.consume($0) }
                guard queue.push(block) else { break }
            }
            queue.finish()
        } catch {
            queue.fail(error)
        }
    }

    /// The pipeline over any reader. `sources`: the SHA-256s to tag when known now (legs); else
    /// `hashing` gives the one source's at the end (its tag is patched in place).
    func run(
        reader: any PCMReader, info: SourceInfo, sources: [String]?, hashing: Worker<String>? = nil, timeDescriptor descriptor: Int32, input: String,
        output: String, tags: RecordingTags, previous: PreviousRecording?, sourceFramesRead: () -> Int
    ) throws -> TranscodeResult {
        let rate = Self.encoderRate(for: info.sampleRate)
        let temp = Self.temporaryPath(for: output)
        var keep = false
        defer { if !keep { unlink(temp) } }

        let file = try FileOutput(creating: temp, sealing: try sealing.map { SealContext(key: try $0(tags.uniqueid)) })
        chmod(temp, 0o640)  // recordings are personal data: not readable by every local user

        var tagList: [(String, String)] = [("UNIQUEID", tags.uniqueid)]
        let knownStart = tags.startedAt ?? RecordingTags.epoch(ofUniqueID: tags.uniqueid)
        tagList.append(("STARTED_AT", knownStart.map(RecordingTags.iso) ?? "0000-00-00T00:00:00Z"))
        for sha in previous?.sourceSHA256s ?? [] { tagList.append(("SOURCE_SHA256", sha)) }
        let shaPlaceholder = "SOURCE_SHA256=" + String(repeating: "0", count: 64)
        let startPlaceholder = "STARTED_AT=" + (knownStart.map(RecordingTags.iso) ?? "0000-00-00T00:00:00Z")
        if let sources {
            for sha in sources { tagList.append(("SOURCE_SHA256", sha)) }
        } else {
            tagList.append(("SOURCE_SHA256", String(repeating: "0", count: 64)))
        }
        let encoder = encoder(for: info, tagging: &tagList, tags)

        let writer = try OggOpusWriter(
            output: file, encoderRate: rate, inputRate: info.sampleRate, channels: info.channels,
            options: encoder, tags: tagList, serial: Int32(bitPattern: UInt32.random(in: 1...UInt32.max)))
        let resampler = rate == info.sampleRate ? nil : try Resampler(from: info.sampleRate, to: rate, channels: info.channels)

        // A new recording is encoded in pieces on `encoder.threads` threads (ParallelEncoder);
        // an appended one by the one encoder, as before.
        let parallel = previous == nil && encoder.threads > 1 ? ParallelEncoder(writer: writer, options: encoder, pieces: pieces) : nil
        defer { parallel?.close() }

        // Encoding thread: takes blocks from the queue until the end.
        let queue = BoundedQueue<[Int16]>(capacity: 8)
        let box = UncheckedBox((writer, resampler, parallel))
        let encoding = Worker(name: "callrec-encode") {
            let (writer, resampler, parallel) = box.value
            let sink: any EncoderSink = parallel ?? writer
            do {
                while let block = try queue.pop() {
                    try block.withUnsafeBufferPointer { buf in
                        if let resampler {
                            try resampler.process(buf, end: false) { try sink.write($0) }
                        } else {
                            try sink.write(buf)
                        }
                    }
                }
                if let resampler { try resampler.process(UnsafeBufferPointer(start: nil, count: 0), end: true) { try sink.write($0) } }
                try parallel?.endOfInput()
            } catch {
                queue.fail(error)
                throw error
            }
        }

        // Decoding and measuring, here.
        var analyzer = Analyzer(sampleRate: info.sampleRate, channels: info.channels, options: analysis)
        Self.pump(reader, channels: info.channels, measuring: &analyzer, into: queue)
        let encodeResult = Result { try encoding.join() }
        let sourceHash = Result { try hashing?.join() ?? sources?.first ?? "" }
        if let failure = queue.failure { throw failure }
        try encodeResult.get()
        let sha = try sourceHash.get()
        let allSources = sources ?? (previous?.sourceSHA256s ?? []) + [sha]

        var (measurements, waveform) = analyzer.finish()
        measurements.speakers = measurements.speakers?.withRecordedRole(recordedRole)
        guard measurements.samples > 0 else {
            throw MediaError(.corrupt, "\(input) holds no audio")
        }
        let startedAt = knownStart ?? Self.modificationTime(descriptor).addingTimeInterval(-Double(measurements.durationMs) / 1000)
        var patch = [startPlaceholder: "STARTED_AT=" + RecordingTags.iso(startedAt)]
        if sources == nil { patch[shaPlaceholder] = "SOURCE_SHA256=" + sha }
        let encoded = try parallel?.finish(patch: patch) ?? writer.finish(patch: patch)
        try file.sync()

        // Verify: decode the file on disk and compare with what went in.
        let opus = try OpusVerifier.inspect(path: temp, decodeRate: rate, decodeThreads: min(encoder.threads, 2))
        try Self.install(temp, as: output, checked: opus, samples48k: encoded * (48000 / rate), channels: info.channels, sources: allSources, uniqueid: tags.uniqueid)
        keep = true

        var finalTags = tags
        finalTags.startedAt = startedAt
        return TranscodeResult(
            source: info, sourceSHA256: sha, measurements: measurements, waveform: waveform, opus: opus,
            bitrate: encoder.bitrate, startedAt: startedAt, tags: finalTags,
            previousSamples: previous == nil ? 0 : measurements.samples - sourceFramesRead())
    }

    /// Measures a stored Ogg Opus file by decoding it: for a file that lost its catalog row. The
    /// measurements are of the decoded audio, at the Opus rate it was encoded at.
    public func analyze(opus path: String) throws -> (Measurements, Waveform, OpusFileInfo) {
        let info = try OpusVerifier.inspect(path: path)
        let rate = Self.encoderRate(for: info.inputSampleRate)
        let reader = try OpusReader(path: path, rate: rate)
        var analyzer = Analyzer(sampleRate: rate, channels: reader.channels, options: analysis)
        var block = [Int16](repeating: 0, count: Self.blockFrames * reader.channels)
        while true {
            let n = try block.withUnsafeMutableBufferPointer { try reader.read(into: $0.baseAddress!, frames: Self.blockFrames) }
            if n == 0 { break }
            block.withUnsafeBufferPointer { analyzer.consume(UnsafeBufferPointer(rebasing: $0[0..<n * reader.channels])) }
        }
        var (m, w) = analyzer.finish()
        let role = info.tags["RECORDED_ROLE"].flatMap(SpeakerRole.init(rawValue:)) ?? recordedRole
        m.speakers = m.speakers?.withRecordedRole(role)
        return (m, w, info)
    }

    /// A hidden name beside `output`, unique to this run: `.NAME.partial-XXXXXXXX`.
    public static func temporaryPath(for output: String) -> String {
        let dir = parentDirectory(of: output)
        let name = output.split(separator: "/").last.map(String.init) ?? output
        return "\(dir)/.\(name).partial-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }


    static func modificationTime(_ fd: Int32) -> Date {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return Date() }
        return Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec) + TimeInterval(st.st_mtim.tv_nsec) / 1e9)
    }

    /// SHA-256 of a file's bytes, hex.
    public static func sha256(of path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw MediaError.posix("cannot open", path) }
        defer { close(fd) }
        return try sha256(ofDescriptor: fd, name: path)
    }

    /// SHA-256 of the bytes of an open file, hex: read with pread(2) from offset 0, so the
    /// descriptor's offset is neither used nor moved (the decoder may share it).
    public static func sha256(ofDescriptor fd: Int32, name: String) throws -> String {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var offset: off_t = 0
        while true {
            let n = pread(fd, buffer, 1 << 20, offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw MediaError.posix("cannot read", name)
            }
            if n == 0 { break }
            offset += off_t(n)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n))
        }
        return Array(hasher.finalize()).hexString
    }
}

/// Hands a value that is used by one thread at a time to another thread.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Transcoder {
    /// The encoder for `info` — CALLREC_OPUS_BITRATE is per channel: a two-speaker call gets twice
    /// the bits, so each side is coded as well as a mono call would be — with the tags that follow
    /// the sources (company, agent, lead number, source format, recorded role, encoder) appended
    /// to `tagList`: one place for a new recording and for an appended one.
    func encoder(for info: SourceInfo, tagging tagList: inout [(String, String)], _ tags: RecordingTags) -> EncoderOptions {
        if let c = tags.company { tagList.append(("COMPANY", c)) }
        if let a = tags.agent { tagList.append(("AGENT", a)) }
        if let l = tags.leadNumber { tagList.append(("LEAD_NUMBER", l)) }
        tagList.append(("SOURCE_FORMAT", info.format.name))
        if info.channels == 2 { tagList.append(("RECORDED_ROLE", recordedRole.rawValue)) }
        var encoder = self.encoder
        encoder.bitrate *= info.channels
        tagList.append(("ENCODER", "callrec bitrate=\(encoder.bitrate) complexity=\(encoder.complexity)"))
        return encoder
    }
}
