import CallrecCatalog
import CallrecMedia
import Crypto
import Foundation

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
    public init(catalog: Catalog) { self.catalog = catalog }

    public func export(_ query: ListQuery, to out: String, now: Date = Date(), progress: (Int, Int) -> Void = { _, _ in }) throws -> ExportSummary {
        var rows: [RecordingRow] = []
        var q = query
        q.limit = Catalog.maxPageSize
        repeat {
            let page = try catalog.list(q)
            rows += page.items
            q.cursor = page.nextCursor
        } while q.cursor != nil

        let temp = Transcoder.temporaryPath(for: out)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ExportError("cannot create \(out): \(String(cString: strerror(errno)))") }
        var done = false
        defer {
            close(fd)
            if !done { unlink(temp) }
        }
        let zip = ZipWriter(fd: fd, date: now)
        var manifest: [[String: Any]] = []
        var csv = "uniqueid,started_at,company,agent,lead_number,duration_ms,sample_rate,channels,file,bytes,sha256,legal_hold\r\n"
        var audioBytes = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        for (i, row) in rows.enumerated() {
            let path = catalog.data.absolute(row.opusPath)
            let input = open(path, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else { throw ExportError("\(row.uniqueid): its audio file is missing (run callrec verify)") }
            defer { close(input) }
            var hasher = SHA256()
            var bytes = 0
            try zip.add(name: row.opusPath) { emit in
                while true {
                    let n = read(input, buffer.baseAddress!, buffer.count)
                    if n < 0 { throw ExportError("cannot read \(path): \(String(cString: strerror(errno)))") }
                    if n == 0 { break }
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    hasher.update(bufferPointer: chunk)
                    try emit(chunk)
                    bytes += n
                }
            }
            let sha = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            guard sha == row.opusSHA256 else { throw ExportError("\(row.uniqueid): its audio file does not match the catalog's SHA-256 (run callrec verify)") }
            audioBytes += bytes
            let json = RecordingJSON(row)
            manifest.append([
                "uniqueid": row.uniqueid, "started_at": json.startedAt, "company": row.company as Any, "agent": row.agent as Any,
                "lead_number": row.leadNumber as Any, "duration_ms": row.durationMs, "sample_rate": row.sampleRate, "channels": row.channels,
                "file": row.opusPath, "bytes": bytes, "sha256": sha, "legal_hold": row.legalHold,
                "source": ["format": row.sourceFormat, "bytes": row.sourceBytes, "sha256": row.sourceSHA256],
            ])
            csv += [row.uniqueid, json.startedAt, row.company ?? "", row.agent ?? "", row.leadNumber ?? "", String(row.durationMs),
                    String(row.sampleRate), String(row.channels), row.opusPath, String(bytes), sha, row.legalHold ? "true" : "false"]
                .map(Self.csvField).joined(separator: ",") + "\r\n"
            progress(i + 1, rows.count)
        }
        let header: [String: Any] = [
            "generated_at": RecordingTags.iso(now), "count": rows.count,
            "from": query.from.map(RecordingTags.iso) as Any, "to": query.to.map(RecordingTags.iso) as Any,
            "company": query.company as Any, "recordings": manifest,
        ]
        try zip.add(name: "manifest.csv", data: Array(csv.utf8))
        try zip.add(name: "manifest.json", data: Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])))
        try zip.finish()
        guard fsync(fd) == 0, rename(temp, out) == 0 else { throw ExportError("cannot write \(out): \(String(cString: strerror(errno)))") }
        done = true
        try? syncDirectory(Transcoder.directoryOf(out))
        var st = stat()
        stat(out, &st)
        return ExportSummary(recordings: rows.count, audioBytes: audioBytes, zipBytes: Int(st.st_size), zipSHA256: try Transcoder.sha256(of: out))
    }

    /// RFC 4180 quoting; a leading = + - @ is prefixed with ' so spreadsheets do not run it.
    static func csvField(_ s: String) -> String {
        var v = s
        if let f = v.first, "=+-@".contains(f), !(v.allSatisfy { $0.isNumber || $0 == "-" || $0 == "." }) { v = "'" + v }
        if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return v
    }
}
