import Dispatch
import Testing

/// For suites whose tests block their thread (child processes waited for, sleeps, long decodes):
/// each test runs on a thread of its own instead of Swift's cooperative pool. Every async test
/// shares that pool, one thread per core (2 here): two blocking tests on it stall every other test
/// for as long as they run, and liveness bounds elsewhere (a token's short life, a webhook within
/// 20 s) then fail for no fault of the code under test. `@Suite(.offThePool)`.
public struct OffThePool: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }  // the suite itself: nothing to move
        try await withTaskExecutorPreference(BlockingExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OffThePool {
    public static var offThePool: Self { OffThePool() }
}

/// Runs jobs on a concurrent dispatch queue: its threads are not the cooperative pool's, and
/// dispatch adds threads when they block.
final class BlockingExecutor: TaskExecutor {
    static let shared = BlockingExecutor()
    private let queue = DispatchQueue(label: "callrec.tests.blocking", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
