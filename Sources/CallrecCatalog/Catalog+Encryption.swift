import CallrecMedia
import Foundation

extension Catalog {
    /// Whether the stored file at `path` is the one a tombstone with `sha` removed: its plaintext
    /// SHA-256 is the tombstone's, or it is sealed and its data key is gone (only a removal
    /// destroys a key, so such a file is the removed recording's, and noise).
    public func isRemovedFile(_ path: String, tombstone sha: String) -> Bool {
        do {
            return try StoredFile.sha256(of: path) == sha
        } catch let e as SealError where e.kind == .shredded {
            return true
        } catch {
            return false
        }
    }
}
