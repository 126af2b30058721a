import CSndFile
import Foundation

/// What a source holds, known once it is opened.
public struct SourceInfo: Sendable, Equatable {
    public var format: SourceFormat
    public var sampleRate: Int
    public var channels: Int
    /// The file's size in bytes.
    public var bytes: Int
    /// Whether the header's sizes were wrong and the audio was recovered from the file's size.
    public var recoveredHeader: Bool
    /// Set when the decoder's length disagreed with what the file declares (a GSM WAV's `fact`
    /// chunk and its block count); the declared length was used.
    public var lengthDisagreement: SampleCountDisagreement? = nil
}

/// The lengths of a source that did not agree, in samples per channel.
public struct SampleCountDisagreement: Codable, Sendable, Equatable {
    /// The `fact` chunk's sample count (nil when there is none, or it was 0: an unclosed file).
    public var fact: Int?
    /// Whole blocks × samples per block.
    public var blocks: Int
    /// What libsndfile would have decoded.
    public var decoder: Int
    public init(fact: Int?, blocks: Int, decoder: Int) {
        self.fact = fact
        self.blocks = blocks
        self.decoder = decoder
    }
}

/// Streams a recording's audio as interleaved 16-bit blocks, through libsndfile.
///
/// RIFF files are read through libsndfile's virtual I/O over a corrected header (see `RIFFHeader`),
/// so an unclosed Asterisk recording is decoded in full; raw Asterisk formats are opened as
/// headerless files of the encoding and rate their extension names.
final class SourceReader {
    let info: SourceInfo
    private(set) var framesRead = 0
    /// The frames the file declares, when the decoder would give more (see `lengthDisagreement`).
    private var frameLimit: Int?
    private let fd: Int32
    private var file: OpaquePointer?
    private var virtual: VirtualFile?

    /// Opens `path` (without blocking on a FIFO) and reads it.
    convenience init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw MediaError.posix("cannot open", path) }
        try self.init(owning: fd, name: path)
    }

    /// Reads the file behind an already-open descriptor, which stays the caller's (a duplicate is
    /// read, from offset 0): so what is decoded is exactly the file the caller examined and hashed,
    /// whatever has happened to its path since. `name` gives the format (its extension) and
    /// names the file in errors.
    /// `rawChannels`: how many interleaved channels a `.raw` file holds (MixMonitor's `D` option
    /// writes 2; a `.raw` file does not say so itself). Other formats ignore it.
    convenience init(descriptor: Int32, name: String, rawChannels: Int = 1) throws {
        let fd = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw MediaError.posix("cannot duplicate the descriptor of", name) }
        try self.init(owning: fd, name: name, rawChannels: rawChannels)
    }

    /// Takes ownership of `fd` (closed on failure and at deinit).
    private init(owning fd: Int32, name path: String, rawChannels: Int = 1) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = MediaError.posix("cannot read", path)
            close(fd)
            throw e
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw MediaError(.unreadable, "\(path) is not a regular file")
        }
        self.fd = fd
        let size = Int(st.st_size)
        guard size > 0 else {
            close(fd)
            throw MediaError(.corrupt, "\(path) is empty")
        }
        // libsndfile reads raw and non-RIFF files from the descriptor's offset.
        lseek(fd, 0, SEEK_SET)
        let format = SourceFormat(fileName: path)
        var sfinfo = SF_INFO()
        var recovered = false
        var declared: (fact: Int?, blocks: Int)?
        do {
            switch format {
            case .container:
                let prefix = Self.pread(fd, offset: 0, count: min(size, 1 << 16))
                let header = try RIFFHeader.parse(prefix: prefix, fileSize: size) { Self.pread(fd, offset: $0, count: $1) }
                if let header {
                    recovered = header.recovered
                    if let blocks = header.blockSamples { declared = (header.factSamples, blocks) }
                    let v = VirtualFile(fd: fd, header: header.patchedHeader, dataOffset: header.dataOffset, dataLength: header.dataLength)
                    virtual = v
                    file = v.open(&sfinfo)
                } else {
                    file = Self.openSndFile(fd, &sfinfo)
                }
            case .rawGSM, .rawULaw, .rawALaw, .rawLinear:
                sfinfo.channels = 1
                switch format {
                case .rawGSM:
                    sfinfo.samplerate = 8000
                    sfinfo.format = Int32(SF_FORMAT_RAW | SF_FORMAT_GSM610)
                case .rawULaw:
                    sfinfo.samplerate = 8000
                    sfinfo.format = Int32(SF_FORMAT_RAW | SF_FORMAT_ULAW)
                case .rawALaw:
                    sfinfo.samplerate = 8000
                    sfinfo.format = Int32(SF_FORMAT_RAW | SF_FORMAT_ALAW)
                case .rawLinear(let rate):
                    sfinfo.samplerate = Int32(rate)
                    if path.lowercased().hasSuffix(".raw") { sfinfo.channels = Int32(rawChannels) }
                    sfinfo.format = Int32(SF_FORMAT_RAW | SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE)
                case .container: break
                }
                file = Self.openSndFile(fd, &sfinfo)
            }
        } catch {
            close(fd)
            throw error
        }
        guard let file else {
            let reason = String(cString: sf_strerror(nil))
            close(fd)
            throw MediaError(.corrupt, "\(path) is not audio callrec can read (\(reason))")
        }
        let channels = Int(sfinfo.channels)
        let rate = Int(sfinfo.samplerate)
        guard channels == 1 || channels == 2 else {
            sf_close(file)
            close(fd)
            throw MediaError(.unsupported, "\(path) has \(channels) channels; callrec stores mono or stereo calls")
        }
        guard (MediaLimits.minSampleRate...MediaLimits.maxSampleRate).contains(rate) else {
            sf_close(file)
            close(fd)
            throw MediaError(.unsupported, "\(path) has a sample rate of \(rate) Hz")
        }
        var info = SourceInfo(format: format, sampleRate: rate, channels: channels, bytes: size, recoveredHeader: recovered)
        // GSM in WAV: libsndfile counts a phantom block after an odd number of 65-byte blocks
        // (Asterisk writes no RIFF pad byte) and decodes junk into it. The file's `fact` and its
        // whole blocks are the truth: the smaller of them, and the report says the decoder differed.
        if let declared {
            let decoder = Int(sfinfo.frames)
            let truth = min(declared.fact ?? declared.blocks, declared.blocks)
            if decoder != truth || (declared.fact.map { $0 != declared.blocks } ?? false) {
                info.lengthDisagreement = SampleCountDisagreement(fact: declared.fact, blocks: declared.blocks, decoder: decoder)
            }
            if decoder > truth { frameLimit = truth }
        }
        self.info = info
    }

    deinit {
        if let file { sf_close(file) }
        close(fd)
    }

    /// Reads up to `frames` frames into `buffer` (interleaved); returns the frames read, 0 at the end.
    func read(into buffer: UnsafeMutablePointer<Int16>, frames: Int) throws -> Int {
        let wanted = frameLimit.map { min(frames, $0 - framesRead) } ?? frames
        guard wanted > 0 else { return 0 }
        let n = sf_readf_short(file, buffer, sf_count_t(wanted))
        if n > 0 { framesRead += Int(n) }
        if n < 0 { throw MediaError(.corrupt, "decoding failed: \(String(cString: sf_strerror(file)))") }
        if n == 0, sf_error(file) != 0 {
            throw MediaError(.corrupt, "decoding failed: \(String(cString: sf_strerror(file)))")
        }
        return Int(n)
    }

    /// libsndfile on a duplicate of `fd` that it owns (`close_desc` = 1: closed at `sf_close`).
    /// libsndfile 1.2.0 (Debian 12) closes the descriptor of a failed `sf_open_fd` even when told
    /// not to: with `fd` itself, our own close then closed whatever file another thread had opened
    /// under that number meanwhile (concurrent ingests saw "Bad file descriptor").
    static func openSndFile(_ fd: Int32, _ info: inout SF_INFO) -> OpaquePointer? {
        let owned = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard owned >= 0 else { return nil }
        return sf_open_fd(owned, Int32(SFM_READ), &info, 1)
    }

    static func pread(_ fd: Int32, offset: Int, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { Foundation.pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n <= 0 { break }
            done += n
        }
        out.removeLast(count - done)
        return out
    }
}

/// A file as libsndfile sees it through virtual I/O: a corrected header, then the audio bytes of the
/// real file, read in place.
private final class VirtualFile {
    let fd: Int32
    let header: [UInt8]
    let dataOffset: Int
    let length: Int
    var position = 0

    init(fd: Int32, header: [UInt8], dataOffset: Int, dataLength: Int) {
        self.fd = fd
        self.header = header
        self.dataOffset = dataOffset
        self.length = dataOffset + dataLength
    }

    func open(_ info: inout SF_INFO) -> OpaquePointer? {
        var io = SF_VIRTUAL_IO(
            get_filelen: { ud in VirtualFile.from(ud).getLength() },
            seek: { offset, whence, ud in VirtualFile.from(ud).seek(Int(offset), whence) },
            read: { ptr, count, ud in VirtualFile.from(ud).read(ptr!, Int(count)) },
            write: { _, _, _ in -1 },
            tell: { ud in sf_count_t(VirtualFile.from(ud).position) })
        return sf_open_virtual(&io, Int32(SFM_READ), &info, Unmanaged.passUnretained(self).toOpaque())
    }

    static func from(_ ud: UnsafeMutableRawPointer?) -> VirtualFile {
        Unmanaged<VirtualFile>.fromOpaque(ud!).takeUnretainedValue()
    }

    func getLength() -> sf_count_t { sf_count_t(length) }

    func seek(_ offset: Int, _ whence: Int32) -> sf_count_t {
        let target: Int
        switch whence {
        case SEEK_SET: target = offset
        case SEEK_CUR: target = position + offset
        case SEEK_END: target = length + offset
        default: return -1
        }
        guard target >= 0 else { return -1 }
        position = target
        return sf_count_t(position)
    }

    func read(_ ptr: UnsafeMutableRawPointer, _ count: Int) -> sf_count_t {
        var done = 0
        while done < count && position < length {
            if position < dataOffset {
                let n = min(count - done, dataOffset - position)
                header.withUnsafeBytes { (ptr + done).copyMemory(from: $0.baseAddress! + position, byteCount: n) }
                done += n
                position += n
            } else {
                let n = Foundation.pread(fd, ptr + done, min(count - done, length - position), off_t(position))
                if n <= 0 { break }
                done += n
                position += n
            }
        }
        return sf_count_t(done)
    }
}
