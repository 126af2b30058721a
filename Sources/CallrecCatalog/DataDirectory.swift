// CallrecCatalog — the catalog of recordings, in SQLite through GRDB.
// Owns: the data directory's layout, the schema and its migrations, recordings (with every
// measurement and hash), metadata that may arrive before the audio, source parts and quarantine.

import Foundation

/// The layout of the data directory (`--data`, `CALLREC_DATA`).
public struct DataDirectory: Sendable {
    public let root: String

    public init(_ root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    public var catalogPath: String { root + "/catalog.sqlite" }
    public var audioRoot: String { root + "/audio" }
    public var quarantineRoot: String { root + "/quarantine" }
    public var exportsRoot: String { root + "/exports" }

    /// `audio/YYYY/MM/DD/<uniqueid>.opus`, the day of the call's start in UTC; relative to `root`.
    public static func audioRelativePath(uniqueid: String, startedAt: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day], from: startedAt)
        return String(format: "audio/%04d/%02d/%02d/", c.year!, c.month!, c.day!) + uniqueid + ".opus"
    }

    public func absolute(_ relative: String) -> String { root + "/" + relative }

    /// Creates the directories that must exist (0750) and the catalog file (0640), before SQLite
    /// would create it 0644: recordings are personal data, not for every local user. SQLite gives
    /// the catalog's `-wal` and `-shm` files the catalog's own mode. An existing data directory
    /// or catalog readable by others loses those bits.
    public func create() throws {
        for dir in [root, audioRoot, quarantineRoot, exportsRoot] {
            try Self.makeDirectories(dir)
        }
        Self.restrict(root)
        let fd = open(catalogPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, Self.fileMode)
        if fd >= 0 {
            fchmod(fd, Self.fileMode)
            close(fd)  // an empty file is an empty SQLite database
        } else if errno != EEXIST {
            throw CatalogError("cannot create \(catalogPath): \(String(cString: strerror(errno)))")
        }
        for path in [catalogPath, catalogPath + "-wal", catalogPath + "-shm"] { Self.restrict(path) }
    }

    /// The mode of the files callrec creates: audio, quarantine, reason and lock files, the catalog.
    public static let fileMode: mode_t = 0o640
    /// The mode of the folders callrec creates.
    public static let directoryMode: mode_t = 0o750

    /// Creates `path` and its missing parents with `mode` (set explicitly: the umask is not
    /// trusted to say it). Folders that already exist are left as they are.
    public static func makeDirectories(_ path: String, mode: mode_t = directoryMode) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw CatalogError("\(path) exists and is not a folder") }
            return
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]), mode: mode)
        }
        if mkdir(path, mode) == 0 {
            chmod(path, mode)
        } else if errno != EEXIST {
            throw CatalogError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Takes away others' access to an existing file or folder callrec owns (best effort).
    static func restrict(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT != S_IFLNK, st.st_mode & 0o007 != 0, st.st_uid == geteuid() else { return }
        chmod(path, st.st_mode & 0o7770)
    }
}
