import CallrecMedia
import CallrecSupport
import Crypto
import Foundation
import GRDB

/// A key-encryption key (KEK): 32 bytes, with an id derived from it (HMAC-SHA256 of a label,
/// first 8 bytes in hex), so a KEK given in a file names itself and the id says nothing of it.
public struct KEK: Sendable {
    public let id: String
    let key: SymmetricKey
    /// The file it came from; `generated`: one of `<data>/secrets/kek/`, which `keys rotate` may retire.
    public let path: String
    public let generated: Bool

    init(bytes: [UInt8], path: String, generated: Bool) {
        key = SymmetricKey(data: bytes)
        id = Array(Array(HMAC<SHA256>.authenticationCode(for: Array("callrec kek id".utf8), using: key)).prefix(8)).hexString
        self.path = path
        self.generated = generated
    }

    /// 32 raw bytes, or 64 hex digits (a trailing newline allowed).
    static func read(_ path: String, generated: Bool) throws -> KEK {
        guard let data = FileManager.default.contents(atPath: path) else { throw CatalogError("cannot read the key-encryption key \(path)") }
        var bytes = [UInt8](data)
        if bytes.count != 32 {
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.utf8.count == 64, let hex = [UInt8](hex: text) else {
                throw CatalogError("\(path): a key-encryption key is 32 bytes (or 64 hex digits), not \(bytes.count) bytes")
            }
            bytes = hex
        }
        return KEK(bytes: bytes, path: path, generated: generated)
    }
}

/// What `keys rotate` did.
public struct RotationReport: Codable, Sendable, Equatable {
    public var kek = ""
    public var rewrapped = 0
    public var keys = 0
    public var retired: [String] = []
    public init() {}
}

/// The recordings' data keys, each wrapped (AES-256-GCM) by a key-encryption key, in a SQLite file
/// of their own: `<data>/keys.sqlite` (0600), not the catalog, so that it can be backed up on its
/// own, shorter cycle (an erased recording's key then leaves the backups when they expire).
/// Losing it loses the sealed audio; losing the catalog loses nothing (`reindex`).
///
/// KEKs: `CALLREC_KEK_FILE` (the current one, when set) and `CALLREC_KEK_OLD_FILES` (colon-
/// separated, still accepted for unwrapping), else generated into `<data>/secrets/kek/` (0600;
/// the newest is current). Several are live at once; each row names the one that wraps it.
///
/// Registered with `DataKeys`, so every reader of stored audio in this process finds its keys.
/// Unwrapped keys are kept in memory for `cacheSeconds` (an event loop reads only those);
/// `destroy` drops them at once in this process, another process's within that time.
public final class KeyStore: DataKeySource, @unchecked Sendable {
    public let data: DataDirectory
    let environment: [String: String]
    private let lock = NSLock()
    private var pool: DatabasePool?
    private var cache: [DataKeyID: (key: SymmetricKey, at: UInt64)] = [:]
    private var keks: [String: KEK] = [:]
    static let cacheSeconds: UInt64 = 5

    public init(data: DataDirectory, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.data = data
        self.environment = environment
        DataKeys.register(self)
    }

    public var path: String { data.root + "/keys.sqlite" }
    var kekDirectory: String { data.root + "/secrets/kek" }

    // MARK: the database (opened on first use: a data directory that never seals has none)

    func database() throws -> DatabasePool {
        lock.lock()
        defer { lock.unlock() }
        if let pool { return pool }
        try DataDirectory.makeDirectories(data.root)
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "callrec.keys"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A destroyed key is overwritten, not left in a free page.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        let p: DatabasePool
        do { p = try DatabasePool(path: path, configuration: config) } catch {
            throw CatalogError("cannot open the key store \(path): \(error)")
        }
        var m = DatabaseMigrator()
        m.registerMigration("v1-data-keys") { db in
            try db.execute(sql: """
                CREATE TABLE data_key (
                    key_id BLOB PRIMARY KEY,
                    uniqueid TEXT NOT NULL UNIQUE,
                    kek_id TEXT NOT NULL,
                    wrapped BLOB NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX data_key_kek ON data_key(kek_id);
                """)
        }
        try Catalog.whileLocked(data.root + "/.keys-migrate.lock") { try m.migrate(p) }
        for suffix in ["", "-wal", "-shm"] { chmod(path + suffix, 0o600) }
        pool = p
        return p
    }

    // MARK: KEKs

    /// Every live KEK by id (the environment's, and the generated ones), read again each call.
    public func liveKEKs() throws -> [String: KEK] {
        var all: [String: KEK] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: kekDirectory)) ?? [] where name.hasSuffix(".kek") && !name.hasPrefix(".") {
            if let k = try? KEK.read(kekDirectory + "/" + name, generated: true) { all[k.id] = k }
        }
        for p in (environment["CALLREC_KEK_OLD_FILES"] ?? "").split(separator: ":").map(String.init) where !p.isEmpty {
            let k = try KEK.read(p, generated: false)
            all[k.id] = k
        }
        if let p = environment["CALLREC_KEK_FILE"], !p.isEmpty {
            let k = try KEK.read(p, generated: false)
            all[k.id] = k
        }
        lock.lock()
        keks = all
        lock.unlock()
        return all
    }

    /// The KEK new keys are wrapped with: `CALLREC_KEK_FILE`, else the newest generated one
    /// (one is generated when there is none).
    public func currentKEK() throws -> KEK {
        if let p = environment["CALLREC_KEK_FILE"], !p.isEmpty { return try KEK.read(p, generated: false) }
        if let newest = try newestGenerated() { return newest }
        return try generateKEK()
    }

    func newestGenerated() throws -> KEK? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: kekDirectory)) ?? [])
            .filter { $0.hasSuffix(".kek") && !$0.hasPrefix(".") }.sorted()
        guard let last = names.last else { return nil }
        return try KEK.read(kekDirectory + "/" + last, generated: true)
    }

    /// A new random KEK in `<data>/secrets/kek/<ns since 1970>-<id>.kek` (0600), written to a
    /// temporary name, fsynced, linked into place and the folder fsynced: never a partial key.
    @discardableResult
    public func generateKEK() throws -> KEK {
        try DataDirectory.makeDirectories(data.root + "/secrets", mode: 0o700)
        try DataDirectory.makeDirectories(kekDirectory, mode: 0o700)
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
        let stamp = String(format: "%020llu", UInt64(Date().timeIntervalSince1970 * 1e9))
        let kek = KEK(bytes: bytes, path: "", generated: true)
        let final = kekDirectory + "/\(stamp)-\(kek.id).kek"
        let temp = kekDirectory + "/.\(stamp).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CatalogError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        defer { unlink(temp) }
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, 32) } == 32 && fsync(fd) == 0
        close(fd)
        guard ok, link(temp, final) == 0 else { throw CatalogError("cannot write \(final): \(String(cString: strerror(errno)))") }
        try syncDirectory(kekDirectory)
        return KEK(bytes: bytes, path: final, generated: true)
    }

    // MARK: wrapping

    static func aad(_ id: DataKeyID, _ uniqueid: String, _ kekID: String) -> [UInt8] {
        Array("callrec data key v1".utf8) + id.bytes + Array(uniqueid.utf8) + [0] + Array(kekID.utf8)
    }

    static func wrap(_ key: SymmetricKey, id: DataKeyID, uniqueid: String, kek: KEK) throws -> [UInt8] {
        let box = try AES.GCM.seal(key.withUnsafeBytes { Array($0) }, using: kek.key, authenticating: aad(id, uniqueid, kek.id))
        return Array(box.combined!)
    }

    static func unwrap(_ wrapped: [UInt8], id: DataKeyID, uniqueid: String, kek: KEK) throws -> SymmetricKey {
        do {
            let box = try AES.GCM.SealedBox(combined: wrapped)
            return SymmetricKey(data: try AES.GCM.open(box, using: kek.key, authenticating: aad(id, uniqueid, kek.id)))
        } catch {
            throw CatalogError("the data key \(id) does not unwrap with the key-encryption key \(kek.id)")
        }
    }

    func kek(_ id: String) throws -> KEK {
        lock.lock()
        let known = keks[id]
        lock.unlock()
        if let known { return known }
        guard let k = try liveKEKs()[id] else {
            throw CatalogError("the key-encryption key \(id) is not available (CALLREC_KEK_FILE, CALLREC_KEK_OLD_FILES, \(kekDirectory))")
        }
        return k
    }

    // MARK: data keys

    /// The recording's data key, created (random 256 bits, wrapped by the current KEK, committed)
    /// when it has none. One key per recording: sealing it again (an appended part, `encrypt`
    /// after `decrypt`) reuses it under a fresh per-file salt.
    public func dataKey(forRecording uniqueid: String) throws -> DataKey {
        let db = try database()
        if let existing = try db.read({ try Row.fetchOne($0, sql: "SELECT key_id, kek_id, wrapped FROM data_key WHERE uniqueid = ?", arguments: [uniqueid]) }) {
            let id = DataKeyID([UInt8](existing["key_id"] as Data))!
            let key = try Self.unwrap([UInt8](existing["wrapped"] as Data), id: id, uniqueid: uniqueid, kek: try kek(existing["kek_id"]))
            remember(id, key)
            return DataKey(id: id, key: key)
        }
        let key = SymmetricKey(size: .bits256)
        let id = DataKeyID.random()
        while true {
            let kek = try currentKEK()
            let wrapped = try Self.wrap(key, id: id, uniqueid: uniqueid, kek: kek)
            let stored: Bool = try db.write { db in
                // Inside the write lock: a rotation retires a KEK file in its own write
                // transaction, so a key is never committed under a KEK just deleted.
                if kek.generated, access(kek.path, F_OK) != 0 { return false }
                try db.execute(
                    sql: "INSERT INTO data_key (key_id, uniqueid, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(uniqueid) DO NOTHING",
                    arguments: [Data(id.bytes), uniqueid, kek.id, Data(wrapped), Int(Date().timeIntervalSince1970)])
                return true
            }
            if stored { break }
        }
        // Another process may have created one meanwhile: the stored row wins.
        return try dataKey(forRecording: uniqueid)
    }

    /// Data keys for many recordings at once, in one transaction (those that have one keep it):
    /// for bulk sealing and the benchmarks.
    public func createDataKeys(forRecordings uniqueids: [String]) throws {
        let db = try database()
        let kek = try currentKEK()
        let rows = try uniqueids.map { uid -> (Data, String, Data) in
            let id = DataKeyID.random()
            return (Data(id.bytes), uid, Data(try Self.wrap(SymmetricKey(size: .bits256), id: id, uniqueid: uid, kek: kek)))
        }
        try db.write { db in
            if kek.generated, access(kek.path, F_OK) != 0 { throw CatalogError("the key-encryption key \(kek.id) was retired meanwhile; try again") }
            let stmt = try db.makeStatement(sql: """
                INSERT INTO data_key (key_id, uniqueid, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(uniqueid) DO NOTHING
                """)
            let now = Int(Date().timeIntervalSince1970)
            for (id, uid, wrapped) in rows { try stmt.execute(arguments: [id, uid, kek.id, wrapped, now]) }
        }
    }

    public func dataKey(_ id: DataKeyID) throws -> SymmetricKey? {
        if let k = cachedDataKey(id) { return k }
        guard FileManager.default.fileExists(atPath: path) else { return nil }  // no key store: nothing of ours
        let db = try database()
        guard let row = try db.read({ try Row.fetchOne($0, sql: "SELECT uniqueid, kek_id, wrapped FROM data_key WHERE key_id = ?", arguments: [Data(id.bytes)]) }) else {
            return nil
        }
        let key = try Self.unwrap([UInt8](row["wrapped"] as Data), id: id, uniqueid: row["uniqueid"], kek: try kek(row["kek_id"]))
        remember(id, key)
        return key
    }

    /// The data keys of these recordings (those that have one), unwrapped, by key id: one query
    /// per 500 recordings and the KEKs read once, for a reader that opens many sealed files in a
    /// row (an export reads a page of recordings at a time). Not kept in the cache.
    public func dataKeys(forRecordings uniqueids: [String]) throws -> [DataKeyID: SymmetricKey] {
        guard !uniqueids.isEmpty, FileManager.default.fileExists(atPath: path) else { return [:] }
        let db = try database()
        let rows = try db.read { db in
            try stride(from: 0, to: uniqueids.count, by: 500).flatMap { start -> [Row] in
                let chunk = Array(uniqueids[start..<min(start + 500, uniqueids.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                return try Row.fetchAll(
                    db, sql: "SELECT key_id, uniqueid, kek_id, wrapped FROM data_key WHERE uniqueid IN (\(marks))", arguments: StatementArguments(chunk))
            }
        }
        var keys: [DataKeyID: SymmetricKey] = [:]
        for row in rows {
            guard let id = DataKeyID([UInt8](row["key_id"] as Data)) else { continue }
            keys[id] = try Self.unwrap([UInt8](row["wrapped"] as Data), id: id, uniqueid: row["uniqueid"], kek: try kek(row["kek_id"]))
        }
        return keys
    }

    public func cachedDataKey(_ id: DataKeyID) -> SymmetricKey? {
        lock.lock()
        defer { lock.unlock() }
        guard let c = cache[id] else { return nil }
        guard DispatchTime.now().uptimeNanoseconds - c.at < Self.cacheSeconds * 1_000_000_000 else {
            cache[id] = nil
            return nil
        }
        return c.key
    }

    private func remember(_ id: DataKeyID, _ key: SymmetricKey) {
        lock.lock()
        defer { lock.unlock() }
        if cache.count > 100_000 { cache.removeAll() }
        cache[id] = (key, DispatchTime.now().uptimeNanoseconds)
    }

    /// Whether a recording has a data key.
    public func hasKey(forRecording uniqueid: String) throws -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        return try database().read { try Bool.fetchOne($0, sql: "SELECT 1 FROM data_key WHERE uniqueid = ?", arguments: [uniqueid]) ?? false }
    }

    /// Crypto-shredding: destroys the data keys of these recordings (the row, overwritten in
    /// place, and the write-ahead log checkpointed), so every copy of their sealed files —
    /// backups included — is noise from now on. Called after the removal's tombstone commits.
    public func destroy(uniqueids: [String]) throws {
        guard !uniqueids.isEmpty, FileManager.default.fileExists(atPath: path) else { return }
        let db = try database()
        var ids: [DataKeyID] = []
        try db.write { db in
            for chunk in stride(from: 0, to: uniqueids.count, by: 500).map({ Array(uniqueids[$0..<min($0 + 500, uniqueids.count)]) }) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let args = StatementArguments(chunk)
                for d in try Data.fetchAll(db, sql: "SELECT key_id FROM data_key WHERE uniqueid IN (\(marks))", arguments: args) {
                    if let id = DataKeyID([UInt8](d)) { ids.append(id) }
                }
                try db.execute(sql: "DELETE FROM data_key WHERE uniqueid IN (\(marks))", arguments: args)
            }
        }
        lock.lock()
        for id in ids { cache[id] = nil }
        lock.unlock()
        // The old page images leave the write-ahead log (best effort: a reader holding an old
        // snapshot keeps them until the next checkpoint).
        try? db.writeWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Every data key's row count.
    public func count() throws -> Int {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        return try database().read { try Int.fetchOne($0, sql: "SELECT count(*) FROM data_key") ?? 0 }
    }

    /// How many data keys each KEK wraps.
    public func countsByKEK() throws -> [String: Int] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        let rows = try database().read { try Row.fetchAll($0, sql: "SELECT kek_id, count(*) FROM data_key GROUP BY kek_id") }
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as Int) })
    }

    /// Every data key the store holds, unwrapped: for tests that show what the system can still
    /// decrypt.
    public func everyDataKey() throws -> [DataKey] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let rows = try database().read { try Row.fetchAll($0, sql: "SELECT key_id, uniqueid, kek_id, wrapped FROM data_key") }
        return try rows.map { row in
            let id = DataKeyID([UInt8](row["key_id"] as Data))!
            return DataKey(id: id, key: try Self.unwrap([UInt8](row["wrapped"] as Data), id: id, uniqueid: row["uniqueid"], kek: try kek(row["kek_id"])))
        }
    }

    // MARK: rotation

    /// Re-wraps every data key under a new KEK, without touching the audio. With
    /// `CALLREC_KEK_FILE` the new KEK is that file's (the old one given in `CALLREC_KEK_OLD_FILES`);
    /// else a new one is generated — unless a rotation was cut short (keys still under an older
    /// KEK), which is then finished under the current one. Keys are re-wrapped in batches, each
    /// one transaction: killed anywhere, every key is wrapped by the old or the new KEK, both on
    /// disk. Only then are generated KEKs that wrap nothing any more deleted, each checked in a
    /// write transaction (so no key is committed under it meanwhile).
    public func rotate(batch: Int = 5000, progress: (Int, Int) -> Void = { _, _ in }) throws -> RotationReport {
        let db = try database()
        var report = RotationReport()
        var kek = try currentKEK()
        let stale = try db.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM data_key WHERE kek_id != ?", arguments: [kek.id]) ?? 0 }
        if stale == 0 && environment["CALLREC_KEK_FILE"]?.isEmpty ?? true { kek = try generateKEK() }
        report.kek = kek.id
        let total = try db.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM data_key WHERE kek_id != ?", arguments: [kek.id]) ?? 0 }
        _ = try liveKEKs()
        while true {
            let rows = try db.read {
                try Row.fetchAll($0, sql: "SELECT key_id, uniqueid, kek_id, wrapped FROM data_key WHERE kek_id != ? LIMIT ?", arguments: [kek.id, batch])
            }
            if rows.isEmpty { break }
            var updates: [(Data, Data)] = []
            for row in rows {
                let id = DataKeyID([UInt8](row["key_id"] as Data))!
                let uniqueid: String = row["uniqueid"]
                let key = try Self.unwrap([UInt8](row["wrapped"] as Data), id: id, uniqueid: uniqueid, kek: try self.kek(row["kek_id"]))
                updates.append((Data(id.bytes), Data(try Self.wrap(key, id: id, uniqueid: uniqueid, kek: kek))))
            }
            let kekID = kek.id
            try db.write { db in
                let stmt = try db.makeStatement(sql: "UPDATE data_key SET kek_id = ?, wrapped = ? WHERE key_id = ?")
                for (id, wrapped) in updates { try stmt.execute(arguments: [kekID, wrapped, id]) }
            }
            report.rewrapped += updates.count
            progress(report.rewrapped, total)
        }
        // Retire generated KEKs that wrap nothing now.
        for (id, old) in try liveKEKs() where old.generated && id != kek.id {
            let gone: Bool = try db.write { db in
                guard (try Int.fetchOne(db, sql: "SELECT count(*) FROM data_key WHERE kek_id = ?", arguments: [id]) ?? 0) == 0 else { return false }
                return unlink(old.path) == 0
            }
            if gone { report.retired.append(id) }
        }
        if !report.retired.isEmpty { try syncDirectory(kekDirectory) }
        report.keys = try count()
        return report
    }
}

extension [UInt8] {
    /// Bytes from hex digits; nil unless every pair is hex.
    init?(hex: String) {
        let u = Array(hex.utf8)
        guard u.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x57
            case 0x41...0x46: return c - 0x37
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        self = out
    }
}
