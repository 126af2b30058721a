import Foundation

/// The environment a test gives `callrec`: this process's, without any CALLREC_* a developer's
/// shell may carry (a test's outcome must not depend on it), plus `extra`.
public func callrecEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLREC_") }
    for (k, v) in extra { env[k] = v }
    return env
}

/// Runs the built `callrec` (`Paths.binary`) to the end, with `callrecEnvironment(env)` and
/// `stdin` (nil: /dev/null): its status, stdout and stderr. The one way tests run the binary to
/// completion; `CallrecProcess` is the same, left running.
@discardableResult
public func callrec(_ args: [String], env: [String: String] = [:], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = try CallrecProcess(args, env: env, stdin: stdin)
    p.process.waitUntilExit()
    return (p.process.terminationStatus, p.out, p.err)
}

/// The built `callrec` running in the background, with `callrecEnvironment(env)`; stdout and
/// stderr go to files (so that no pipe fills up and blocks it): two temporary ones, removed when
/// this is dropped, or both to `log` (emptied first, kept). SIGKILLed if still running when dropped.
public final class CallrecProcess {
    public let process = Process()
    public let outPath: String
    public let errPath: String
    private let temporary: Bool

    public init(_ args: [String], env: [String: String] = [:], stdin: String? = nil, log: String? = nil) throws {
        if let log {
            outPath = log
            errPath = log
            temporary = false
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            let base = NSTemporaryDirectory() + "callrec-test-\(UUID().uuidString)"
            outPath = base + ".out"
            errPath = base + ".err"
            temporary = true
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            _ = FileManager.default.createFile(atPath: errPath, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        }
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = args
        process.environment = callrecEnvironment(env)
        if let stdin {
            let pipe = Pipe()
            process.standardInput = pipe
            try process.run()
            pipe.fileHandleForWriting.write(Data(stdin.utf8))
            try pipe.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if temporary {
            unlink(outPath)
            unlink(errPath)
        }
    }

    /// What it wrote so far (with `log`, both are the whole log).
    public var out: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    public var err: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits for the exit: the status, or the signal that ended it.
    @discardableResult
    public func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }
}
