// CallrecAMI — callrec's side of the Asterisk Manager Interface: one TCP connection (login,
// reconnect with back-off, keep-alive Ping), actions correlated by ActionID, the call events it
// follows fed to a `CallTracker`, and the PCI pauses (`MixMonitorMute`) of `PauseService`.

/// One AMI message: the `Key: Value` lines of a block ended by a blank line, in order (a key may
/// repeat, as `ChanVariable` does).
public struct AMIMessage: Sendable, Equatable, CustomStringConvertible {
    public var fields: [(key: String, value: String)]

    public init(_ fields: [(String, String)]) { self.fields = fields.map { (key: $0.0, value: $0.1) } }
    public init(fields: [(key: String, value: String)]) { self.fields = fields }

    /// The first value of `key` (AMI keys are case-insensitive; Asterisk sends them capitalised).
    public subscript(_ key: String) -> String? {
        for f in fields where f.key == key { return f.value }
        for f in fields where f.key.lowercased() == key.lowercased() { return f.value }
        return nil
    }

    public var event: String? { fields.first?.key == "Event" ? fields.first?.value : self["Event"] }
    public var response: String? { fields.first?.key == "Response" ? fields.first?.value : nil }

    /// `ChanVariable: NAME=value` lines (manager.conf `channelvars`).
    public func channelVariable(_ name: String) -> String? {
        let prefix = name + "="
        for f in fields where f.key == "ChanVariable" && f.value.hasPrefix(prefix) { return String(f.value.dropFirst(prefix.count)) }
        // Older Asterisk: `ChanVariable(Channel): NAME=value`.
        for f in fields where f.key.hasPrefix("ChanVariable") && f.value.hasPrefix(prefix) { return String(f.value.dropFirst(prefix.count)) }
        return nil
    }

    /// The wire form: `Key: Value\r\n` lines and a blank line.
    public var wire: String { fields.map { "\($0.key): \($0.value)\r\n" }.joined() + "\r\n" }

    /// Never shows a `Secret`.
    public var description: String {
        fields.map { "\($0.key): \($0.key.lowercased() == "secret" ? "***" : $0.value)" }.joined(separator: ", ")
    }

    public static func == (a: AMIMessage, b: AMIMessage) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// What the parser hands out: the banner once, then messages.
public enum AMIFrame: Sendable, Equatable {
    /// `Asterisk Call Manager/11.0.0`: the first line, with no blank line after it.
    case banner(String)
    case message(AMIMessage)
}

/// An incremental parser of the AMI byte stream: feed it bytes as they arrive, in any pieces;
/// it returns complete frames and keeps the rest. Lines end with CRLF (a bare LF is accepted);
/// a message ends with an empty line. Events whose name `wanted` refuses are skipped without
/// building their fields (most of a busy PBX's traffic: VarSet, Newexten, …).
public struct AMIParser: Sendable {
    private var pending: [UInt8] = []
    private var sawBanner = false
    /// Events to build; others are skipped (responses are always built).
    public var wanted: (@Sendable (Substring) -> Bool)?
    /// A line longer than this (a broken peer) is cut: memory stays bounded.
    static let maxPending = 1 << 20
    public private(set) var skipped = 0

    public init(expectBanner: Bool = true, wanted: (@Sendable (Substring) -> Bool)? = nil) {
        sawBanner = !expectBanner
        self.wanted = wanted
        pending.reserveCapacity(8192)
    }

    /// Parses what `bytes` completes; incomplete data stays for the next call.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [AMIFrame] {
        var out: [AMIFrame] = []
        if pending.isEmpty {
            let used = parse(bytes, into: &out)
            if used < bytes.count { pending.append(contentsOf: bytes[used...]) }
        } else {
            pending.append(contentsOf: bytes)
            let used = pending.withUnsafeBytes { parse($0, into: &out) }
            pending.removeFirst(used)
        }
        if pending.count > Self.maxPending { pending.removeAll(keepingCapacity: false) }
        return out
    }

    public mutating func feed(_ bytes: [UInt8]) -> [AMIFrame] { bytes.withUnsafeBytes { feed($0) } }

    /// Parses whole frames from `buf`; returns how many bytes they took.
    private mutating func parse(_ buf: UnsafeRawBufferPointer, into out: inout [AMIFrame]) -> Int {
        let n = buf.count
        var start = 0
        if !sawBanner {
            guard let nl = Self.find(buf, from: 0, byte: 10) else { return 0 }
            let end = nl > 0 && buf[nl - 1] == 13 ? nl - 1 : nl
            out.append(.banner(String(decoding: UnsafeRawBufferPointer(rebasing: buf[0..<end]), as: UTF8.self)))
            sawBanner = true
            start = nl + 1
        }
        while start < n {
            // Skip stray blank lines between messages.
            if buf[start] == 10 { start += 1; continue }
            if buf[start] == 13, start + 1 < n, buf[start + 1] == 10 { start += 2; continue }
            if buf[start] == 13 && start + 1 == n { break }
            // The end of this message: an empty line.
            guard let (bodyEnd, next) = Self.messageEnd(buf, from: start) else { break }
            if let wanted, let name = Self.eventName(buf, start, bodyEnd), !wanted(name) {
                skipped += 1
            } else {
                out.append(.message(Self.fields(buf, start, bodyEnd)))
            }
            start = next
        }
        return start
    }

    /// Where the message starting at `from` ends: (end of its last line's text, start of the next message).
    @inline(__always)
    static func messageEnd(_ buf: UnsafeRawBufferPointer, from: Int) -> (Int, Int)? {
        var i = from
        let n = buf.count
        while let nl = find(buf, from: i, byte: 10) {
            // The line after this newline is empty: \n or \r\n.
            let after = nl + 1
            if after < n, buf[after] == 10 { return (nl, after + 1) }
            if after + 1 < n, buf[after] == 13, buf[after + 1] == 10 { return (nl, after + 2) }
            if after >= n || (after + 1 >= n && buf[after] == 13) { return nil }
            i = after
        }
        return nil
    }

    @inline(__always)
    static func find(_ buf: UnsafeRawBufferPointer, from: Int, byte: UInt8) -> Int? {
        guard from < buf.count, let base = buf.baseAddress else { return nil }
        guard let p = memchr(base + from, Int32(byte), buf.count - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(p))
    }

    /// `Event: Name` as the first line, else nil (not an event, or not first).
    static func eventName(_ buf: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Substring? {
        let prefix: [UInt8] = Array("Event: ".utf8)
        guard end - start > prefix.count else { return nil }
        for k in 0..<prefix.count where buf[start + k] != prefix[k] { return nil }
        var e = start + prefix.count
        while e < end, buf[e] != 10, buf[e] != 13 { e += 1 }
        return Substring(String(decoding: UnsafeRawBufferPointer(rebasing: buf[(start + prefix.count)..<e]), as: UTF8.self))
    }

    static func fields(_ buf: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> AMIMessage {
        var fields: [(key: String, value: String)] = []
        fields.reserveCapacity(24)
        var i = start
        while i < end {
            let nl = find(UnsafeRawBufferPointer(rebasing: buf[0..<end]), from: i, byte: 10) ?? end
            var lineEnd = nl
            if lineEnd > i, buf[lineEnd - 1] == 13 { lineEnd -= 1 }
            // Key up to ':'; the value after ": " (or ":").
            var colon = i
            while colon < lineEnd, buf[colon] != 58 { colon += 1 }
            let key = String(decoding: UnsafeRawBufferPointer(rebasing: buf[i..<colon]), as: UTF8.self)
            var v = min(colon + 1, lineEnd)
            if v < lineEnd, buf[v] == 32 { v += 1 }
            let value = colon < lineEnd ? String(decoding: UnsafeRawBufferPointer(rebasing: buf[v..<lineEnd]), as: UTF8.self) : ""
            if lineEnd > i { fields.append((key: key, value: value)) }
            i = nl + 1
        }
        return AMIMessage(fields: fields)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
