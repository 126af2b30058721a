import CallrecCatalog
import CallrecMedia
import Crypto
import Foundation
import CallrecSupport

/// What an export holds.
public struct ExportSummary: Codable, Sendable, Equatable {
    public var recordings: Int
    public var audioBytes: Int
    public var zipBytes: Int
    public var zipSHA256: String
    enum CodingKeys: String, CodingKey {
        case recordings, audioBytes = "audio_bytes", zipBytes = "zip_bytes", zipSHA256 = "zip_sha256"
    }
}

/// Compliance exports: the Opus files of a time range (and company) as they are stored, plus
/// `manifest.csv` and `manifest.json` with each recording's metadata and the SHA-256 of its file,
/// checked as the file is copied (a damaged file fails the export rather than ship unnoticed).
/// Written under a temporary name and renamed into place when complete.
public struct Exporter: Sendable {
    public let catalog: Catalog
    /// Seal the ZIP for this age recipient (the file is then an age file, `age -d` opens it).
    public var recipient: AgeRecipient?
    /// Recordings read from the catalog (and their keys from the key store) at a time.
    var pageSize = 200
    public init(catalog: Catalog, recipient: AgeRecipient? = nil) {
        self.catalog = catalog
        self.recipient = recipient
    }

    public func export(_ query: ListQuery, to out: String, now: Date = Date(), progress: (Int, Int) -> Void = { _, _ in }) throws -> ExportSummary {
        let total = try catalog.count(query)
        let temp = Transcoder.temporaryPath(for: out)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ExportError("cannot create \(out): \(String(cString: strerror(errno)))") }
        // The manifests grow with the export: they are spooled to files beside it, not kept in memory.
        let csvPath = temp + ".csv", jsonPath = temp + ".json"
        var done = false
        defer {
            close(fd)
            unlink(csvPath)
            unlink(jsonPath)
            if !done { unlink(temp) }
        }
        let csv = try Spool(path: csvPath)
        let json = try Spool(path: jsonPath)
        try csv.append("uniqueid,started_at,company,agent,lead_number,duration_ms,sample_rate,channels,file,bytes,sha256,legal_hold,pauses,overtalk_ms,dead_air_ms,talk_ratio\r\n")
        let output = ExportOutput(fd: fd)
        let age = try recipient.map { r in try AgeWriter(recipient: r) { try output.write($0) } }
        let zip = ZipWriter(date: now) { bytes in if let age { try age.write(bytes) } else { try output.write(bytes) } }
        var audioBytes = 0
        var count = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        // The recordings' files come from the reader's thread, read, checked and CRC'd; this
        // thread writes them, the manifests and the ZIP (ExportPipeline.swift).
        let reader = EntryReader(catalog: catalog, query: query, pageSize: pageSize)
        reader.start()
        do {
            while let item = try reader.items.pop() {
                let row: RecordingRow, bytes: Int, sha: String
                switch item {
                case .begin(let r):
                    try zip.begin(name: r.opusPath)
                    continue
                case .data(let chunk):
                    try zip.entryBytes(chunk.bytes)
                    reader.recycle(chunk)
                    continue
                case .end(let r, let n, let s, let crc):
                    try zip.end(crc: crc)
                    (row, bytes, sha) = (r, n, s)
                }
                audioBytes += bytes
                let started = RecordingTags.iso(row.startedAtDate)
                let ami = AMIFacts.decode(row.ami)
                let pauses = (ami?.pauses ?? []).map { p -> [String: Any] in
                    ["start_ms": p.startMs, "end_ms": p.endMs, "by": p.by as Any, "requested_at": p.requestedAt as Any, "ended_by": p.endedBy as Any]
                }
                var entry: [String: Any] = [
                    "uniqueid": row.uniqueid, "started_at": started, "company": row.company as Any, "agent": row.agent as Any,
                    "lead_number": row.leadNumber as Any, "duration_ms": row.durationMs, "sample_rate": row.sampleRate, "channels": row.channels,
                    "file": row.opusPath, "bytes": bytes, "sha256": sha, "legal_hold": row.legalHold,
                    "source": ["format": row.sourceFormat, "bytes": row.sourceBytes, "sha256": row.sourceSHA256],
                ]
                // What AMI said (empty and null when it did not see the call).
                entry["pauses"] = pauses
                entry["gaps"] = (ami?.gaps ?? []).map { ["at_ms": $0.atMs, "lost_ms": $0.lostMs, "why": $0.why] }
                entry["answered_at"] = ami?.answeredAt as Any
                entry["ended_at"] = ami?.endedAt as Any
                // Two-channel recordings: who talked when, as the recording's JSON has it (null for mono).
                let speakers: Any = row.speakers.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } ?? NSNull()
                entry["speakers"] = speakers
                entry["overtalk_ms"] = row.overtalkMs.map { $0 as Any } ?? NSNull()
                entry["dead_air_ms"] = row.deadAirMs.map { $0 as Any } ?? NSNull()
                entry["talk_ratio"] = row.talkRatio.map { $0 as Any } ?? NSNull()
                try json.append((count == 0 ? "\n    " : ",\n    ") + String(decoding: try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
                var fields: [String] = [row.uniqueid, started, row.company ?? "", row.agent ?? "", row.leadNumber ?? "", String(row.durationMs),
                                String(row.sampleRate), String(row.channels), row.opusPath, String(bytes), sha, row.legalHold ? "true" : "false",
                                (ami?.pauses ?? []).map { "\($0.startMs)-\($0.endMs)" }.joined(separator: " ")]
                fields += [row.overtalkMs.map { String($0) } ?? "", row.deadAirMs.map { String($0) } ?? "", row.talkRatio.map { String($0) } ?? ""]
                try csv.append(fields.map(Self.csvField).joined(separator: ",") + "\r\n")
                count += 1
                progress(count, max(total, count))
            }
        } catch {
            // A failure of either side: the reader is stopped (if it was not the one failing).
            reader.stop(error)
            throw error
        }
        reader.join()
        try csv.close()
        try json.close()
        func quoted(_ s: String?) -> String { s.map { String(decoding: try! JSONSerialization.data(withJSONObject: $0, options: .fragmentsAllowed), as: UTF8.self) } ?? "null" }
        let head = "{\n  \"company\": \(quoted(query.company)),\n  \"count\": \(count),\n  \"from\": \(quoted(query.from.map(RecordingTags.iso))),\n  \"generated_at\": \"\(RecordingTags.iso(now))\",\n  \"recordings\": ["
        let tail = (count == 0 ? "" : "\n  ") + "],\n  \"to\": \(quoted(query.to.map(RecordingTags.iso)))\n}\n"
        try zip.add(name: "manifest.csv") { emit in try Self.stream(csvPath, buffer: buffer, emit) }
        try zip.add(name: "manifest.json") { emit in
            try Array(head.utf8).withUnsafeBytes { try emit($0) }
            try Self.stream(jsonPath, buffer: buffer, emit)
            try Array(tail.utf8).withUnsafeBytes { try emit($0) }
        }
        try zip.finish()
        try age?.finish()
        let zipSHA256 = try output.finish()
        guard rename(temp, out) == 0 else { throw ExportError("cannot write \(out): \(String(cString: strerror(errno)))") }
        done = true
        try? syncDirectory(parentDirectory(of: out))
        return ExportSummary(recordings: count, audioBytes: audioBytes, zipBytes: output.written, zipSHA256: zipSHA256)
    }

    static func stream(_ path: String, buffer: UnsafeMutableRawBufferPointer, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ExportError("cannot read \(path)") }
        defer { close(fd) }
        while true {
            let n = read(fd, buffer.baseAddress!, buffer.count)
            if n < 0 { throw ExportError("cannot read \(path)") }
            if n == 0 { return }
            try emit(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// RFC 4180 quoting; a field a spreadsheet would run as a formula is prefixed with ': a leading
    /// = + - @ (unless it is a plain number), and a leading TAB or CR, which spreadsheets strip
    /// before looking for one (OWASP's CSV injection list).
    static func csvField(_ s: String) -> String {
        var v = s
        if let f = v.unicodeScalars.first {
            let formula = "=+-@".unicodeScalars.contains(f) && !(v.allSatisfy { $0.isNumber || $0 == "-" || $0 == "." })
            if formula || f == "\t" || f == "\r" { v = "'" + v }
        }
        if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return v
    }
}

/// An append-only text file, buffered.
final class Spool {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ExportError("cannot create \(path)") }
    }

    func append(_ s: String) throws {
        buffer += Array(s.utf8)
        if buffer.count > 1 << 16 { try flush() }
    }

    func flush() throws {
        let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        guard n == buffer.count else { throw ExportError("cannot write the manifest") }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        if !buffer.isEmpty { try flush() }
        _ = Foundation.close(fd)
    }
}
