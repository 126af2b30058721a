import CallrecCatalog
import CallrecMedia
import Foundation
import CallrecSupport

/// A spool file opened once, for everything the ingest does with it.
///
/// The spool is writable by Asterisk (and whoever else shares its group): a path checked and then
/// opened again can be a different file by then (a symlink swapped in, a FIFO that hangs `open`).
/// So the file is opened once with `O_NOFOLLOW | O_NONBLOCK`, must be a regular file, and is hashed
/// and decoded through that descriptor; its path is only used again to remove or quarantine it,
/// and only while it still names the same inode (`isStill(at:)`).
final class SpoolFile {
    let fd: Int32
    let path: String
    let device: UInt64
    let inode: UInt64
    let size: Int

    enum OpenFailure: Error {
        /// Not there, a symlink, a FIFO, a socket, a folder: not a recording to take.
        case notAFile(String)
        /// Trouble on the machine (permissions, descriptors): try again later.
        case transient(String)
    }

    static func open(_ path: String) -> Result<SpoolFile, OpenFailure> {
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            switch code {
            case ELOOP: return .failure(.notAFile("\(path) is a symbolic link"))
            case ENOENT, ENOTDIR, ENXIO, EISDIR: return .failure(.notAFile("\(path): \(reason)"))
            default: return .failure(.transient("cannot open \(path): \(reason)"))
            }
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            return .failure(.transient("cannot stat \(path): \(reason)"))
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            return .failure(.notAFile("\(path) is not a regular file"))
        }
        return .success(SpoolFile(fd: fd, path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int(st.st_size)))
    }

    private init(fd: Int32, path: String, device: UInt64, inode: UInt64, size: Int) {
        self.fd = fd
        self.path = path
        self.device = device
        self.inode = inode
        self.size = size
    }

    deinit { close(fd) }

    /// Whether `path` (not following a symlink) is this very file.
    func isStill(at path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }

    /// The SHA-256 of the bytes behind the descriptor.
    func sha256() throws -> String { try Transcoder.sha256(ofDescriptor: fd, name: path) }

    /// Removes the file's name from the spool, only if the name still is this file: something
    /// else put there meanwhile is left alone. Returns whether it removed it.
    @discardableResult
    func unlinkIfSame() throws -> Bool {
        guard isStill(at: path) else { return false }
        guard unlink(path) == 0 || errno == ENOENT else { throw MediaError.posix("cannot remove", path) }
        return true
    }
}

/// Creates `path` and its missing parents with `mode` (0750: the data is personal; the umask is
/// not trusted to say so). Folders that already exist are left as they are.
func makeDirectories(_ path: String, mode: mode_t = 0o750) throws {
    try DataDirectory.makeDirectories(path, mode: mode)
}
