import Foundation
import Testing

@testable import CallrecSupport

/// `Worker`: blocking work on a thread of its own, joined or awaited.
struct WorkerTests {
    struct Refused: Error, Equatable {}

    @Test func awaitsWhatTheThreadReturnsOrThrows() async throws {
        // Awaited while the thread still works, and after it has finished.
        let slow = Worker(name: "test-slow") { () -> Int in
            Thread.sleep(forTimeInterval: 0.2)
            return 42
        }
        #expect(try await slow.value() == 42)
        let quick = Worker(name: "test-quick") { "done" }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await quick.value() == "done")
        #expect(try quick.join() == "done")
        let failing = Worker(name: "test-fail") { () throws -> Int in throw Refused() }
        await #expect(throws: Refused.self) { try await failing.value() }
        #expect(throws: Refused.self) { try failing.join() }
    }
}
