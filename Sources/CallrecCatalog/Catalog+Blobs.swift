import CallrecMedia
import Foundation
import GRDB
import GRDBSQLite

/// A blob that can be written into the catalog in pieces: its exact length is known first, then its
/// bytes come in order. A long call's waveform JSON is written this way, so it never exists whole in
/// memory (neither built by us nor copied by SQLite as a bound value).
public protocol StreamedBlob {
    /// The exact number of bytes `write` hands over.
    var byteCount: Int { get }
    /// Hands the bytes to `sink` in order, in pieces of at most `chunkSize` bytes.
    func write(chunkSize: Int, to sink: (UnsafeRawBufferPointer) throws -> Void) throws
}

extension Waveform: StreamedBlob {
    public var byteCount: Int { jsonByteCount }
    public func write(chunkSize: Int, to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try writeJSON(chunkSize: chunkSize, to: sink)
    }
}

extension Data: StreamedBlob {
    public var byteCount: Int { count }
    public func write(chunkSize: Int, to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(chunkSize > 0, "pieces must hold at least a byte")
        try withUnsafeBytes { all in
            var at = 0
            while at < all.count {
                let end = Swift.min(all.count, at + chunkSize)
                try sink(UnsafeRawBufferPointer(rebasing: all[at..<end]))
                at = end
            }
        }
    }
}

extension Catalog {
    /// The size of the pieces a streamed blob is written in: SQLite copies each into its pages.
    static let blobChunkSize = 64 * 1024

    /// Stores `json` as the waveform of `uniqueid` (replacing any), in the caller's transaction:
    /// a row holding `zeroblob(n)` of the exact length, then the bytes written in place through
    /// SQLite's incremental blob I/O. Throws, and so rolls the transaction back, when a piece
    /// cannot be written or the source hands over more or fewer bytes than it announced.
    static func saveWaveform(_ db: Database, uniqueid: String, json: some StreamedBlob) throws {
        let n = json.byteCount
        guard n >= 0, n <= Int(Int32.max) else {
            throw DatabaseError(resultCode: .SQLITE_TOOBIG, message: "waveform of \(uniqueid): \(n) bytes cannot be stored as one blob")
        }
        try db.execute(sql: "DELETE FROM waveform WHERE uniqueid = ?", arguments: [uniqueid])
        try db.execute(sql: "INSERT INTO waveform (uniqueid, json) VALUES (?, zeroblob(?))", arguments: [uniqueid, n])
        try writeBlob(db, table: "waveform", column: "json", rowid: db.lastInsertedRowID, length: n, json, what: "waveform of \(uniqueid)")
    }

    /// Writes `source` into the blob of `table.column` at `rowid`, which holds exactly `length` bytes.
    static func writeBlob(_ db: Database, table: String, column: String, rowid: Int64, length: Int, _ source: some StreamedBlob, what: String) throws {
        let connection = db.sqliteConnection
        func failure(_ rc: CInt, _ doing: String) -> DatabaseError {
            DatabaseError(resultCode: ResultCode(rawValue: rc), message: "\(what): \(doing): \(String(cString: sqlite3_errmsg(connection)))")
        }
        var handle: OpaquePointer?
        let opened = sqlite3_blob_open(connection, "main", table, column, rowid, 1, &handle)
        guard opened == SQLITE_OK, let handle else {
            sqlite3_blob_close(handle)  // a no-op on nil
            throw failure(opened, "cannot open the blob")
        }
        var offset = 0
        do {
            try source.write(chunkSize: blobChunkSize) { piece in
                guard piece.count <= length - offset else {
                    throw DatabaseError(resultCode: .SQLITE_ERROR, message: "\(what): more bytes than the \(length) announced")
                }
                guard let base = piece.baseAddress, piece.count > 0 else { return }
                let rc = sqlite3_blob_write(handle, base, CInt(piece.count), CInt(offset))
                guard rc == SQLITE_OK else { throw failure(rc, "cannot write \(piece.count) bytes at \(offset)") }
                offset += piece.count
            }
        } catch {
            sqlite3_blob_close(handle)
            throw error
        }
        let closed = sqlite3_blob_close(handle)
        guard closed == SQLITE_OK else { throw failure(closed, "cannot close the blob") }
        guard offset == length else {
            throw DatabaseError(resultCode: .SQLITE_ERROR, message: "\(what): \(offset) bytes written where \(length) were announced")
        }
    }
}
