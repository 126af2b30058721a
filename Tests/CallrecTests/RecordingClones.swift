import CallrecCatalog
import Foundation
import GRDB

/// `count` more recordings for the kill tests, made fast: copies of `first`'s row under uniqueids
/// `<base>.1` … `<base>.count`, their files hard links to its file. Every column is copied as it
/// is (read from the schema, so a later migration's columns come along) but the uniqueid and the
/// path.
func cloneRecording(_ first: RecordingRow, count: Int, in catalog: Catalog) throws {
    let base = first.uniqueid.split(separator: ".").first.map(String.init) ?? first.uniqueid
    let file = (first.opusPath as NSString).lastPathComponent
    try catalog.pool.write { db in
        let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(recording)").map { $0["name"] as String }
            .filter { $0 != "uniqueid" && $0 != "opus_path" }.joined(separator: ", ")
        for i in 1...count {
            let id = "\(base).\(i)"
            let rel = first.opusPath.replacingOccurrences(of: file, with: "\(id).opus")
            link(catalog.data.absolute(first.opusPath), catalog.data.absolute(rel))
            try db.execute(
                sql: "INSERT INTO recording (uniqueid, opus_path, \(columns)) SELECT ?, ?, \(columns) FROM recording WHERE uniqueid = ?",
                arguments: [id, rel, first.uniqueid])
        }
    }
}
