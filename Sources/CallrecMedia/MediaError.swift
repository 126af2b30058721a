import Foundation

/// Why a recording could not be transcoded. `isPermanent` separates bad audio (quarantine it)
/// from trouble on the machine (keep the source and retry later).
public struct MediaError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The input does not exist, is not a regular file, or cannot be opened.
        case unreadable
        /// The input is not audio callrec can decode (empty, random bytes, text, damaged header).
        case corrupt
        /// The input is audio, but of a shape callrec does not store (channels, rate, codec).
        case unsupported
        /// Reading or writing failed on the machine (disk full, permissions, I/O error).
        case io
        /// libopus or libogg refused to work.
        case encoder
        /// The produced Opus file did not decode back to the source's samples.
        case verification
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// A permanent failure will fail again on the same bytes: the file belongs in quarantine.
    public var isPermanent: Bool {
        switch kind {
        case .corrupt, .unsupported: return true
        case .unreadable, .io, .encoder, .verification: return false
        }
    }

    public static func posix(_ what: String, _ path: String, _ code: Int32 = errno) -> MediaError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOENT, ENOTDIR, EISDIR:
            return MediaError(.unreadable, "\(what) \(path): \(reason)")
        default:
            return MediaError(.io, "\(what) \(path): \(reason)")
        }
    }
}
