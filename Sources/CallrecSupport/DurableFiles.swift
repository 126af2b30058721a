import Foundation

/// A file-system call that failed, with its errno.
public struct FileError: Error, CustomStringConvertible, Sendable, Equatable {
    public let code: Int32
    public let description: String

    public init(_ what: String, _ path: String, _ code: Int32 = errno) {
        self.code = code
        description = "\(what) \(path): \(String(cString: strerror(code)))"
    }
}

/// fsyncs a directory, so that a rename into it survives a power loss.
public func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError("cannot open directory", path) }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw FileError("cannot fsync directory", path) }
}

/// The folder a path is in (`.` for a bare name, `/` at the root).
public func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// rename(2) that never replaces what is at `to`: `renameat2(RENAME_NOREPLACE)` where the C
/// library and the file system have it, else `link` + `unlink` (atomic no-replace too), else a
/// name reserved with `O_EXCL` and renamed over (only ever our own empty placeholder).
/// Returns 0, or the errno (`EEXIST` when `to` is taken, `EXDEV` across file systems).
public func renameNoReplace(_ from: String, _ to: String) -> Int32 {
    if let renameat2 = NoReplace.renameat2 {
        if renameat2(AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */) == 0 { return 0 }
        let e = errno
        if e != EINVAL && e != ENOSYS { return e }
    }
    if link(from, to) == 0 {
        // Two names for one file now; `from` goes (if that fails the file is still in both places).
        if unlink(from) != 0 {
            let e = errno
            unlink(to)
            return e
        }
        return 0
    }
    let e = errno
    guard e == EPERM || e == EMLINK || e == ENOTSUP else { return e }  // EPERM: fs.protected_hardlinks
    let placeholder = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
    guard placeholder >= 0 else { return errno }
    close(placeholder)
    if rename(from, to) != 0 {
        let e = errno
        unlink(to)
        return e
    }
    return 0
}

private enum NoReplace {
    typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    /// glibc ≥ 2.28 has it, but Swift's Glibc module does not declare it.
    static let renameat2: RenameAt2? = {
        guard let symbol = dlsym(nil, "renameat2") else { return nil }  // nil: RTLD_DEFAULT
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()
}
