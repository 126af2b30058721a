import CallrecTestSupport
import Crypto
import Foundation
import Testing

@testable import CallrecMedia

/// The sealed-file format (Sealed.swift): known answers from an independent implementation
/// (scripts/seal-reference, Python's `cryptography`), random access, and every tampering refused.
@Suite(.offThePool)
struct SealedTests {
    static let key = DataKey(id: DataKeyID(Array(0xA0...0xAF))!, key: SymmetricKey(data: Array(0..<32) as [UInt8]))
    static let salt: [UInt8] = Array(0x10...0x1F)
    static let prefix: [UInt8] = Array(1...7)
    static let fixed = SealContext(key: key, salt: salt, prefix: prefix)
    static let plain: [UInt8] = (0..<150_000).map { UInt8($0 % 251) }  // three segments, the last partial
    static let header = "43525345414c0110a0a1a2a3a4a5a6a7a8a9aaabacadaeaf101112131415161718191a1b1c1d1e1f01020304050607003900a5a0f03be674aebaa53cc39616ee"

    /// Writes `plain` sealed through FileOutput in uneven pieces (as the Ogg writer does).
    static func sealed(_ plain: [UInt8], _ context: SealContext, at path: String, piece: Int = 1000) throws {
        let out = try FileOutput(creating: path, sealing: context)
        var at = 0
        while at < plain.count {
            let n = min(piece, plain.count - at)
            try plain.withUnsafeBufferPointer { try out.write($0.baseAddress! + at, n) }
            at += n
        }
        try out.sync()
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func put(_ bytes: [UInt8], _ path: String) throws {
        unlink(path)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Every byte of the file read back, or the error.
    static func readAll(_ path: String, key: SymmetricKey = key.key) throws -> [UInt8] {
        let f = try StoredFile(path: path, key: key)
        return try f.bytes(0..<f.size)
    }

    @Test func knownAnswers() throws {
        let dir = TempDir()
        try Self.sealed(Self.plain, Self.fixed, at: dir.file("a"))
        let a = try Self.bytes(dir.file("a"))
        #expect(a.count == 150_112)
        #expect(Array(a.prefix(64)).hexString == Self.header)
        #expect(Array(SHA256.hash(data: a)).hexString == "673a5fe0ad6a798bccf229e15995a6b70ed38edd8a113bb7c5a05f9ec68fc428")
        try Self.sealed(Array("callrec".utf8), Self.fixed, at: dir.file("b"))
        #expect(try Self.bytes(dir.file("b")).hexString == Self.header + "67b0234a131dbcdf9c9afeb40534bf9830386881efbbc4")
        try Self.sealed([], Self.fixed, at: dir.file("c"))
        #expect(try Self.bytes(dir.file("c")).hexString == Self.header + "624f63e7077874b156344a277664d54f")
        #expect(try Self.readAll(dir.file("a")) == Self.plain)
        #expect(try Self.readAll(dir.file("c")) == [])
    }

    /// A file with a random salt and prefix, sealed here, opened by the independent implementation.
    @Test func theReferenceOpensWhatWeSeal() throws {
        let dir = TempDir()
        let random = (0..<200_000).map { _ in UInt8.random(in: 0...255) }
        try Self.sealed(random, SealContext(key: Self.key), at: dir.file("r"))
        let hex = Self.key.key.withUnsafeBytes { Array($0) }.hexString
        let r = try run("/bin/sh", ["-c", "\"$0\" open \(hex) < \"$1\"", Paths.root + "/scripts/seal-reference", dir.file("r")])
        #expect(r.status == 0, "\(r.err)")
        #expect([UInt8](r.out) == random)
    }

    /// The first segment stays patchable until the end (OggOpusWriter rewrites the OpusTags page);
    /// a sealed segment cannot be.
    @Test func patchesTheFirstSegmentOnly() throws {
        let dir = TempDir()
        let out = try FileOutput(creating: dir.file("p"), sealing: Self.fixed)
        try Self.plain.withUnsafeBufferPointer { try out.write($0.baseAddress!, $0.count) }
        try out.pwrite([1, 2, 3], at: 100)
        #expect(throws: MediaError.self) { try out.pwrite([9], at: 70_000) }
        try out.sync()
        var expected = Self.plain
        expected.replaceSubrange(100..<103, with: [1, 2, 3])
        #expect(try Self.readAll(dir.file("p")) == expected)
    }

    @Test func sizesFollowFromTheFileSize() {
        for n in [0, 1, 65_535, 65_536, 65_537, 131_072, 150_000] {
            #expect(SealFormat.plaintextSize(sealedSize: SealFormat.sealedSize(plaintextSize: n)) == n)
        }
        #expect(SealFormat.plaintextSize(sealedSize: 63) == nil)
        #expect(SealFormat.plaintextSize(sealedSize: 64 + 15) == nil)
        // A full segment followed by an empty one is not a file the writer makes.
        #expect(SealFormat.plaintextSize(sealedSize: 64 + 65_552 + 16) == nil)
    }

    /// Ranges anywhere, across segment boundaries, read the plaintext's bytes.
    @Test func randomAccess() throws {
        let dir = TempDir()
        try Self.sealed(Self.plain, Self.fixed, at: dir.file("a"))
        let f = try StoredFile(path: dir.file("a"), key: Self.key.key)
        #expect(f.size == Self.plain.count && f.isSealed)
        for r in [0..<1, 65_530..<65_540, 65_536..<65_537, 100..<140_000, 149_990..<150_000, 131_071..<131_073] {
            #expect(try f.bytes(r) == Array(Self.plain[r]))
        }
        let plainFile = dir.file("plain")
        try Self.put(Self.plain, plainFile)
        let g = try StoredFile(path: plainFile)
        let gb = try g.bytes(5..<10)
        #expect(!g.isSealed && g.size == Self.plain.count && gb == Array(Self.plain[5..<10]))
        #expect(try StoredFile.sha256(of: plainFile) == (try StoredFile(path: dir.file("a"), key: Self.key.key).sha256()))
    }

    enum Tamper: String, CaseIterable, CustomTestStringConvertible {
        case flipMagic, flipVersion, flipKeyID, flipSalt, flipPrefix, flipMAC
        case flipSegment0, flipSegment1, flipLastSegment, flipTag
        case dropSegment, repeatSegment, swapSegments, truncateAtBoundary, truncateMidSegment, truncateHeader
        case segmentFromAnotherFile, headerFromAnotherFile
        var testDescription: String { rawValue }
    }

    /// Each tampering is refused with a SealError (or the file is not taken as sealed at all),
    /// never plaintext.
    @Test(arguments: Tamper.allCases)
    func tamperingFailsClosed(_ t: Tamper) throws {
        let dir = TempDir()
        let path = dir.file("a")
        try Self.sealed(Self.plain, Self.fixed, at: path)
        var b = try Self.bytes(path)
        let s = SealFormat.sealedSegmentSize
        let seg = { (i: Int) in (64 + i * s)..<min(b.count, 64 + (i + 1) * s) }
        // Another file under the same data key (its own salt and prefix).
        try Self.sealed(Self.plain, SealContext(key: Self.key), at: dir.file("other"))
        let other = try Self.bytes(dir.file("other"))
        switch t {
        case .flipMagic: b[2] ^= 1
        case .flipVersion: b[6] ^= 1
        case .flipKeyID: b[10] ^= 1
        case .flipSalt: b[30] ^= 1
        case .flipPrefix: b[42] ^= 1
        case .flipMAC: b[60] ^= 1
        case .flipSegment0: b[64 + 5] ^= 0x80
        case .flipSegment1: b[64 + s + 1000] ^= 1
        case .flipLastSegment: b[b.count - 100] ^= 1
        case .flipTag: b[64 + s - 1] ^= 1
        case .dropSegment: b.removeSubrange(seg(1))
        case .repeatSegment: b.insert(contentsOf: Array(b[seg(1)]), at: 64 + 2 * s)
        case .swapSegments:
            let s0 = Array(b[seg(0)]), s1 = Array(b[seg(1)])
            b.replaceSubrange(seg(0), with: s1)
            b.replaceSubrange(seg(1), with: s0)
        case .truncateAtBoundary: b.removeSubrange((64 + 2 * s)...)
        case .truncateMidSegment: b.removeLast(500)
        case .truncateHeader: b.removeSubrange(40...)
        case .segmentFromAnotherFile: b.replaceSubrange(seg(1), with: Array(other[(64 + s)..<(64 + 2 * s)]))
        case .headerFromAnotherFile: b.replaceSubrange(0..<64, with: Array(other[0..<64]))
        }
        try Self.put(b, path)
        if t == .flipMagic {
            // No longer a sealed file: read as it is, which is ciphertext, not the plaintext.
            #expect(try Self.readAll(path) != Self.plain)
            return
        }
        #expect(throws: SealError.self) { _ = try Self.readAll(path) }
        // Through the sealed path only: never a byte of the plaintext of a segment that fails.
        if case .flipSegment1 = t {
            let f = try StoredFile(path: path, key: Self.key.key)
            #expect(try f.bytes(0..<1000) == Array(Self.plain[0..<1000]))  // segment 0 is intact and authentic
            #expect(throws: SealError.self) { _ = try f.bytes(65_536..<65_540) }
        }
    }

    @Test func theWrongKeyIsRefused() throws {
        let dir = TempDir()
        try Self.sealed(Self.plain, Self.fixed, at: dir.file("a"))
        #expect(throws: SealError.self) { _ = try Self.readAll(dir.file("a"), key: SymmetricKey(size: .bits256)) }
        // No key store knows the id: shredded.
        do {
            _ = try StoredFile(path: dir.file("a"))
            Issue.record("opened without a key")
        } catch let e as SealError {
            #expect(e.kind == .shredded)
        }
    }

    /// The whole pipeline writes a sealed Opus file that decodes as the plaintext one does.
    @Test func transcodesSealed() throws {
        let dir = TempDir()
        var t = Transcoder()
        let source = KeySource()
        DataKeys.register(source)
        t.sealing = { _ in source.add(DataKey(id: .random(), key: SymmetricKey(size: .bits256))) }
        let sealed = try t.transcode(input: Paths.fixture("speech.wav"), output: dir.file("s.opus"), tags: RecordingTags(uniqueid: "s"))
        let plain = try Transcoder().transcode(input: Paths.fixture("speech.wav"), output: dir.file("p.opus"), tags: RecordingTags(uniqueid: "s"))
        #expect(SealFormat.isSealed(path: dir.file("s.opus")) && !SealFormat.isSealed(path: dir.file("p.opus")))
        #expect(sealed.measurements == plain.measurements)
        #expect(try StoredFile.sha256(of: dir.file("s.opus")) == sealed.opus.sha256)
        let wav = try WavView(path: dir.file("s.opus"))
        let reference = try WavView(path: dir.file("p.opus"))
        #expect(wav.contentLength == reference.contentLength)
        #expect(try wav.bytes(1000..<50_000) == (try reference.bytes(1000..<50_000)))
    }
}

/// A key source for tests: keys in memory.
final class KeySource: DataKeySource, @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [DataKeyID: SymmetricKey] = [:]
    func add(_ k: DataKey) -> DataKey {
        lock.lock()
        defer { lock.unlock() }
        keys[k.id] = k.key
        return k
    }
    func dataKey(_ id: DataKeyID) throws -> SymmetricKey? { cachedDataKey(id) }
    func cachedDataKey(_ id: DataKeyID) -> SymmetricKey? {
        lock.lock()
        defer { lock.unlock() }
        return keys[id]
    }
}
