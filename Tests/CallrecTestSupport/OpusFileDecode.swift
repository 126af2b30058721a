import COpusFile
import Foundation

public struct DecodeError: Error {
    public let message: String
    public init(message: String) { self.message = message }
}

/// Decodes an Ogg Opus file with libopusfile (an independent reader of RFC 7845: it applies
/// pre-skip and end trimming itself). Returns the 48 kHz samples (interleaved) and the tags.
public func opusfileDecode(_ path: String) throws -> (pcm: [Int16], channels: Int, total: Int64, tags: [String: String]) {
    var err: Int32 = 0
    guard let of = op_open_file(path, &err) else { throw DecodeError(message: "op_open_file: \(err)") }
    defer { op_free(of) }
    let channels = Int(op_channel_count(of, -1))
    let total = op_pcm_total(of, -1)
    var tags: [String: String] = [:]
    if let t = op_tags(of, -1) {
        for i in 0..<Int(t.pointee.comments) {
            let c = String(cString: t.pointee.user_comments[i]!)
            if let eq = c.firstIndex(of: "=") { tags[String(c[..<eq])] = String(c[c.index(after: eq)...]) }
        }
    }
    var pcm: [Int16] = []
    var buf = [Int16](repeating: 0, count: 5760 * channels)
    while true {
        let n = buf.withUnsafeMutableBufferPointer { op_read(of, $0.baseAddress, Int32($0.count), nil) }
        if n < 0 { throw DecodeError(message: "op_read: \(n)") }
        if n == 0 { break }
        pcm.append(contentsOf: buf[0..<Int(n) * channels])
    }
    return (pcm, channels, total, tags)
}
