import Foundation
import NIOConcurrencyHelpers
import CallrecSupport

/// Changes to the directories that hold open recordings, as the kernel reports them (inotify):
/// one instance and one thread per process, for every `OpenAudioCache`.
///
/// Why: the cache compared `stat(path)` with the open file on every request, so that a file
/// renamed over or removed by another process (the CLI's `encrypt`, `decrypt`, `delete`, `purge`)
/// was never served from the descriptor opened before. That stat was 5% of a range's CPU under
/// wrk (a path walk per request, which nginx's `open_file_cache_valid` skips for 60 s). Now the
/// kernel says when a name in a watched directory changes — created, removed, renamed from or to,
/// written, its attributes changed — and the caches drop the entries of that path; an entry whose
/// directory could not be watched (inotify missing, or `max_user_watches` reached) is checked with
/// `stat` on every use as before. The change is seen as soon as this thread reads the event, not
/// at the syscall's return: a request that arrives in between (microseconds; up to a scheduler
/// tick on a loaded machine) is still served from the file it had open, as a request that a stat
/// had just let through was before. Local file systems only (inotify does not see another
/// machine's changes on NFS).
final class FileChanges: @unchecked Sendable {
    /// Nil where inotify is not available: every entry is then checked with `stat`.
    static let shared: FileChanges? = FileChanges()

    private let fd: Int32
    private let lock = NIOLock()
    private var watches: [String: Int32] = [:]
    private var directories: [Int32: String] = [:]
    /// Directories that cannot be watched (a network file system, or no watch left).
    private var refused = Set<String>()
    private var listeners: [ObjectIdentifier: Listener] = [:]

    private struct Listener {
        weak var cache: OpenAudioCache?
    }

    static let mask: UInt32 = UInt32(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE)
        | UInt32(IN_DELETE_SELF | IN_MOVE_SELF)

    private init?() {
        fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "callrec-file-changes"
        thread.start()
    }

    /// Caches hear of every change (they keep only those of their entries' paths).
    func register(_ cache: OpenAudioCache) {
        lock.withLock {
            listeners = listeners.filter { $0.value.cache != nil }
            listeners[ObjectIdentifier(cache)] = Listener(cache: cache)
        }
    }

    /// Watches `directory` (once); false when it cannot be watched, or is on a file system another
    /// machine may change (inotify would not hear of that: those entries `stat` on every use).
    func watch(directory: String) -> Bool {
        lock.withLock {
            if watches[directory] != nil { return true }
            // Asked again on every use of such a directory's entries: the answer is kept, so
            // mountinfo is not read per request.
            if refused.contains(directory) { return false }
            guard let type = Self.fileSystemType(of: directory), !Self.shared(fileSystem: type) else {
                refused.insert(directory)
                return false
            }
            let wd = inotify_add_watch(fd, directory, Self.mask)
            guard wd >= 0 else {
                refused.insert(directory)
                return false
            }
            watches[directory] = wd
            directories[wd] = directory
            return true
        }
    }

    /// Network and cluster file systems, by their type in /proc/self/mountinfo: NFS, SMB/CIFS,
    /// FUSE (sshfs and the like), 9P, Ceph, AFS, Coda, NCP, GFS2, OCFS2, Lustre, GPFS, GlusterFS.
    static func shared(fileSystem type: String) -> Bool {
        ["nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse", "9p", "ceph", "afs", "coda", "ncpfs", "gfs2", "ocfs2", "lustre", "gpfs", "glusterfs"]
            .contains(type) || type.hasPrefix("fuse.")
    }

    /// The type of the file system `path` is on (its longest mount point in /proc/self/mountinfo),
    /// nil when it cannot be told.
    static func fileSystemType(of path: String, mountinfo: String? = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) -> String? {
        guard let mountinfo, let real = realpath(path, nil) else { return nil }
        let resolved = String(cString: real)
        free(real)
        var best: (length: Int, type: String)?
        for line in mountinfo.split(separator: "\n") {
            // id parent major:minor root mount-point options [optional fields] - type source options
            let fields = line.split(separator: " ")
            guard fields.count > 4, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let point = unescape(String(fields[4]))
            let inside = resolved == point || point == "/" || resolved.hasPrefix(point + "/")
            if inside, point.count >= best?.length ?? -1 { best = (point.count, String(fields[dash + 1])) }
        }
        return best?.type
    }

    /// mountinfo writes space, tab, newline and backslash in mount points as octal escapes.
    private static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 0x5C, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func run() {
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        while true {
            let n = read(fd, buffer, size)
            if n < 0 {
                if errno == EINTR { continue }
                // Cannot happen with a valid descriptor; if it does, stop trusting the watches.
                lock.withLock { watches.removeAll() }
                notify { $0.invalidateAll() }
                return
            }
            var changed: [String] = []
            var all = false
            var at = 0
            lock.withLock {
                while at + 16 <= n {
                    let wd = buffer.load(fromByteOffset: at, as: Int32.self)
                    let mask = buffer.load(fromByteOffset: at + 4, as: UInt32.self)
                    let length = Int(buffer.load(fromByteOffset: at + 12, as: UInt32.self))
                    let name = length == 0 ? "" : String(cString: buffer.advanced(by: at + 16).assumingMemoryBound(to: CChar.self))
                    at += 16 + length
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                        all = true
                        continue
                    }
                    guard let directory = directories[wd] else { continue }
                    if mask & (UInt32(IN_IGNORED) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)) != 0 {
                        // The directory itself went away or moved: everything under it, and
                        // the watch is forgotten (watched again by the next open).
                        changed.append(directory + "/")
                        if mask & UInt32(IN_IGNORED) == 0 { inotify_rm_watch(fd, wd) }
                        directories[wd] = nil
                        watches[directory] = nil
                    } else if !name.isEmpty {
                        changed.append(directory + "/" + name)
                    }
                }
            }
            if all {
                notify { $0.invalidateAll() }
            } else if !changed.isEmpty {
                notify { $0.changed(changed) }
            }
        }
    }

    private func notify(_ body: (OpenAudioCache) -> Void) {
        let caches = lock.withLock { listeners.values.compactMap(\.cache) }
        for cache in caches { body(cache) }
    }
}
