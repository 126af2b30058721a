import Foundation
import NIOCore

/// The descriptor of a NIO TCP connection, for `RawAudioFastPath` to answer a range with its own
/// `send(MSG_MORE)` + `sendfile(2)` instead of going through NIO's write path.
///
/// Why: with the head parsed from bytes and the decision cached, NIO's outbound machinery was
/// most of the user time left per range (perf under wrk: the pending-writes manager, a promise
/// and its callback, two `setOption` round trips for `TCP_CORK` — about 10 µs of a 29 µs range),
/// while nginx answers the same range with writev + sendfile. NIO does not expose a channel's
/// descriptor, so it is read by reflection from NIO's socket object (`BaseSocketChannel.socket`,
/// `BaseSocket.descriptor`) and trusted only when the kernel agrees: `getsockname`/`getpeername`
/// of that descriptor must be the channel's local and remote addresses. When anything does not
/// match (another NIO version, another channel type) there is no descriptor and every answer goes
/// through NIO as before. The descriptor is used only on the channel's event loop, inside a read,
/// while the channel is active and nothing of this handler's is queued in NIO, so NIO cannot
/// have closed it or have bytes of its own waiting to go first.
enum DirectSocket {
    /// `CALLREC_DIRECT_SEND=off` sends everything through NIO (for measuring: scripts/bench-serve).
    static let enabled = ProcessInfo.processInfo.environment["CALLREC_DIRECT_SEND"] != "off"

    /// The channel's socket descriptor, or nil (see above).
    static func descriptor(of channel: any Channel) -> Int32? {
        guard let socket = property("socket", of: channel), let fd = property("descriptor", of: socket) as? Int32, fd >= 0,
            let local = channel.localAddress, let remote = channel.remoteAddress,
            address(fd, getsockname) == local, address(fd, getpeername) == remote
        else { return nil }
        return fd
    }

    /// A stored property of an object, found on its class or a superclass.
    private static func property(_ name: String, of value: Any) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let m = mirror {
            if let child = m.children.first(where: { $0.label == name }) { return child.value }
            mirror = m.superclassMirror
        }
        return nil
    }

    private static func address(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) } }
        guard rc == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: storage) { SocketAddress($0.load(as: sockaddr_in.self), host: "") }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { SocketAddress($0.load(as: sockaddr_in6.self), host: "") }
        default:
            return nil
        }
    }

    /// What a direct send managed.
    enum Sent {
        /// Everything.
        case all
        /// The socket's buffer filled: `head` bytes of the head (and of `bytes` after it) and
        /// `body` bytes of the file went.
        case part(head: Int, body: Int)
        /// The connection failed (reset, broken pipe): close it.
        case failed
    }

    /// Sends `head` and then `count` bytes of `file` from `offset` (a corked pair: the head with
    /// MSG_MORE waits for the body's first bytes), without blocking; or the head alone; or the
    /// head and `bytes` (a sealed range's plaintext) in one `sendmsg`, without copying them together.
    static func send(_ fd: Int32, head: ByteBuffer, bytes: ByteBuffer? = nil, file: Int32?, offset: Int, count: Int) -> Sent {
        let more = file != nil && count > 0
        var headSent = 0
        let total = head.readableBytes + (bytes?.readableBytes ?? 0)
        let flags = Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT) | (more ? Int32(MSG_MORE) : 0)
        while headSent < total {
            let n: Int
            if let bytes, bytes.readableBytes > 0 {
                n = head.withUnsafeReadableBytes { h in
                    bytes.withUnsafeReadableBytes { b in
                        // Two iovecs at most: what is left of the head, then of the bytes.
                        var pair = (iovec(), iovec())
                        return withUnsafeMutableBytes(of: &pair) { raw in
                            let v = raw.bindMemory(to: iovec.self)
                            var used = 0
                            if headSent < h.count {
                                v[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress! + headSent), iov_len: h.count - headSent)
                                v[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress!), iov_len: b.count)
                                used = 2
                            } else {
                                let at = headSent - h.count
                                v[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress! + at), iov_len: b.count - at)
                                used = 1
                            }
                            var message = msghdr()
                            message.msg_iov = v.baseAddress
                            message.msg_iovlen = used
                            return sendmsg(fd, &message, flags)
                        }
                    }
                }
            } else {
                n = head.withUnsafeReadableBytes { h in Glibc.send(fd, h.baseAddress! + headSent, h.count - headSent, flags) }
            }
            if n > 0 {
                headSent += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return .part(head: headSent, body: 0)
            } else {
                return .failed
            }
        }
        guard let file, count > 0 else { return .all }
        var bodySent = 0
        var at = off_t(offset)
        while bodySent < count {
            let n = sendfile(fd, file, &at, count - bodySent)
            if n > 0 {
                bodySent += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return .part(head: headSent, body: bodySent)
            } else {
                // 0: the file is shorter than the range (cut behind our back) — as NIO's sendfile
                // would, the connection is closed rather than the response left short.
                return .failed
            }
        }
        return .all
    }
}
