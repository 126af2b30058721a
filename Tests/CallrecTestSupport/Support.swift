import Foundation

/// Paths of the package and its fixtures, from this file's location.
public enum Paths {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    public static let fixtures = root + "/Fixtures/audio"
    public static func fixture(_ name: String) -> String { fixtures + "/" + name }
    public static var binary: String { root + "/.build/debug/callrec" }
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

