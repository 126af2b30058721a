import CallrecMedia
import CallrecTestSupport
import Crypto
import Foundation
import Testing

@testable import CallrecCatalog

/// The key store: data keys wrapped by key-encryption keys, rotation, the wrong KEK refused.
@Suite(.offThePool)
struct KeyStoreTests {
    static func kekFile(_ dir: TempDir, _ name: String) throws -> String {
        let path = dir.file(name)
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func keyBytes(_ k: SymmetricKey) -> [UInt8] { k.withUnsafeBytes { Array($0) } }

    @Test func keysAreWrappedAndFilesAreOwnerOnly() throws {
        let dir = TempDir()
        let store = KeyStore(data: DataDirectory(dir.file("data")), environment: [:])
        let a = try store.dataKey(forRecording: "1.1")
        let again = try store.dataKey(forRecording: "1.1")
        #expect(a.id == again.id && Self.keyBytes(a.key) == Self.keyBytes(again.key))
        let b = try store.dataKey(forRecording: "1.2")
        #expect(a.id != b.id)
        // Found by id, by a fresh store (no cache) too, and through the process's registry.
        let fresh = KeyStore(data: DataDirectory(dir.file("data")), environment: [:])
        #expect(try fresh.dataKey(a.id).map(Self.keyBytes) == Self.keyBytes(a.key))
        #expect(try DataKeys.key(b.id).map(Self.keyBytes) == Self.keyBytes(b.key))
        // The key store holds no key in the clear.
        let file = try Data(contentsOf: URL(fileURLWithPath: store.path))
        #expect(file.range(of: Data(Self.keyBytes(a.key))) == nil)
        var st = stat()
        stat(store.path, &st)
        #expect(st.st_mode & 0o777 == 0o600)
        let keks = try FileManager.default.contentsOfDirectory(atPath: dir.file("data/secrets/kek"))
        #expect(keks.count == 1)
        stat(dir.file("data/secrets/kek/") + keks[0], &st)
        #expect(st.st_mode & 0o777 == 0o600 && st.st_size == 32)
    }

    /// The batch an export reads a page with: every recording that has a key, by key id, the
    /// same keys one by one gives; none for a recording without one; more than one query's worth
    /// (500); none at all without a key store.
    @Test func keysOfManyRecordingsAtOnce() throws {
        let dir = TempDir()
        let store = KeyStore(data: DataDirectory(dir.file("data")), environment: [:])
        #expect(try store.dataKeys(forRecordings: ["1.1"]).isEmpty)  // no key store yet
        #expect(!FileManager.default.fileExists(atPath: store.path))
        let ids = (0..<1_203).map { "1700000000.\($0)" }
        try store.createDataKeys(forRecordings: ids)
        let some = [ids[0], ids[600], "1.404"]
        let few = try store.dataKeys(forRecordings: some)
        #expect(few.count == 2)
        for id in some.prefix(2) {
            let one = try store.dataKey(forRecording: id)
            #expect(few[one.id].map(Self.keyBytes) == Self.keyBytes(one.key))
        }
        let all = try store.dataKeys(forRecordings: ids + ["1.404"])
        #expect(all.count == ids.count)
        let last = try store.dataKey(forRecording: ids[1_202])
        #expect(all[last.id].map(Self.keyBytes) == Self.keyBytes(last.key))
        // A destroyed key is gone from the batch too.
        try store.destroy(uniqueids: [ids[600]])
        #expect(try store.dataKeys(forRecordings: some).count == 1)
    }

    @Test func theWrongKEKIsRefused() throws {
        let dir = TempDir()
        let right = try Self.kekFile(dir, "right.kek")
        let wrong = try Self.kekFile(dir, "wrong.kek")
        let data = DataDirectory(dir.file("data"))
        let a = try KeyStore(data: data, environment: ["CALLREC_KEK_FILE": right]).dataKey(forRecording: "1.1")
        // Another KEK under the same name: the stored key does not unwrap.
        let other = KeyStore(data: data, environment: ["CALLREC_KEK_FILE": wrong])
        #expect(throws: CatalogError.self) { _ = try other.dataKey(a.id) }
        // The same id forged onto another KEK's bytes: the AES-GCM tag fails.
        let forged = KEK(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: wrong))), path: wrong, generated: false)
        let wrapped = try KeyStore.wrap(a.key, id: a.id, uniqueid: "1.1", kek: KEK.read(right, generated: false))
        #expect(throws: CatalogError.self) { _ = try KeyStore.unwrap(wrapped, id: a.id, uniqueid: "1.1", kek: forged) }
        // Nor does a wrapped key move to another recording.
        #expect(throws: CatalogError.self) { _ = try KeyStore.unwrap(wrapped, id: a.id, uniqueid: "1.2", kek: KEK.read(right, generated: false)) }
        // A KEK file that is not 32 bytes is refused, naming it.
        try Data("short".utf8).write(to: URL(fileURLWithPath: dir.file("bad.kek")))
        #expect(throws: CatalogError.self) { _ = try KeyStore(data: data, environment: ["CALLREC_KEK_FILE": dir.file("bad.kek")]).currentKEK() }
    }

    /// Rotation re-wraps every key under a new KEK, keeps every key, and deletes the generated
    /// KEKs that wrap nothing any more; with CALLREC_KEK_FILE, under that file's KEK.
    @Test func rotationKeepsEveryKey() throws {
        let dir = TempDir()
        let data = DataDirectory(dir.file("data"))
        let store = KeyStore(data: data, environment: [:])
        var before: [DataKeyID: [UInt8]] = [:]
        for i in 0..<50 {
            let k = try store.dataKey(forRecording: "1.\(i)")
            before[k.id] = Self.keyBytes(k.key)
        }
        let old = try store.currentKEK().id
        let r = try store.rotate(batch: 7)
        #expect(r.rewrapped == 50 && r.kek != old && r.retired == [old])
        #expect(try store.countsByKEK() == [r.kek: 50])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("data/secrets/kek")).count == 1)
        let after = KeyStore(data: data, environment: [:])
        #expect(Dictionary(uniqueKeysWithValues: try after.everyDataKey().map { ($0.id, Self.keyBytes($0.key)) }) == before)

        // To a mounted KEK: CALLREC_KEK_FILE is the new one.
        let mounted = try Self.kekFile(dir, "mounted.kek")
        let env = KeyStore(data: data, environment: ["CALLREC_KEK_FILE": mounted])
        let r2 = try env.rotate()
        #expect(r2.rewrapped == 50 && r2.retired == [r.kek])
        // Later, the mounted KEK rotated to another: the old one given in CALLREC_KEK_OLD_FILES.
        let next = try Self.kekFile(dir, "next.kek")
        let r3 = try KeyStore(data: data, environment: ["CALLREC_KEK_FILE": next, "CALLREC_KEK_OLD_FILES": mounted]).rotate()
        #expect(r3.rewrapped == 50)
        let last = KeyStore(data: data, environment: ["CALLREC_KEK_FILE": next])
        #expect(Dictionary(uniqueKeysWithValues: try last.everyDataKey().map { ($0.id, Self.keyBytes($0.key)) }) == before)
    }

    /// Destroying a key removes it from the store, the cache and the file's bytes.
    @Test func destroyForgetsTheKey() throws {
        let dir = TempDir()
        let store = KeyStore(data: DataDirectory(dir.file("data")), environment: [:])
        let a = try store.dataKey(forRecording: "1.1")
        let wrapped = try store.database().read { try Data.fetchOne($0, sql: "SELECT wrapped FROM data_key") }!
        try store.destroy(uniqueids: ["1.1"])
        #expect(try store.dataKey(a.id) == nil)
        #expect(store.cachedDataKey(a.id) == nil)
        for suffix in ["", "-wal"] {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: store.path + suffix))) ?? Data()
            #expect(bytes.range(of: wrapped) == nil, "keys.sqlite\(suffix) still holds the wrapped key")
        }
    }
}
