import CallrecSupport
import Foundation
import GRDB

/// Where a synchronous catalog call must not happen: on a NIO event loop thread (the fast path),
/// or inside a request handler's task (`serve` runs tasks on the event loops). A synchronous call
/// blocks its thread on SQLite's locks and fsyncs; with many clients that stalled every
/// connection of the loop (851 ms for `/openapi.yaml` under four list queries). The server's
/// middleware marks request tasks (`$forbidden`); every synchronous catalog call checks. In debug
/// builds (the whole test suite) a violation stops the process; in release it is logged and counted.
public enum BlockingCalls {
    /// Set for the duration of a request by the server's middleware.
    @TaskLocal public static var forbidden = false

    private static let count = NSLock()
    nonisolated(unsafe) private static var seen = 0

    /// How many violations this process has seen (release builds go on after one).
    public static var violations: Int { count.withLock { seen } }

    /// Whether the current thread or task must not block on the catalog.
    public static var isForbiddenHere: Bool {
        if forbidden { return true }
        // How swift-nio names event loop threads: its singleton group's (what `serve` and Hummingbird
        // use) and any other group's. Its blocking pool's ("SGLTN-TP-#", "TP-#") may block.
        guard let thread = ThreadName.current else { return false }
        return thread.hasPrefix("NIO-SGLTN-") || thread.hasPrefix("NIO-ELT-")
    }

    static func check(_ what: @autoclosure () -> String = "a catalog call") {
        guard isForbiddenHere else { return }
        count.withLock { seen += 1 }
        let message = "callrec: \(what()) would block an event loop or a request's task; use the catalog's async methods\n"
        FileHandle.standardError.write(Data(message.utf8))
        assertionFailure(message)
    }
}

extension Catalog {
    /// Every synchronous read of the catalog goes through here (the CLI, ingest and worker threads).
    func reading<T>(_ work: (Database) throws -> T) throws -> T {
        BlockingCalls.check()
        return try pool.read(work)
    }

    /// Every synchronous write of the catalog goes through here.
    func writing<T>(_ work: (Database) throws -> T) throws -> T {
        BlockingCalls.check()
        return try pool.write(work)
    }

    func writingWithoutTransaction<T>(_ work: (Database) throws -> T) throws -> T {
        BlockingCalls.check()
        return try pool.writeWithoutTransaction(work)
    }
}
