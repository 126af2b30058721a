import Foundation

/// A webhook receiver on a loopback port, on threads of its own (so that nothing the tests do on
/// Swift's cooperative pool can delay it): plain HTTP/1.1 with keep-alive, recording when each
/// request arrived. `answer` gives the status of a request (nil: never answer it, as a receiver
/// that hangs); while `holding` is true, requests wait before they are answered (at most 8 s).
final class PromisedReceiver: @unchecked Sendable {
    struct Hit {
        var at: Date
        var id: String
        var type: String
        var uniqueid: String
        var signature: String
        var body: Data
        var status: Int?
        /// For a request never answered: when the client closed the connection (gave up).
        var closedAt: Date?
    }

    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var _hits: [Hit] = []
    private var _connections: [Date] = []
    private var _holding = false
    private var _inFlight = 0
    private var _maxInFlight = 0
    private var stopped = false
    private let answer: @Sendable (Hit, [Hit]) -> Int?

    /// `answer(request, earlier requests)`: the status to answer, or nil for none.
    init(answer: @escaping @Sendable (Hit, [Hit]) -> Int? = { _, _ in 200 }) throws {
        self.answer = answer
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, len) == 0 && listen(sock, 128) == 0 && getsockname(sock, $0, &len) == 0 }
        }
        guard sock >= 0, ok else { throw POSIXError(.EADDRNOTAVAIL) }
        fd = sock
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    deinit { stop() }

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var hits: [Hit] { lock.withLock { _hits } }
    /// When each connection was accepted.
    var connections: [Date] { lock.withLock { _connections } }
    var maxInFlight: Int { lock.withLock { _maxInFlight } }
    var inFlight: Int { lock.withLock { _inFlight } }
    var holding: Bool {
        get { lock.withLock { _holding } }
        set { lock.withLock { _holding = newValue } }
    }

    func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        if first {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            lock.withLock { _connections.append(Date()) }
            Thread { [self] in serve(c) }.start()
        }
    }

    /// Reads at least one more byte into `buffer`; false at EOF, on an error or on stop.
    private func fill(_ c: Int32, _ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !isStopped {
            var pfd = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let n = recv(c, &chunk, chunk.count, 0)
            if n <= 0 { return false }
            buffer += chunk[0..<n]
            return true
        }
        return false
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var buffer: [UInt8] = []
        let end = Array("\r\n\r\n".utf8)
        while true {
            var headEnd: Int?
            while headEnd == nil {
                if buffer.count >= 4 {
                    headEnd = (0...(buffer.count - 4)).first { buffer[$0..<$0 + 4].elementsEqual(end) }
                }
                if headEnd == nil, !fill(c, &buffer) { return }
            }
            let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
            var length = 0
            var signature = ""
            for line in head.split(separator: "\r\n").dropFirst() {
                let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { continue }
                if kv[0].lowercased() == "content-length" { length = Int(kv[1]) ?? 0 }
                if kv[0].lowercased() == "callrec-signature" { signature = kv[1] }
            }
            let bodyStart = headEnd! + 4
            while buffer.count < bodyStart + length { if !fill(c, &buffer) { return } }
            let body = Data(buffer[bodyStart..<bodyStart + length])
            buffer.removeFirst(bodyStart + length)

            let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
            var hit = Hit(
                at: Date(), id: json["id"] as? String ?? "", type: json["type"] as? String ?? "",
                uniqueid: (json["recording"] as? [String: Any])?["uniqueid"] as? String ?? "", signature: signature, body: body)
            let earlier = lock.withLock {
                _inFlight += 1
                _maxInFlight = max(_maxInFlight, _inFlight)
                return _hits
            }
            hit.status = answer(hit, earlier)
            lock.withLock { _hits.append(hit) }
            let held = Date()
            while holding && Date().timeIntervalSince(held) < 8 && !isStopped { usleep(10000) }
            guard let status = hit.status else {
                // Never answer: keep the connection open until the client gives up or we stop.
                var sink: [UInt8] = []
                while fill(c, &sink) { sink.removeAll() }
                let closed = Date()
                lock.withLock {
                    _inFlight -= 1
                    if let i = _hits.lastIndex(where: { $0.id == hit.id && $0.at == hit.at }) { _hits[i].closedAt = closed }
                }
                return
            }
            let response = Array("HTTP/1.1 \(status) \(status == 200 ? "OK" : "Error")\r\nContent-Length: 0\r\n\r\n".utf8)
            lock.withLock { _inFlight -= 1 }
            guard send(c, response, response.count, Int32(MSG_NOSIGNAL)) == response.count else { return }
        }
    }
}
