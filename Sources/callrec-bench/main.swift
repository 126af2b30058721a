// callrec-bench: figures for scripts/bench-catalog (and bench-append, bench-ami, …). Not part of the service.
//
//   callrec-bench catalog N       a catalog of N synthetic recordings; list/show latencies
//   callrec-bench spool WAV N     N calls through the watcher with 1 and 2 workers; close→row time
//   callrec-bench crypto OPUS KEYS EXPORTS | crypto-export OPUS EXPORTS   (scripts/bench-crypto)
//   callrec-bench ami-parse LOG N OUT | ami-peer LOG PORTFILE SECRET | ami-ping PORT SECRET N   (scripts/bench-ami)

import CallrecCatalog
import CallrecCompliance
import CallrecIngest
import CallrecMedia
import Foundation
import GRDB
import Logging
import CallrecSupport

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
func percentile(_ xs: [Double], _ p: Double) -> Double { xs.sorted()[min(xs.count - 1, Int(Double(xs.count) * p))] }
func ms(_ s: Double) -> String { String(format: "%.3f ms", s * 1000) }
func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
func temp() -> String {
    let p = NSTemporaryDirectory() + "callrec-bench-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

func benchCatalog(count: Int) throws {
    let dir = temp()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let catalog = try Catalog(data: DataDirectory(dir))
    let start0 = 1_767_225_600  // 2026-01-01T00:00:00Z
    let days = 365
    let perDay = count / days
    let silence = #"{"leading_ms":0,"longest_ms":1320,"min_ms":500,"ratio":0.2,"segments":[[2120,3440]],"threshold_dbfs":-40,"total_ms":1320,"trailing_ms":0}"#
    let t0 = now()
    var rng = SystemRandomNumberGenerator()
    try catalog.pool.write { db in
        let stmt = try db.makeStatement(sql: """
            INSERT INTO recording (uniqueid, started_at, company, agent, lead_number, samples, sample_rate, channels, duration_ms,
              source_format, source_bytes, source_sha256, opus_path, opus_bytes, opus_bitrate, opus_sha256, silence, peak_dbfs,
              rms_dbfs, clipped_samples, parts, legal_hold, ingested_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, 8000, 1, ?, 'wav', ?, ?, ?, ?, 16000, ?, ?, -3.0, -24.0, 0, 1, 0, ?, ?)
            """)
        for i in 0..<count {
            let t = start0 + Int(Double(i) / Double(count) * Double(days * 86400))
            let id = "\(t).\(i)"
            let samples = Int.random(in: 8000...4_800_000, using: &rng)
            let started = Int64(t)
            try stmt.execute(arguments: [
                id, started, "\(i % 50)", "\(1000 + i % 300)", "55119\(String(format: "%08d", Int.random(in: 0..<100_000_000, using: &rng)))",
                samples, samples / 8, samples * 2 + 44, String(repeating: "a", count: 64),
                DataDirectory.audioRelativePath(uniqueid: id, startedAt: Date(timeIntervalSince1970: TimeInterval(t))),
                samples / 4, String(repeating: "b", count: 64), silence, started, started,
            ])
        }
    }
    try catalog.pool.write { try $0.execute(sql: "ANALYZE") }
    print(String(format: "catalog: %d recordings inserted in %.1f s (%d per day)", count, now() - t0, perDay))

    // A day's first page (100), as `list --from D --to D+1` and GET /recordings?from&to ask.
    var listTimes: [Double] = []
    var companyTimes: [Double] = []
    for _ in 0..<300 {
        let day = Int.random(in: 0..<days, using: &rng)
        let from = Date(timeIntervalSince1970: TimeInterval(start0 + day * 86400))
        let q = ListQuery(from: from, to: from.addingTimeInterval(86400), limit: 100)
        let a = now()
        let page = try catalog.list(q)
        listTimes.append(now() - a)
        precondition(page.items.count == min(100, perDay) || page.items.count >= perDay - 1)
        var qc = q
        qc.company = "\(Int.random(in: 0..<50, using: &rng))"
        let b = now()
        _ = try catalog.list(qc)
        companyTimes.append(now() - b)
    }
    var showTimes: [Double] = []
    for _ in 0..<2000 {
        let i = Int.random(in: 0..<count, using: &rng)
        let t = start0 + Int(Double(i) / Double(count) * Double(days * 86400))
        let a = now()
        let row = try catalog.recording("\(t).\(i)")
        showTimes.append(now() - a)
        precondition(row != nil)
    }
    print("list  a day's page of 100     median \(ms(median(listTimes)))  p99 \(ms(percentile(listTimes, 0.99)))  (target ≤ 5 ms)")
    print("list  … of one company        median \(ms(median(companyTimes)))  p99 \(ms(percentile(companyTimes, 0.99)))")
    print("show  by uniqueid              median \(ms(median(showTimes)))  p99 \(ms(percentile(showTimes, 0.99)))  (target ≤ 1 ms)")
    let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/catalog.sqlite")[.size] as? Int) ?? 0
    print(String(format: "catalog.sqlite %.0f MiB", Double(size) / 1048576))
}

/// N calls dropped into a spool at once; time until all are catalogued, with `workers` workers.
func spoolRun(wav: String, calls: Int, workers: Int, settle: TimeInterval) throws -> (total: Double, closeToRow: [Double]) {
    let dir = temp()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let spool = dir + "/spool"
    try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
    let catalog = try Catalog(data: DataDirectory(dir + "/data"))
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let ingestor = Ingestor(catalog: catalog, transcoder: Transcoder(encoder: try EncoderOptions.fromEnvironment()), naming: try SpoolNaming(), spoolRoot: spool, logger: logger)
    var o = WatcherOptions()
    o.workers = workers
    o.settle = settle
    let watcher = SpoolWatcher(spool: spool, ingestor: ingestor, options: o, logger: logger)
    let done = NSCondition()
    nonisolated(unsafe) var finished: [String: Double] = [:]
    watcher.onOutcome = { path, _ in
        done.lock()
        finished[path] = now()
        done.broadcast()
        done.unlock()
    }
    try watcher.start()
    let bytes = try Data(contentsOf: URL(fileURLWithPath: wav))
    var closed: [String: Double] = [:]
    let t0 = now()
    for i in 0..<calls {
        let path = spool + "/\(1_767_225_600 + i).\(i).wav"
        // Each call distinct (the catalog dedupes identical bytes per uniqueid only, but be honest).
        var b = bytes
        b[b.count - 1] = UInt8(i & 0xFF)
        _ = FileManager.default.createFile(atPath: path, contents: b)
        closed[path] = now()
    }
    done.lock()
    while finished.count < calls { done.wait() }
    done.unlock()
    let total = now() - t0
    watcher.stop()
    return (total, closed.map { finished[$0.key]! - $0.value })
}

func benchSpool(wav: String, calls: Int) throws {
    let settle = 0.5
    // The transcode time of one call alone, for the close→row target.
    let dir = temp()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var one: [Double] = []
    for i in 0..<5 {
        let a = now()
        _ = try Transcoder(encoder: try EncoderOptions.fromEnvironment()).transcode(input: wav, output: dir + "/\(i).opus", tags: RecordingTags(uniqueid: "1767225600.\(i)"))
        one.append(now() - a)
    }
    let transcode = median(one)
    print(String(format: "one call: transcode %.3f s", transcode))
    let r1 = try spoolRun(wav: wav, calls: calls, workers: 1, settle: settle)
    let r2 = try spoolRun(wav: wav, calls: calls, workers: 2, settle: settle)
    print(String(format: "spool: %d calls, 1 worker %.2f s, 2 workers %.2f s, speed-up %.2f× (target ≥ 1.8×)", calls, r1.total, r2.total, r1.total / r2.total))
    // Close → row for a call arriving alone.
    var latencies: [Double] = []
    for _ in 0..<5 { latencies += try spoolRun(wav: wav, calls: 1, workers: 2, settle: settle).closeToRow }
    let target = settle + 1.2 * transcode
    print(String(format: "close → row (one call, settle %.1f s): median %.3f s, max %.3f s (target ≤ settle + 1.2 × transcode = %.3f s)", settle, median(latencies), latencies.max()!, target))
}

/// A catalog of `count` recordings whose files are copies of a real Opus file (so that they
/// verify), for the export and purge figures.
func syntheticStore(count: Int, opus: String, dir: String, distinctFiles: Bool) throws -> Catalog {
    let catalog = try Catalog(data: DataDirectory(dir))
    let bytes = try Data(contentsOf: URL(fileURLWithPath: opus))
    let sha = try Transcoder.sha256(of: opus)
    let start = 1_700_000_000
    try catalog.pool.write { db in
        let stmt = try db.makeStatement(sql: """
            INSERT INTO recording (uniqueid, started_at, company, samples, sample_rate, channels, duration_ms, source_format, source_bytes,
              source_sha256, opus_path, opus_bytes, opus_bitrate, opus_sha256, silence, clipped_samples, parts, legal_hold, ingested_at, updated_at)
            VALUES (?, ?, '42', 48000, 8000, 1, 6000, 'wav', 96044, ?, ?, ?, 16000, ?, '{}', 0, 1, 0, 0, 0)
            """)
        var made = Set<String>()
        for i in 0..<count {
            let t = start + i * 60
            let id = "\(t).\(i)"
            let rel = DataDirectory.audioRelativePath(uniqueid: id, startedAt: Date(timeIntervalSince1970: TimeInterval(t)))
            let path = dir + "/" + rel
            let folder = parentDirectory(of: path)
            if !made.contains(folder) {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                made.insert(folder)
            }
            if distinctFiles || i == 0 { _ = FileManager.default.createFile(atPath: path, contents: bytes) } else {
                link(dir + "/" + DataDirectory.audioRelativePath(uniqueid: "\(start).0", startedAt: Date(timeIntervalSince1970: TimeInterval(start))), path)
            }
            try stmt.execute(arguments: [id, Int64(t), String(repeating: "a", count: 64), rel, bytes.count, sha])
        }
    }
    return catalog
}

func benchCompliance(opus: String, exports: Int, purges: Int) throws {
    // Export: callrec's ZIP against `zip -0` of the same files, in the same run.
    let dir = temp()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let catalog = try syntheticStore(count: exports, opus: opus, dir: dir, distinctFiles: true)
    var ours: [Double] = []
    var theirs: [Double] = []
    for round in 0..<3 {
        let a = now()
        let summary = try Exporter(catalog: catalog).export(ListQuery(), to: dir + "/export-\(round).zip")
        ours.append(now() - a)
        precondition(summary.recordings == exports)
        let b = now()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/zip")
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.arguments = ["-0", "-q", "-r", dir + "/zip-\(round).zip", "audio"]
        try p.run()
        p.waitUntilExit()
        theirs.append(now() - b)
        try? FileManager.default.removeItem(atPath: dir + "/export-\(round).zip")
        try? FileManager.default.removeItem(atPath: dir + "/zip-\(round).zip")
    }
    print(String(format: "export: %d recordings, callrec %.2f s, zip -0 %.2f s (medians of 3), throughput ratio %.2f× (target ≥ 0.8×)",
                 exports, median(ours), median(theirs), median(theirs) / median(ours)))

    // Purge: every recording expired.
    let pdir = temp()
    defer { try? FileManager.default.removeItem(atPath: pdir) }
    let pcat = try syntheticStore(count: purges, opus: opus, dir: pdir, distinctFiles: false)
    let a = now()
    let report = try Remover(catalog: pcat).purge(now: Date(), defaultDays: 90, dryRun: false)
    print(String(format: "purge: %d expired recordings removed in %.1f s (target < 60 s)", report.count, now() - a))
}

/// Encryption at rest: segment throughput per core, `keys rotate` over `keys` data keys, and an
/// export of `exports` sealed recordings against `zip -0` of the same recordings in plaintext.
func benchCrypto(opus: String, keys: Int, exports: Int) throws {
    // Throughput: a 64 MiB plaintext sealed once, then read back (every segment authenticated).
    let dir = temp()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let piece = [UInt8](try Data(contentsOf: URL(fileURLWithPath: opus)))
    var plain: [UInt8] = []
    while plain.count < 64 << 20 { plain += piece }
    plain = Array(plain.prefix(64 << 20))
    try Data(plain).write(to: URL(fileURLWithPath: dir + "/plain"))
    let key = DataKey(id: .random(), key: .init(size: .bits256))
    var sealing: [Double] = []
    for round in 0..<3 {
        let a = now()
        try copyFile(try StoredFile(path: dir + "/plain"), to: dir + "/sealed\(round)", sealing: SealContext(key: key))
        sealing.append(now() - a)
    }
    var opening: [Double] = []
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    for _ in 0..<5 {
        let f = try StoredFile(path: dir + "/sealed0", key: key.key)
        let a = now()
        var at = 0
        while true {
            let n = try f.read(into: buffer, count: 1 << 20, at: at)
            if n == 0 { break }
            at += n
        }
        opening.append(now() - a)
        precondition(at == plain.count)
    }
    let mb = Double(plain.count) / 1e9
    print(String(format: "segments: seal %.2f GB/s, open (decrypt + authenticate) %.2f GB/s on one core (medians; target ≥ 1 GB/s)",
                 mb / median(sealing), mb / median(opening)))

    // keys rotate over `keys` recordings.
    let kdir = temp()
    defer { try? FileManager.default.removeItem(atPath: kdir) }
    let store = KeyStore(data: DataDirectory(kdir), environment: [:])
    var ids = (0..<keys).map { "1700000000.\($0)" }
    while !ids.isEmpty {
        try store.createDataKeys(forRecordings: Array(ids.prefix(20000)))
        ids.removeFirst(min(20000, ids.count))
    }
    let a = now()
    let report = try store.rotate()
    print(String(format: "keys rotate: %d data keys re-wrapped in %.2f s (target < 30 s)", report.rewrapped, now() - a))

    try benchExport(opus: opus, count: exports, rounds: Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
}

/// Export throughput (scripts/bench-crypto's last part, alone with BENCH_ONLY=export): `count`
/// recordings (copies of `opus`), stored twice — in plaintext, and sealed (each its own data key)
/// — exported by callrec plaintext, sealed, and sealed to an age recipient, beside `zip -0 -r` of
/// the plaintext files. Both sides are I/O-bound at this size (11.7 GB for 10,000 ten-minute
/// calls, more than the page cache keeps), so every run starts from the same state: outputs
/// removed, `sync` (no write-back of the previous run or of the set-up left to compete), and
/// every input file of both stores dropped from the page cache (posix_fadvise DONTNEED: cold,
/// as an export of last month's calls is). Runs alternate, the order rotating each round; the
/// figures are medians. zip does not fsync what it wrote and callrec does (before its rename),
/// so zip is timed with and without an fsync of its output. Each run prints its wall time, its
/// CPU time and what the disk read and wrote meanwhile: what it was waiting on.
func benchExport(opus: String, count: Int, rounds: Int) throws {
    let pdir = temp(), sdir = temp()
    defer {
        try? FileManager.default.removeItem(atPath: pdir)
        try? FileManager.default.removeItem(atPath: sdir)
    }
    let t0 = now()
    let plainStore = try syntheticStore(count: count, opus: opus, dir: pdir, distinctFiles: true)
    // The sealed store: hard links to one file at first, each replaced by its own sealed file.
    let sealedStore = try syntheticStore(count: count, opus: opus, dir: sdir, distinctFiles: false)
    let rows = try sealedStore.everyRecording()
    try sealedStore.keys.createDataKeys(forRecordings: rows.map(\.uniqueid))
    let batch = try sealedStore.keys.dataKeys(forRecordings: rows.map(\.uniqueid))
    precondition(batch.count == rows.count)
    let plain = [UInt8](try Data(contentsOf: URL(fileURLWithPath: opus)))
    let segment = SealFormat.segmentSize
    let segments = max(1, (plain.count + segment - 1) / segment)
    var sealedBytes = 0
    for row in rows {
        let context = SealContext(key: try sealedStore.keys.dataKey(forRecording: row.uniqueid))
        var out = context.header
        out.reserveCapacity(SealFormat.sealedSize(plaintextSize: plain.count))
        try plain.withUnsafeBytes { p in
            for i in 0..<segments {
                let piece = UnsafeRawBufferPointer(rebasing: p[(i * segment)..<min(plain.count, (i + 1) * segment)])
                out += try context.seal(piece, index: i, last: i == segments - 1)
            }
        }
        let path = sealedStore.data.absolute(row.opusPath)
        unlink(path)
        guard FileManager.default.createFile(atPath: path, contents: Data(out)) else { fatalError("cannot write \(path)") }
        sealedBytes += out.count
    }
    let inputs = try plainStore.everyRecording().map { plainStore.data.absolute($0.opusPath) } + rows.map { sealedStore.data.absolute($0.opusPath) }
    sync()
    say(String(format: "export: %d recordings of %d bytes (%.1f GB) stored in plaintext and sealed (%.1f GB), set up in %.0f s",
                 count, plain.count, Double(plain.count * count) / 1e9, Double(sealedBytes) / 1e9, now() - t0))

    // An identity for the sealed-to-a-recipient side, from age-keygen (skipped without it).
    var recipient: AgeRecipient?
    let keygen = Process()
    keygen.executableURL = URL(fileURLWithPath: "/usr/bin/age-keygen")
    keygen.arguments = ["-o", sdir + "/identity.txt"]
    keygen.standardError = FileHandle.nullDevice
    if (try? keygen.run()) != nil {
        keygen.waitUntilExit()
        let text = (try? String(contentsOfFile: sdir + "/identity.txt", encoding: .utf8)) ?? ""
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("# public key: ") }) {
            recipient = try AgeRecipient(String(line.dropFirst("# public key: ".count)))
        }
    }

    let device = DiskCounters(path: sdir)
    struct Side {
        let name: String
        let run: () throws -> Double?  // nil, or the time to fsync the output afterwards (zip)
    }
    let outputs = [pdir + "/zip.zip", pdir + "/export.zip", sdir + "/export.zip", sdir + "/export.zip.age"]
    var sides = [
        Side(name: "zip -0 -r of the plaintext") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/zip")
            p.currentDirectoryURL = URL(fileURLWithPath: pdir)
            p.arguments = ["-0", "-q", "-r", outputs[0], "audio"]
            try p.run()
            p.waitUntilExit()
            precondition(p.terminationStatus == 0, "zip failed")
            let a = now()
            let fd = open(outputs[0], O_RDONLY)
            fsync(fd)
            close(fd)
            return now() - a
        },
        Side(name: "callrec, plaintext store") {
            let n = try Exporter(catalog: plainStore).export(ListQuery(), to: outputs[1]).recordings
            precondition(n == count)
            return nil
        },
        Side(name: "callrec, sealed store") {
            let n = try Exporter(catalog: sealedStore).export(ListQuery(), to: outputs[2]).recordings
            precondition(n == count)
            return nil
        },
    ]
    if let recipient {
        sides.append(Side(name: "callrec, sealed store, to an age recipient") {
            let n = try Exporter(catalog: sealedStore, recipient: recipient).export(ListQuery(), to: outputs[3]).recordings
            precondition(n == count)
            return nil
        })
    } else {
        say("export: no age-keygen, so no export sealed to a recipient")
    }
    var times = [[Double]](repeating: [], count: sides.count)
    var synced: [Double] = []
    for round in 0..<rounds {
        for k in 0..<sides.count {
            let i = (k + round) % sides.count
            for o in outputs { unlink(o) }
            sync()
            for path in inputs {
                let fd = open(path, O_RDONLY)
                if fd >= 0 {
                    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
                    close(fd)
                }
            }
            let disk0 = device.read()
            let cpu0 = cpuSeconds()
            let a = now()
            let fsyncTime = try sides[i].run()
            let wall = now() - a
            let cpu = cpuSeconds() - cpu0
            let disk = device.read()
            times[i].append(wall - (fsyncTime ?? 0))
            if fsyncTime != nil { synced.append(wall) }
            let extra = fsyncTime.map { String(format: " (%.1f s of it the fsync of zip's output)", $0) } ?? ""
            say("  round \(round + 1)  " + pad(sides[i].name) + String(format: "%6.1f s", wall) + extra
                  + String(format: "  cpu %5.1f s (%3.0f%%)  disk read %5.1f GB, written %5.1f GB", cpu, 100 * cpu / wall,
                           Double(disk.read - disk0.read) / 1e9, Double(disk.written - disk0.written) / 1e9) + "  load " + loadavg())
        }
    }
    for o in outputs { unlink(o) }
    let zipAlone = median(times[0]), zipSynced = median(synced)
    say("== export of \(count) recordings, cold inputs, medians of \(rounds) (alternating order); load " + loadavg())
    say(String(format: "   reference: zip -0 -r of the plaintext %.1f s; with an fsync of its output (callrec fsyncs) %.1f s", zipAlone, zipSynced))
    for i in 1..<sides.count {
        let t = median(times[i])
        say("   " + pad(sides[i].name) + String(format: "%.1f s: throughput ratio %.2f× zip -0 + fsync, %.2f× zip -0 alone (target ≥ 0.8×)",
                                                   t, zipSynced / t, zipAlone / t))
    }
    say(String(format: "   cost of sealing: the sealed store takes %.2f× the plaintext store's time", median(times[2]) / median(times[1]))
          + (sides.count > 3 ? String(format: ", sealed to a recipient %.2f×", median(times[3]) / median(times[1])) : ""))
}

/// Bytes read and written by the block device holding `path` (/sys/dev/block/M:m/stat), for
/// what a run waited on. The whole device's: other processes' I/O counts too.
struct DiskCounters {
    let statPath: String?
    init(path: String) {
        var st = stat()
        stat(path, &st)
        let dev = st.st_dev
        let p = "/sys/dev/block/\((dev >> 8) & 0xFFF):\((dev & 0xFF) | ((dev >> 12) & 0xFFF00))/stat"
        statPath = FileManager.default.fileExists(atPath: p) ? p : nil
    }
    func read() -> (read: Int, written: Int) {
        guard let statPath, let text = try? String(contentsOfFile: statPath, encoding: .utf8) else { return (0, 0) }
        let f = text.split(separator: " ").compactMap { Int($0) }
        return f.count > 6 ? (f[2] * 512, f[6] * 512) : (0, 0)
    }
}

/// CPU seconds of this process and its waited-for children (zip).
func cpuSeconds() -> Double {
    var total = 0.0
    for who in [RUSAGE_SELF, RUSAGE_CHILDREN] {
        var u = rusage()
        getrusage(__rusage_who_t(who.rawValue), &u)
        total += Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }
    return total
}

/// A line out at once, also into a pipe or a file (an export run takes minutes).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func pad(_ s: String, _ n: Int = 46) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

func loadavg() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

/// `callrec-bench append [--reencode] STORED.opus PART OUT.opus`: the media side of MixMonitor's
/// `a` option alone (scripts/bench-append): PART appended to STORED into OUT, by packet copy (the
/// default) or by decoding and encoding both parts again (what callrec did before).
func benchAppend(_ args: [String]) throws {
    let reencode = args.first == "--reencode"
    let rest = reencode ? Array(args.dropFirst()) : args
    guard rest.count == 3 else {
        FileHandle.standardError.write(Data("usage: callrec-bench append [--reencode] STORED.opus PART OUT.opus\n".utf8))
        exit(2)
    }
    let info = try OpusVerifier.inspect(path: rest[0])
    var t = Transcoder(encoder: try EncoderOptions.fromEnvironment())
    t.appendMethod = reencode ? .reencoding : .copyingPackets
    let t0 = now()
    let r = try t.transcode(
        input: rest[1], output: rest[2], tags: RecordingTags(uniqueid: info.tags["UNIQUEID"] ?? "1767225600.1"),
        appendingTo: PreviousRecording(path: rest[0], sourceSHA256s: info.sourceSHA256s))
    print(String(format: "%@: %d + %d samples at %d Hz, opus %d B, %.3f s (%@)", rest[2], r.previousSamples, r.measurements.samples - r.previousSamples,
                 r.measurements.sampleRate, r.opus.bytes, now() - t0, reencode ? "re-encoded" : "packets copied"))
}

let args = CommandLine.arguments
switch args.count > 1 ? args[1] : "" {
case "catalog": try benchCatalog(count: args.count > 2 ? Int(args[2])! : 1_000_000)
case "spool": try benchSpool(wav: args[2], calls: args.count > 3 ? Int(args[3])! : 50)
case "export-rss":
    // One export of N synthetic recordings in a fresh process: its peak RSS, for flatness.
    let dir = temp()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let catalog = try syntheticStore(count: Int(args[3])!, opus: args[2], dir: dir, distinctFiles: false)
    var before = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &before)
    _ = try Exporter(catalog: catalog).export(ListQuery(), to: dir + "/e.zip")
    var after = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &after)
    print(String(format: "export of %@ recordings: peak RSS %.1f MiB before the export, %.1f MiB after", args[3], Double(before.ru_maxrss) / 1024, Double(after.ru_maxrss) / 1024))
case "ami-parse": try AMIBench.parse(log: args[2], count: Int(args[3])!, out: args[4])
case "ami-peer": try await AMIBench.peer(log: args[2], portFile: args[3], secret: args[4])
case "ami-ping": try await AMIBench.ping(port: Int(args[2])!, secret: args[3], n: Int(args[4])!)
case "crypto": try benchCrypto(opus: args[2], keys: args.count > 3 ? Int(args[3])! : 100_000, exports: args.count > 4 ? Int(args[4])! : 10000)
case "crypto-export": try benchExport(opus: args[2], count: args.count > 3 ? Int(args[3])! : 10000, rounds: Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
case "append": try benchAppend(Array(args.dropFirst(2)))
case "compliance": try benchCompliance(opus: args[2], exports: args.count > 3 ? Int(args[3])! : 10000, purges: args.count > 4 ? Int(args[4])! : 100_000)
default:
    FileHandle.standardError.write(Data("usage: callrec-bench catalog [N] | spool WAV [N] | append [--reencode] STORED PART OUT | compliance OPUS [EXPORTS] [PURGES] | crypto OPUS [KEYS] [EXPORTS] | crypto-export OPUS [EXPORTS]\n".utf8))
    exit(2)
}
