import CallrecCatalog
import CallrecIngest
import CallrecMedia
import CallrecTestSupport
import Crypto
import Foundation
import Logging
import Testing

@testable import CallrecCompliance

/// The export's two threads (ExportPipeline.swift): the reader (catalog pages, batched keys,
/// decryption, hashes, CRC-32) and the writer (ZIP, age, ExportOutput).
@Suite(.offThePool)
struct ExportPipelineTests {
    /// A store with `sealed` recordings ingested sealed and `plain` ones in plaintext, alternating,
    /// a minute apart (so in that order).
    static func mixedStore(sealed: Int, plain: Int) throws -> (Store, [RecordingRow]) {
        let s = try Store()
        var t = Transcoder()
        let keys = s.catalog.keys
        t.sealing = { try keys.dataKey(forRecording: $0) }
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let sealing = Ingestor(catalog: s.catalog, transcoder: t, naming: try SpoolNaming(), spoolRoot: nil, logger: logger)
        // Sealed and plaintext alternating while both last.
        var pattern: [Bool] = []
        var (a, b) = (sealed, plain)
        while a + b > 0 {
            let seal = a > 0 && (pattern.count % 2 == 0 || b == 0)
            pattern.append(seal)
            if seal { a -= 1 } else { b -= 1 }
        }
        var rows: [RecordingRow] = []
        for (i, seal) in pattern.enumerated() {
            let id = "\(1_732_467_600 + 60 * i).\(i)"
            let path = try placeFixture("speech.wav", at: s.dir.file("\(id).wav"))
            guard case .ingested = (seal ? sealing : s.ingestor).ingest(path: path) else { throw DecodeError(message: "ingest failed") }
            rows.append(try s.catalog.recording(id)!)
        }
        return (s, rows)
    }

    /// Pages of 2 (so several pages and key batches), sealed and plaintext files mixed: every
    /// file comes out in start order with the catalog's bytes, the ZIP tests clean, and the
    /// summary's SHA-256 and size (hashed as written) are the file's.
    @Test func pagedMixedExportIsWhole() throws {
        let (s, rows) = try Self.mixedStore(sealed: 3, plain: 2)
        #expect(rows.filter { SealFormat.isSealed(path: s.catalog.data.absolute($0.opusPath)) }.count == 3)
        let out = s.dir.file("e.zip")
        var exporter = Exporter(catalog: s.catalog)
        exporter.pageSize = 2
        var seen: [Int] = []
        let summary = try exporter.export(ListQuery(), to: out) { n, total in
            #expect(total == 5)
            seen.append(n)
        }
        #expect(seen == [1, 2, 3, 4, 5])
        #expect(summary.recordings == 5)
        #expect(summary.audioBytes == rows.map(\.opusBytes).reduce(0, +))
        #expect(try Transcoder.sha256(of: out) == summary.zipSHA256)
        var st = stat()
        stat(out, &st)
        #expect(Int(st.st_size) == summary.zipBytes)
        #expect(try run("unzip", ["-tq", out]).status == 0)
        let names = String(decoding: try run("zipinfo", ["-1", out]).out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(names == rows.map(\.opusPath) + ["manifest.csv", "manifest.json"])
        for row in rows {
            let entry = try run("unzip", ["-p", out, row.opusPath])
            #expect(Array(SHA256.hash(data: entry.out)).hexString == row.opusSHA256)
        }
        #expect(!s.dir.contents.contains { $0.contains(".partial-") })
    }

    /// A damaged sealed file in the middle of a long export (the reader ahead of the writer,
    /// chunks in flight) fails it naming that recording; nothing is left behind and both threads
    /// end (the test returns).
    @Test func aDamagedFileMidwayStopsBothThreads() throws {
        let (s, rows) = try Self.mixedStore(sealed: 4, plain: 3)
        let bad = try #require(rows.dropFirst(3).first { SealFormat.isSealed(path: s.catalog.data.absolute($0.opusPath)) })
        let path = s.catalog.data.absolute(bad.opusPath)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[SealFormat.headerSize + 100] ^= 1
        try bytes.write(to: URL(fileURLWithPath: path))
        let out = s.dir.file("e.zip")
        var exporter = Exporter(catalog: s.catalog)
        exporter.pageSize = 2
        let error = #expect(throws: ExportError.self) { try exporter.export(ListQuery(), to: out) }
        #expect(error?.description.hasPrefix(bad.uniqueid + ":") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(!s.dir.contents.contains { $0.contains(".partial-") })
        // A plaintext file cut short fails it the same way, by its SHA-256.
        let (p, prows) = try Self.mixedStore(sealed: 0, plain: 4)
        let cut = prows[2]
        truncate(p.catalog.data.absolute(cut.opusPath), off_t(cut.opusBytes - 10))
        let perror = #expect(throws: ExportError.self) { try exporter.with(catalog: p.catalog).export(ListQuery(), to: p.dir.file("e.zip")) }
        #expect(perror?.description == "\(cut.uniqueid): its audio file does not match the catalog's SHA-256 (run callrec verify)")
    }

    /// The writer failing (here the output cannot be written: the descriptor is read-only) stops
    /// the reader, which may be blocked handing over a chunk.
    @Test func aWriterFailureStopsTheReader() throws {
        let (s, _) = try Self.mixedStore(sealed: 4, plain: 4)  // more files than chunks in flight
        let path = s.dir.file("ro")
        FileManager.default.createFile(atPath: path, contents: nil)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let output = ExportOutput(fd: fd)
        let zip = ZipWriter(date: Date()) { try output.write($0) }
        let reader = EntryReader(catalog: s.catalog, query: ListQuery(), pageSize: 1)
        reader.start()
        var failure: (any Error)?
        do {
            while let item = try reader.items.pop() {
                switch item {
                case .begin(let r): try zip.begin(name: r.opusPath)
                case .data(let chunk):
                    try zip.entryBytes(chunk.bytes)
                    try output.flush()  // fails: EBADF
                    reader.recycle(chunk)
                case .end(_, _, _, let crc): try zip.end(crc: crc)
                }
            }
        } catch {
            failure = error
            reader.stop(error)  // returns only once the reader's thread ended
        }
        #expect(failure is ExportError)
        #expect(throws: ExportError.self) { _ = try reader.items.pop() }
    }

    /// ExportOutput: pieces of every size (gathered below 512 KiB, written directly above it),
    /// past several write-back windows: the file holds exactly the bytes, and the SHA-256 it
    /// returns is theirs.
    @Test func exportOutputWritesAndHashesEveryByte() throws {
        let dir = TempDir()
        let path = dir.file("out")
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        defer { close(fd) }
        let output = ExportOutput(fd: fd)
        var hasher = SHA256()
        var rng = SystemRandomNumberGenerator()
        let source = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var total = 0
        let sizes = [1, 30, 65_552, 1 << 20, (1 << 20) + 1, 524_288, 524_287, 2 << 20, 7, 100_000]
        while total < 3 * ExportOutput.flushEvery + 12_345 {
            let n = sizes[Int.random(in: 0..<sizes.count, using: &rng)]
            let at = Int.random(in: 0..<(source.count - n), using: &rng)
            try source.withUnsafeBytes { p in
                let piece = UnsafeRawBufferPointer(rebasing: p[at..<(at + n)])
                hasher.update(bufferPointer: piece)
                try output.write(piece)
            }
            total += n
        }
        let sha = try output.finish()
        #expect(sha == Array(hasher.finalize()).hexString)
        #expect(output.written == total)
        #expect(try Transcoder.sha256(of: path) == sha)
    }

    /// CRC-32 (slicing by 16) against the check value and a bit-at-a-time reference, at every
    /// length and alignment around the 16-byte stride, fed whole and in uneven pieces.
    @Test func crc32MatchesTheReference() {
        func reference(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        var check = CRC32()
        Array("123456789".utf8).withUnsafeBytes { check.update($0) }
        #expect(check.value == 0xCBF4_3926)
        var empty = CRC32()
        empty.update(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(empty.value == 0)
        let data = (0..<300).map { _ in UInt8.random(in: 0...255) }
        for start in 0..<17 {
            for length in [0, 1, 15, 16, 17, 31, 32, 33, 100, 283 - start] {
                let piece = Array(data[start..<(start + length)])
                var whole = CRC32()
                data.withUnsafeBytes { whole.update(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
                #expect(whole.value == reference(piece), "start \(start) length \(length)")
                var pieces = CRC32()
                var at = 0
                while at < piece.count {
                    let n = min(piece.count - at, [3, 16, 21, 1][at % 4])
                    piece.withUnsafeBytes { pieces.update(UnsafeRawBufferPointer(rebasing: $0[at..<(at + n)])) }
                    at += n
                }
                #expect(pieces.value == whole.value)
            }
        }
    }
}

extension Exporter {
    func with(catalog: Catalog) -> Exporter {
        var e = Exporter(catalog: catalog, recipient: recipient)
        e.pageSize = pageSize
        return e
    }
}
