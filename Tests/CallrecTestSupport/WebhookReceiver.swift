import Foundation

/// THE webhook receiver of the tests: a loopback port served on threads of its own (so that
/// nothing the tests do on Swift's cooperative pool can delay it), plain HTTP/1.1 with
/// keep-alive, recording every request and when it arrived, was answered, or was given up.
///
/// `answer` gives the status of a request (nil: never answer it, as a receiver that hangs); it
/// can be changed while the receiver runs (e.g. refuse until told to accept). While `holding` is
/// true, requests wait (at most 8 s) before they are answered. Stopped by `stop()` or when
/// dropped.
public final class WebhookReceiver: Sendable {
    public struct Hit: Sendable {
        /// When the whole request (head and body) had arrived.
        public var at: Date
        /// The event's `id`, `type` and `recording.uniqueid` (empty when the body has none).
        public var id: String
        public var type: String
        public var uniqueid: String
        /// The `Callrec-Signature` header (empty when absent).
        public var signature: String
        public var body: Data
        /// What `answer` said: the status, or nil for never.
        public var status: Int?
        /// When the status went out (just before it was written to the socket).
        public var answeredAt: Date?
        /// For a request never answered: when the client closed the connection (gave up).
        public var closedAt: Date?
    }

    /// `answer(request, the requests that arrived before it)`: the status, or nil for none.
    public typealias Answer = @Sendable (Hit, [Hit]) -> Int?

    public let port: Int
    private let state: State

    public init(answer: @escaping Answer = { _, _ in 200 }) throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard sock >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, len) == 0 && listen(sock, 128) == 0 && getsockname(sock, $0, &len) == 0 }
        }
        guard ok else {
            close(sock)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        // The threads hold the state, not the receiver, so that dropping the receiver stops them.
        let state = State(fd: sock, answer: answer)
        self.state = state
        Thread { state.acceptLoop() }.start()
    }

    deinit { state.stop() }

    /// `http://127.0.0.1:<port>/hook` (any path is served the same).
    public var url: String { "http://127.0.0.1:\(port)/hook" }
    public var hookURL: URL { URL(string: url)! }
    /// Every request so far, in arrival order.
    public var hits: [Hit] { state.locked { $0.hits } }
    /// When each connection was accepted.
    public var connections: [Date] { state.locked { $0.connections } }
    /// Requests read and not yet answered (or, if never answered, not yet closed by the client).
    public var inFlight: Int { state.locked { $0.inFlight } }
    public var maxInFlight: Int { state.locked { $0.maxInFlight } }
    public var holding: Bool {
        get { state.locked { $0.holding } }
        set { state.locked { $0.holding = newValue } }
    }
    public var answer: Answer {
        get { state.locked { $0.answer } }
        set { state.locked { $0.answer = newValue } }
    }

    /// Closes the port; requests held or never answered are let go (their connections closed).
    public func stop() { state.stop() }

    private final class State: @unchecked Sendable {
        struct Fields {
            var hits: [Hit] = []
            var connections: [Date] = []
            var holding = false
            var inFlight = 0
            var maxInFlight = 0
            var stopped = false
            var answer: Answer
        }
        let fd: Int32
        private let lock = NSLock()
        private var fields: Fields

        init(fd: Int32, answer: @escaping Answer) {
            self.fd = fd
            fields = Fields(answer: answer)
        }

        func locked<T>(_ body: (inout Fields) -> T) -> T { lock.withLock { body(&fields) } }

        var isStopped: Bool { locked { $0.stopped } }

        func stop() {
            let first = locked { f in
                defer { f.stopped = true }
                return !f.stopped
            }
            if first {
                shutdown(fd, Int32(SHUT_RDWR))
                close(fd)
            }
        }

        func acceptLoop() {
            while !isStopped {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 100) > 0 else { continue }
                let c = accept(fd, nil, nil)
                if c < 0 { continue }
                locked { $0.connections.append(Date()) }
                Thread { self.serve(c) }.start()
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
                let (earlier, answer) = locked { f in
                    f.inFlight += 1
                    f.maxInFlight = max(f.maxInFlight, f.inFlight)
                    return (f.hits, f.answer)
                }
                hit.status = answer(hit, earlier)
                let index = locked { f in
                    f.hits.append(hit)
                    return f.hits.count - 1
                }
                let held = Date()
                while locked({ $0.holding }) && Date().timeIntervalSince(held) < 8 && !isStopped { usleep(10000) }
                guard let status = hit.status else {
                    // Never answer: keep the connection open until the client gives up or we stop.
                    var sink: [UInt8] = []
                    while fill(c, &sink) { sink.removeAll() }
                    let closed = Date()
                    locked { f in
                        f.inFlight -= 1
                        f.hits[index].closedAt = closed
                    }
                    return
                }
                let response = Array("HTTP/1.1 \(status) \(status == 200 ? "OK" : "Error")\r\nContent-Length: 0\r\n\r\n".utf8)
                locked { f in
                    f.inFlight -= 1
                    f.hits[index].answeredAt = Date()
                }
                guard send(c, response, response.count, Int32(MSG_NOSIGNAL)) == response.count else { return }
            }
        }
    }
}

/// A webhook receiver for the length of `body`, which gets its URL (path `/hook`):
/// `answer(raw body, Callrec-Signature)` says whether to accept the request (200) or refuse it
/// (500; so does an error thrown). A thin wrapper over `WebhookReceiver`: each request's
/// `answer` runs on the cooperative pool while the receiver's own thread for that connection
/// waits for it, so requests are answered concurrently, as they arrive.
public func withWebhookReceiver(
    _ answer: @escaping @Sendable (Data, String) async throws -> Bool, _ body: @escaping @Sendable (URL) async throws -> Void
) async throws {
    let receiver = try WebhookReceiver { hit, _ in
        let verdict = WebhookVerdict()
        let done = DispatchSemaphore(value: 0)
        Task {
            verdict.accepted = (try? await answer(hit.body, hit.signature)) ?? false
            done.signal()
        }
        done.wait()  // on the receiver's thread, never one of the cooperative pool
        return verdict.accepted ? 200 : 500
    }
    defer { receiver.stop() }
    try await body(receiver.hookURL)
}

/// The answer of an async `withWebhookReceiver` closure, handed to the receiver's thread.
private final class WebhookVerdict: @unchecked Sendable {
    var accepted = false  // written before `done.signal()`, read after `done.wait()`
}
