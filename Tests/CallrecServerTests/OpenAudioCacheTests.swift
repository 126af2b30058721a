import CallrecCatalog
import CallrecCompliance
import CallrecMedia
import CallrecTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CallrecServer

/// The fast path holds recordings' files open (`OpenAudioCache`) and remembers verified bearer
/// tokens (`VerifiedTokens`): a removed or replaced recording is never served from a descriptor
/// opened before, and a remembered token still expires. Real server on loopback, real files.
struct OpenAudioCacheTests {
    static let id = "1732467600.42"
    static let path = "/recordings/1732467600.42.opus"

    /// GETs `uri` until the fast path answers it (the router's lookup fills the row cache the fast
    /// path answers from; a loaded machine may outlast it), returning that answer.
    static func fast(_ client: some TestClientProtocol, _ h: Harness, _ uri: @autoclosure () -> String, headers: HTTPFields = [:]) async throws -> TestResponse {
        for _ in 0..<5 {
            let before = AudioFastPath.answers(data: h.data.root)
            let r = try await client.execute(uri: uri(), method: .get, headers: headers)
            if AudioFastPath.answers(data: h.data.root) == before + 1 { return r }
        }
        Issue.record("the fast path never answered \(uri())")
        throw CancellationError()
    }

    @Test func aDeletedRecordingIsNotServedFromItsOpenFile() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let admin = try await h.token(.admin)
        try await h.test { client in
            let warm = try await Self.fast(client, h, h.signed(Self.path), headers: [.range: "bytes=0-99"])
            #expect(warm.status == .partialContent)
            _ = try await Self.fast(client, h, Self.path, headers: h.bearer(admin) + [.range: "bytes=0-99"])
            #expect(try await client.execute(uri: "/recordings/\(Self.id)", method: .delete, headers: h.bearer(admin)).status == .noContent)
            for headers in [[.range: "bytes=0-99"], h.bearer(admin) + [.range: "bytes=0-99"]] as [HTTPFields] {
                let gone = try await client.execute(uri: headers[.authorization] == nil ? h.signed(Self.path) : Self.path, method: .get, headers: headers)
                #expect(gone.status == .notFound, "\(headers)")
                #expect(gone.errorCode == "not_found")
            }
        }
    }

    /// Another process (the CLI's `encrypt`, `decrypt`, `delete`) renames a new file over the
    /// recording or removes it: this process hears nothing of it, yet the next request sees it.
    @Test func aFileReplacedOrRemovedBehindOurBackIsNotServedFromItsOpenFile() async throws {
        let h = try await Harness()
        let row = try h.add("speech.wav", as: Self.id)
        let other = try h.add("silence.wav", as: "1732467600.43")
        let file = h.data.absolute(row.opusPath)
        let replacement = try [UInt8](Data(contentsOf: URL(fileURLWithPath: h.data.absolute(other.opusPath))))
        try await h.test { client in
            let before = try await Self.fast(client, h, h.signed(Self.path), headers: [.range: "bytes=0-199"])
            #expect(before.status == .partialContent)
            // Renamed over, as `callrec encrypt` does (a new file beside it, then rename).
            let temporary = file + ".new"
            try Data(replacement).write(to: URL(fileURLWithPath: temporary))
            #expect(rename(temporary, file) == 0)
            // The kernel reports it (FileChanges): until this process has read that, a request
            // may still get the bytes of the file it had open, never anything else; then the new.
            let after = try await Self.untilChanged(from: before) {
                try await client.execute(uri: h.signed(Self.path), method: .get, headers: [.range: "bytes=0-199"])
            }
            #expect(after.status == .partialContent)
            #expect(after.bytes == Array(replacement[0..<200]), "the old file's bytes were still served from a descriptor opened before the rename")
            // Removed.
            #expect(unlink(file) == 0)
            let gone = try await Self.untilChanged(from: after) {
                try await client.execute(uri: h.signed(Self.path), method: .get, headers: [.range: "bytes=0-199"])
            }
            #expect(gone.status == .serviceUnavailable, "a removed file's bytes were still served from a descriptor opened before")
        }
    }

    /// `request` repeated until its answer differs from `before` (each one in between must be
    /// `before` exactly), for at most 5 s.
    static func untilChanged(from before: TestResponse, _ request: () async throws -> TestResponse) async throws -> TestResponse {
        let deadline = Date().addingTimeInterval(5)
        while true {
            let r = try await request()
            if r.status != before.status || r.bytes != before.bytes || Date() > deadline { return r }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// A directory on a file system another machine may change is not trusted to inotify (it
    /// would not hear of the other machine's changes): its entries `stat` on every use.
    @Test func networkFileSystemsAreNotWatched() throws {
        let dir = TempDir()
        let mountinfo = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            40 22 0:40 / \(dir.path)/nfs rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
            41 22 0:41 / \(dir.path)/my\\040disk rw - fuse.sshfs host: rw
            42 40 0:42 / \(dir.path)/nfs/local rw - tmpfs tmpfs rw
            """
        for sub in ["nfs/a", "nfs/local/b", "my disk/c", "plain"] { try FileManager.default.createDirectory(atPath: dir.file(sub), withIntermediateDirectories: true) }
        let real = { (p: String) in URL(fileURLWithPath: p).resolvingSymlinksInPath().path }
        // The test's temporary directory may itself sit behind a symbolic link: mount points are real paths.
        let info = mountinfo.replacingOccurrences(of: dir.path, with: real(dir.path))
        #expect(FileChanges.fileSystemType(of: dir.file("nfs/a"), mountinfo: info) == "nfs4")
        #expect(FileChanges.fileSystemType(of: dir.file("nfs/local/b"), mountinfo: info) == "tmpfs")  // the longest mount point
        #expect(FileChanges.fileSystemType(of: dir.file("my disk/c"), mountinfo: info) == "fuse.sshfs")
        #expect(FileChanges.fileSystemType(of: dir.file("plain"), mountinfo: info) == "ext4")
        #expect(FileChanges.shared(fileSystem: "nfs4") && FileChanges.shared(fileSystem: "fuse.sshfs") && FileChanges.shared(fileSystem: "cifs"))
        #expect(!FileChanges.shared(fileSystem: "ext4") && !FileChanges.shared(fileSystem: "tmpfs") && !FileChanges.shared(fileSystem: "xfs"))
        // This machine's own: a temporary directory is local, so it is watched.
        let local = try #require(FileChanges.fileSystemType(of: dir.path))
        #expect(!FileChanges.shared(fileSystem: local), "\(local)")
    }

    /// The cache is told of changes by the kernel: a file renamed over, written in place or
    /// removed leaves the cache without a `stat` per use; without `FileChanges` (inotify
    /// unavailable) every use compares `stat(path)` and sees the change at once.
    @Test func changesToTheFileDropItsEntry() throws {
        let dir = TempDir()
        let path = dir.file("a.opus")
        let changes = try #require(FileChanges.shared, "inotify is available on Linux")
        for watched in [true, false] {
            try Data("OggS one".utf8).write(to: URL(fileURLWithPath: path))
            let cache = OpenAudioCache(changes: watched ? changes : nil)
            let first = try #require(cache.open("a", path: path))
            #expect(first.watched == watched)
            #expect(cache.open("a", path: path) === first)
            let changesToMake: [(String, () throws -> Void)] = [
                ("renamed over", {
                    try Data("OggS two".utf8).write(to: URL(fileURLWithPath: path + ".new"))
                    #expect(rename(path + ".new", path) == 0)
                }),
                ("written in place", {
                    let fd = open(path, O_WRONLY)
                    #expect(pwrite(fd, "X", 1, 5) == 1)
                    close(fd)
                }),
                ("removed", { #expect(unlink(path) == 0) }),
            ]
            for (what, change) in changesToMake {
                let held = cache.open("a", path: path)
                #expect(held != nil, "\(what), watched \(watched)")
                try change()
                if watched {
                    let deadline = Date().addingTimeInterval(5)
                    while cache.isOpen("a") && Date() < deadline { usleep(1_000) }
                    #expect(!cache.isOpen("a"), "\(what): the kernel's report did not drop the entry")
                }
                let now = cache.open("a", path: path)
                #expect(now !== held, "\(what), watched \(watched): served from the descriptor opened before")
                if what == "removed" { #expect(now == nil) }
            }
        }
    }
    /// An append renames the new whole call over the file and commits its new row: the next
    /// request gets the new bytes and ETag.
    @Test func anAppendedRecordingServesItsNewBytesAndETag() async throws {
        let h = try await Harness()
        let first = try h.add("speech.wav", as: Self.id)
        try await h.test { client in
            let before = try await Self.fast(client, h, h.signed(Self.path))
            #expect(before.headers[.eTag] == "\"\(first.opusSHA256.prefix(32))\"")
            let later = try placeFixture("silence.wav", at: h.dir.file("later/\(Self.id).wav"))
            _ = h.ingestor.ingest(path: later)
            let appended = try #require(try h.catalog.recording(Self.id))
            #expect(appended.opusSHA256 != first.opusSHA256)
            let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: h.data.absolute(appended.opusPath))))
            let after = try await Self.fast(client, h, h.signed(Self.path))
            #expect(after.headers[.eTag] == "\"\(appended.opusSHA256.prefix(32))\"")
            #expect(after.bytes == stored)
        }
    }

    /// Retention purge and LGPD erasure remove recordings (and their data keys) in this process:
    /// their URLs answer 404 at once.
    @Test func purgedAndErasedRecordingsAreNotServedFromTheirOpenFiles() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        try h.add("speech.wav", as: "1732467600.43")
        try h.catalog.setMetadata("1732467600.43", Metadata(company: "42", leadNumber: "5511999"))
        let admin = try await h.token(.admin)
        let erasedPath = "/recordings/1732467600.43.opus"
        try await h.test { client in
            _ = try await Self.fast(client, h, h.signed(Self.path))
            _ = try await Self.fast(client, h, h.signed(erasedPath))
            let report = try Remover(catalog: h.catalog).purge(now: Date().addingTimeInterval(400 * 86400), defaultDays: 1, dryRun: false)
            #expect(report.uniqueids.contains(Self.id))
            let purged = try await client.execute(uri: h.signed(Self.path), method: .get, headers: [:])
            #expect(purged.status == .notFound)
            let erased = try await client.execute(
                uri: "/erasures", method: .post, headers: h.bearer(admin), body: ByteBuffer(string: #"{"lead_number":"5511999"}"#))
            #expect(erased.status == .ok)
            let gone = try await client.execute(uri: h.signed(erasedPath), method: .get, headers: [:])
            #expect(gone.status == .notFound)
        }
    }

    /// A token the router verified is answered by the fast path from then on, but only until its
    /// `exp`: then it is refused, as JWTKit refuses it.
    @Test func aRememberedTokenStillExpires() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)
        let short = try await h.token(.viewer, company: "42", expires: 2)
        try await h.test { client in
            let first = try await client.execute(uri: Self.path, method: .get, headers: h.bearer(short) + [.range: "bytes=0-9"])
            #expect(first.status == .partialContent)
            let remembered = try await Self.fast(client, h, Self.path, headers: h.bearer(short) + [.range: "bytes=0-9"])
            #expect(remembered.status == .partialContent)
            // JWT `exp` has a resolution of a second: wait until it has certainly passed.
            try await Task.sleep(for: .seconds(3))
            let before = AudioFastPath.answers(data: h.data.root)
            let expired = try await client.execute(uri: Self.path, method: .get, headers: h.bearer(short) + [.range: "bytes=0-9"])
            #expect(expired.status == .unauthorized)
            #expect(expired.errorCode == "expired")
            #expect(AudioFastPath.answers(data: h.data.root) == before)
        }
    }

    /// The fast path applies the router's rules to remembered tokens: a role that reads no audio
    /// is refused (403), another company's recording is missing (404), every read is audited.
    @Test func rememberedTokensKeepRolesScopesAndAudit() async throws {
        let h = try await Harness()
        try h.add("speech.wav", as: Self.id)  // company 42
        let recorder = try await h.token(.recorder, company: "42")
        let stranger = try await h.token(.viewer, company: "7")
        let viewer = try await h.token(.viewer, company: "42")
        try await h.test { client in
            for _ in 0..<3 {
                #expect(try await client.execute(uri: Self.path, method: .get, headers: h.bearer(recorder)).status == .forbidden)
                #expect(try await client.execute(uri: Self.path, method: .get, headers: h.bearer(stranger)).status == .notFound)
            }
            _ = try await client.execute(uri: Self.path, method: .get, headers: h.bearer(viewer) + [.range: "bytes=0-9"])
            let fast = try await Self.fast(client, h, Self.path, headers: h.bearer(viewer) + [.range: "bytes=10-19"])
            #expect(fast.status == .partialContent)
        }
        // The server has stopped: its audit writer flushed on shutdown.
        let audited = try h.catalog.auditLog(from: nil, to: nil).filter { $0.action == "audio.opus" && $0.detail == "bytes=10-19" }
        #expect(!audited.isEmpty)
        #expect(audited.allSatisfy { $0.actor == "tester" && $0.role == "viewer" && $0.company == "42" && $0.client == "127.0.0.1" })
    }

    /// Bounded: past `capacity` the least recently used file is closed; the sweep closes a file
    /// unlinked behind our back (a CLI purge while nobody plays), so its space is not held.
    @Test func theCacheIsBoundedAndSweepsUnlinkedFiles() throws {
        let dir = TempDir()
        let paths = (0..<3).map { dir.file("\($0).opus") }
        for p in paths { try Data("OggS plaintext \(p)".utf8).write(to: URL(fileURLWithPath: p)) }
        let cache = OpenAudioCache(capacity: 2, changes: nil)  // the sweep, not the kernel's report
        let first = try #require(cache.open("a", path: paths[0]))
        _ = cache.open("b", path: paths[1])
        #expect(cache.open("a", path: paths[0]) === first)  // the same descriptor, still valid
        _ = cache.open("c", path: paths[2])  // "b" is the least recently used
        #expect(cache.count == 2)
        #expect(cache.open("a", path: paths[0]) === first)
        #expect(unlink(paths[0]) == 0)
        cache.sweep()
        #expect(cache.count == 1)
        #expect(cache.open("a", path: paths[0]) == nil)
    }
}
