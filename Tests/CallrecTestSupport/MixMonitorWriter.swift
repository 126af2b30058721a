import Foundation

/// Writes a recording into a spool the way Asterisk's MixMonitor does with the `wav` format: a
/// 44-byte header with sizes 0, then 20 ms frames appended while the call lasts (the file stays
/// open throughout), and the RIFF and data sizes filled in only at close. `abandon()` leaves it as
/// a crashed Asterisk does: all audio on disk, sizes 0.
public final class MixMonitorWriter {
    public let path: String
    private let handle: FileHandle
    private var pcm: [UInt8]
    private var position = 0
    public private(set) var bytesWritten = 0
    public let sampleRate: Int

    /// `pcm`: 16-bit little-endian mono samples to "record".
    public init(path: String, pcm: [UInt8], sampleRate: Int = 8000) throws {
        self.path = path
        self.pcm = pcm
        self.sampleRate = sampleRate
        FileManager.default.createFile(atPath: path, contents: nil)
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Self.header(dataBytes: 0, sampleRate: sampleRate))
    }

    /// The samples of a fixture WAV with a canonical header.
    public static func samples(ofWAV path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)).dropFirst(44))
    }

    public static func header(dataBytes: Int, sampleRate: Int) -> Data {
        var h = Data("RIFF".utf8)
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { h.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { h.append(contentsOf: $0) } }
        u32(dataBytes == 0 ? 0 : 36 + dataBytes)
        h.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(16); u16(1); u16(1); u32(sampleRate); u32(sampleRate * 2); u16(2); u16(16)
        h.append(contentsOf: Array("data".utf8))
        u32(dataBytes)
        return h
    }

    /// Appends `frames` 20 ms frames (looping over the source), one every `interval` seconds.
    public func record(frames: Int, interval: TimeInterval = 0) throws {
        let frameBytes = sampleRate / 50 * 2
        for _ in 0..<frames {
            var chunk = [UInt8]()
            while chunk.count < frameBytes {
                let n = min(frameBytes - chunk.count, pcm.count - position)
                chunk += pcm[position..<position + n]
                position = (position + n) % pcm.count
            }
            try handle.write(contentsOf: chunk)
            bytesWritten += chunk.count
            if interval > 0 { Thread.sleep(forTimeInterval: interval) }
        }
    }

    /// Hang-up: sizes filled in, file closed.
    public func close() throws {
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Self.header(dataBytes: bytesWritten, sampleRate: sampleRate))
        try handle.close()
    }

    /// Asterisk died: the file is closed (by the kernel) with sizes 0.
    public func abandon() throws { try handle.close() }

    public var samplesWritten: Int { bytesWritten / 2 }
}
