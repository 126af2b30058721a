// CallrecSupport — what every callrec module leans on and none owns: threads (Worker, the
// pipeline's BoundedQueue), durable file operations (directory fsync, no-replace renames) and the
// hex and base64url encodings. Foundation only: no module of callrec below it.

import Foundation

/// A blocking FIFO of fixed capacity between two threads of the pipeline: the producer waits when
/// it is full (backpressure keeps memory constant), the consumer waits when it is empty. Either side
/// may close it with an error to stop the other.
public final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private let capacity: Int
    private var finished = false
    public private(set) var failure: (any Error)?

    public init(capacity: Int) { self.capacity = capacity }

    /// Adds an element; returns false if the queue was closed by a failure.
    @discardableResult
    public func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && failure == nil { condition.wait() }
        guard failure == nil else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// The next element, nil at the end; throws the failure of the other side.
    public func pop() throws -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished && failure == nil { condition.wait() }
        if let failure { throw failure }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    /// No more elements: `pop` returns nil once the queue is drained.
    public func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    public func fail(_ error: any Error) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }
}

/// Runs `body` on a new thread; `join()` waits for it and returns what it returned or threw, and
/// `value()` does the same from a task without holding its thread (the way services hand blocking
/// work — transcoding, exports, purges, erasures, SQLite flushes — to a thread of its own).
public final class Worker<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    private var waiter: CheckedContinuation<Void, Never>?

    public init(name: String, _ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            // Linux threads start with their creator's name (an event loop's, "NIO-SGLTN-…", when a
            // task starts one) and Foundation does not apply `Thread.name`: name it here, so that
            // a blocking call on it is not taken for one on an event loop.
            ThreadName.set(name)
            let outcome = Result { try body() }
            lock.lock()
            result = outcome
            let w = waiter
            waiter = nil
            lock.unlock()
            done.signal()
            w?.resume()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    public func join() throws -> T {
        done.wait()
        return try finished()
    }

    private func finished() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try result!.get()
    }
}

extension Worker where T: Sendable {
    /// What `body` returned or threw, awaited. One task at a time may wait.
    public func value() async throws -> T {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if result != nil {
                lock.unlock()
                c.resume()
            } else {
                waiter = c
                lock.unlock()
            }
        }
        return try finished()
    }
}

/// The kernel's name of the current thread (what `top -H`, `perf` and `BlockingCalls` see).
public enum ThreadName {
    private typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
    private typealias GetName = @convention(c) (pthread_t, UnsafeMutablePointer<CChar>, Int) -> Int32
    // glibc has both, but Swift's Glibc module does not declare them (they are behind _GNU_SOURCE).
    private static let setName: SetName? = dlsym(nil, "pthread_setname_np").map { unsafeBitCast($0, to: SetName.self) }
    private static let getName: GetName? = dlsym(nil, "pthread_getname_np").map { unsafeBitCast($0, to: GetName.self) }

    /// Names the current thread (the kernel keeps 15 bytes).
    public static func set(_ name: String) {
        _ = setName?(pthread_self(), String(name.utf8.prefix(15)) ?? "callrec")
    }

    /// The current thread's name, or nil when it cannot be told.
    public static var current: String? {
        guard let getName else { return nil }
        var buffer = [CChar](repeating: 0, count: 64)
        guard getName(pthread_self(), &buffer, buffer.count) == 0 else { return nil }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
