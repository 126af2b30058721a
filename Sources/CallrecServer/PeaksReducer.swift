import Foundation

/// `waveform.json?pixels=N`: the stored audiowaveform v2 JSON reduced to N columns, so a page
/// draws a 2-hour call (360,000 pixels at 50 per second, ~2.5 MB of JSON) from one small answer.
///
/// Column `j` of `N` covers stored pixels `⌊j·L/N⌋ ..< ⌊(j+1)·L/N⌋` (L the stored length): every
/// stored pixel falls in exactly one column, and a column's min and max are the least min and the
/// greatest max of its pixels, per channel. Channels stay interleaved as audiowaveform writes them
/// (`min0, max0, min1, max1, …` for each column). `samples_per_pixel` is the columns' mean width,
/// rounded. A recording with no more stored pixels than N is answered as stored.
///
/// The stored JSON is read with a byte scanner (its header through `JSONSerialization`, the data
/// array by hand): decoding 720,000 numbers through Foundation took longer than the whole budget.
enum PeaksReducer {
    static let maxPixels = 8192

    struct Header {
        var channels: Int
        var sampleRate: Int
        var samplesPerPixel: Int
        var bits: Int
        var length: Int
    }

    enum Failure: Error, CustomStringConvertible {
        case malformed(String)
        var description: String { if case .malformed(let s) = self { return "stored waveform: \(s)" } else { return "" } }
    }

    /// The reduced JSON, or the stored one when it has no more than `pixels` columns.
    static func reduce(_ json: Data, pixels: Int) throws -> Data {
        precondition(pixels >= 1)
        return try json.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Data in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let (open, close) = dataArray(bytes) else { throw Failure.malformed("no data array") }
            // The header: everything but the data array, which is the bulk.
            var headerBytes = Data(bytes[0..<open])
            headerBytes.append(contentsOf: Array("[]".utf8))
            headerBytes.append(contentsOf: bytes[(close + 1)...])
            guard let object = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any] else {
                throw Failure.malformed("not a JSON object")
            }
            func int(_ k: String, _ fallback: Int? = nil) throws -> Int {
                if let v = object[k] as? Int { return v }
                if let f = fallback { return f }
                throw Failure.malformed("no \(k)")
            }
            let h = Header(
                channels: try int("channels", 1), sampleRate: try int("sample_rate"), samplesPerPixel: try int("samples_per_pixel"),
                bits: try int("bits", 8), length: try int("length"))
            guard (1...32).contains(h.channels), h.length >= 0 else { throw Failure.malformed("channels \(h.channels), length \(h.length)") }
            if h.length <= pixels { return json }
            let values = try parseInts(bytes, from: open + 1, to: close, expected: h.length * 2 * h.channels)
            return encode(h, reduced: reduce(values, header: h, pixels: pixels), pixels: pixels)
        }
    }

    /// Min/max per column and channel, interleaved as stored.
    static func reduce(_ values: [Int32], header h: Header, pixels: Int) -> [Int32] {
        let c = h.channels, l = h.length
        var out = [Int32](repeating: 0, count: pixels * 2 * c)
        out.withUnsafeMutableBufferPointer { o in
            values.withUnsafeBufferPointer { v in
                for j in 0..<pixels {
                    let a = j * l / pixels, b = max(a + 1, (j + 1) * l / pixels)
                    for ch in 0..<c {
                        var lo = Int32.max, hi = Int32.min
                        var k = (a * c + ch) * 2
                        for _ in a..<b {
                            lo = min(lo, v[k])
                            hi = max(hi, v[k + 1])
                            k += 2 * c
                        }
                        o[(j * c + ch) * 2] = lo
                        o[(j * c + ch) * 2 + 1] = hi
                    }
                }
            }
        }
        return out
    }

    static func encode(_ h: Header, reduced: [Int32], pixels: Int) -> Data {
        let spp = Int((Double(h.length) * Double(h.samplesPerPixel) / Double(pixels)).rounded())
        var s = "{\"version\":2,\"channels\":\(h.channels),\"sample_rate\":\(h.sampleRate),\"samples_per_pixel\":\(spp),\"bits\":\(h.bits),\"length\":\(pixels),\"data\":["
        s.reserveCapacity(s.utf8.count + reduced.count * 5)
        for (i, v) in reduced.enumerated() {
            if i > 0 { s += "," }
            s += String(v)
        }
        s += "]}"
        return Data(s.utf8)
    }

    /// The positions of `[` and `]` of the `"data"` array.
    static func dataArray(_ b: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        let key = Array("\"data\"".utf8)
        var i = 0
        let n = b.count
        search: while i + key.count <= n {
            for k in 0..<key.count where b[i + k] != key[k] {
                i += 1
                continue search
            }
            var j = i + key.count
            while j < n, b[j] == 0x20 || b[j] == 0x0A || b[j] == 0x0D || b[j] == 0x09 { j += 1 }
            guard j < n, b[j] == UInt8(ascii: ":") else { i += 1; continue }
            j += 1
            while j < n, b[j] == 0x20 || b[j] == 0x0A || b[j] == 0x0D || b[j] == 0x09 { j += 1 }
            guard j < n, b[j] == UInt8(ascii: "[") else { return nil }
            guard let close = (j..<n).first(where: { b[$0] == UInt8(ascii: "]") }) else { return nil }
            return (j, close)
        }
        return nil
    }

    /// The integers between `from` and `to` (comma-separated, optional spaces), exactly `expected` of them.
    static func parseInts(_ b: UnsafeBufferPointer<UInt8>, from: Int, to: Int, expected: Int) throws -> [Int32] {
        var out = [Int32]()
        out.reserveCapacity(expected)
        var i = from
        while i < to {
            let c = b[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 || c == UInt8(ascii: ",") { i += 1; continue }
            var negative = false
            if c == UInt8(ascii: "-") { negative = true; i += 1 }
            var v: Int32 = 0
            var digits = 0
            while i < to, b[i] >= 0x30, b[i] <= 0x39, digits < 7 {
                v = v * 10 + Int32(b[i] - 0x30)
                i += 1
                digits += 1
            }
            guard digits > 0, i >= to || b[i] == UInt8(ascii: ",") || b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 else {
                throw Failure.malformed("a data value that is not an integer at byte \(i)")
            }
            out.append(negative ? -v : v)
        }
        guard out.count == expected else { throw Failure.malformed("\(out.count) data values, expected \(expected)") }
        return out
    }
}
