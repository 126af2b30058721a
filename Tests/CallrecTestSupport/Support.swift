import Foundation

/// Paths of the package and its fixtures, from this file's location.
public enum Paths {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    public static let fixtures = root + "/Fixtures/audio"
    public static func fixture(_ name: String) -> String { fixtures + "/" + name }

    /// The `callrec` built beside this test bundle (`swift build` puts both in one folder; a
    /// debug build's `.build/debug` is the fallback), and never one older than the sources: a
    /// test of a stale binary would pass or fail for code that is no longer there. Checked once;
    /// a stale or missing binary stops the run with the reason, loudly.
    public static var binary: String { checkedBinary }

    private static let checkedBinary: String = {
        let candidate = builtBinary()
        if let problem = staleness(of: candidate, sources: root + "/Sources") {
            fatalError("callrec tests: \(problem): run `swift build` (or `swift build --build-tests`) before `swift test`")
        }
        return candidate
    }()

    /// `callrec` in the folder of the running test bundle, else `.build/debug/callrec`.
    static func builtBinary() -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first ?? ""
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the bundle is an executable; elsewhere a folder `….xctest/Contents/MacOS/`.
        while dir.path.count > 1, dir.path.contains(".xctest") { dir = dir.deletingLastPathComponent() }
        let beside = dir.appendingPathComponent("callrec").path
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : root + "/.build/debug/callrec"
    }

    /// Why `binary` cannot be trusted (missing, or older than a file under `sources`), or nil.
    public static func staleness(of binary: String, sources: String) -> String? {
        guard let built = modified(binary) else { return "no callrec binary at \(binary)" }
        let files = FileManager.default.enumerator(atPath: sources)?.allObjects as? [String] ?? []
        let newer = files.filter { (modified(sources + "/" + $0) ?? .distantPast) > built }
        guard let first = newer.sorted().first else { return nil }
        return "\(binary) is older than Sources/\(first)" + (newer.count > 1 ? " and \(newer.count - 1) more" : "")
    }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

/// A fresh directory, removed when the test ends.
public final class TempDir {
    public let path: String
    public init() {
        path = NSTemporaryDirectory() + "callrec-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    public func file(_ name: String) -> String { path + "/" + name }
    public var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }
}

/// Copies a fixture (a name under Fixtures/audio, or an absolute path) to `path`, creating its
/// folder: the first step of every ingest a test does. Returns `path`.
@discardableResult
public func placeFixture(_ fixture: String, at path: String) throws -> String {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: fixture.hasPrefix("/") ? fixture : Paths.fixture(fixture), toPath: path)
    return path
}

/// Polls `condition` every 50 ms until it holds or `timeout` seconds pass; the last answer.
public func eventually(_ timeout: TimeInterval = 15, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}

/// `eventually` for async tests and conditions: polls every `every` until it holds or `timeout`
/// passes, suspending (never blocking a thread of the cooperative pool) in between. A name of its
/// own: with one name, an async test could pick the blocking overload for a synchronous closure.
public func eventuallyAsync(
    _ timeout: TimeInterval = 15, every: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try await condition() { return true }
        try? await Task.sleep(for: every)
    }
    return try await condition()
}

/// Runs a program; returns its exit status, stdout and stderr.
@discardableResult
public func run(_ program: String, _ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: Data, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
    p.arguments = program.hasPrefix("/") ? args : [program] + args
    if let environment { p.environment = environment }
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, o, String(decoding: e, as: UTF8.self))
}
