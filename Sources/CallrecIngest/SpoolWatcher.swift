import CallrecMedia
import Foundation
import Logging
import Metrics
import CallrecSupport

/// When a spool file counts as finished.
public struct WatcherOptions: Sendable {
    /// After the writer closes a file (inotify IN_CLOSE_WRITE, or a rename into the spool), how
    /// long it must stay unchanged before it is taken (`CALLREC_SETTLE_MS`, default 2000).
    public var settle: TimeInterval = 2
    /// A file found by a scan, with no events seen, is taken once its mtime is this old and it
    /// stays unchanged (`CALLREC_SCAN_AGE`, seconds, default 120).
    public var scanAge: TimeInterval = 120
    /// A file seen being written but never closed (a writer that neither closes nor dies) is
    /// taken after this long without a change (default 6 hours).
    public var openTimeout: TimeInterval = 6 * 3600
    /// How often the whole spool is scanned again, as a safety net (default 30 s).
    public var rescanInterval: TimeInterval = 30
    /// Parallel ingests (`CALLREC_WORKERS`, default: the number of cores).
    public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Back-off after a transient failure: doubling from this, up to `maxBackoff`.
    public var backoff: TimeInterval = 5
    public var maxBackoff: TimeInterval = 300
    /// How long one MixMonitor `r()`/`t()` leg waits for its partner, counted from the newest
    /// modification time among the call's files (so a restart does not reset it): past it, the
    /// leg is ingested alone, mono and flagged (`CALLREC_LEG_WAIT`, seconds, default 600).
    public var legWait: TimeInterval = 600
    var tick: TimeInterval = 0.25

    public init() {}
}

/// Watches the MixMonitor spool and every folder under it (new ones too), and hands each finished
/// recording to a bounded pool of workers that run the `Ingestor`.
///
/// Readiness comes from inotify close events plus a settle time, from age for files found by a
/// scan (at start-up, every `rescanInterval`, and after an inotify overflow). Hidden, temporary
/// and non-audio files, symlinks and anything not a regular file are ignored. Two files of the same
/// uniqueid are never ingested at once (the later one is appended to the earlier). The files of a
/// call recorded with `r()`/`t()` (both legs, and the mix beside them) are taken together, once
/// every one of them is finished; a leg waits for its partner up to `legWait`.
public final class SpoolWatcher: @unchecked Sendable {
    public let spool: String
    public let ingestor: Ingestor
    let options: WatcherOptions
    let logger: Logger
    /// Called after each ingest (tests and metrics).
    public var onOutcome: (@Sendable (String, IngestOutcome) -> Void)?

    private struct FileState {
        var closedAt: Date?
        var sawEvents = false
        var lastChange: Date
        var size: Int = -1
        var mtime: Double = 0
        var attempts = 0
        var retryAt: Date?
        /// When the watcher first saw the file (a call's start, when its name does not tell).
        var firstSeen = Date()
    }

    private let lock = NSLock()
    private var files: [String: FileState] = [:]
    private var inFlight: Set<String> = []
    private var inFlightIDs: Set<String> = []
    private var watches: [Int32: String] = [:]
    private var inotifyFD: Int32 = -1
    private var stopping = false
    private var loop: Worker<Void>?
    private var workers: [Worker<Void>] = []
    /// Paths and uniqueids for the workers. Never more are dispatched than there are workers,
    /// so the bound is never reached.
    private let jobs = BoundedQueue<([String], String)>(capacity: 1024)
    /// What each tracked file's name says (parsed once).
    private var names: [String: SpoolName?] = [:]
    private var lastScan = Date.distantPast
    private var nextDeadline = Date.distantFuture

    public init(spool: String, ingestor: Ingestor, options: WatcherOptions, logger: Logger) {
        self.spool = spool.hasSuffix("/") && spool.count > 1 ? String(spool.dropLast()) : spool
        self.ingestor = ingestor
        self.options = options
        self.logger = logger
    }

    /// Sets up inotify on the tree, recovers what a crash left, scans, and starts the threads.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        if let problem = Self.removalProblem(spool: spool) { logger.error("\(problem)") }
        inotifyFD = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotifyFD >= 0 else { throw MediaError.posix("inotify_init1 on", spool) }
        addWatchTree(spool)
        let pending = Set(listSpool().compactMap { ingestor.naming.parse(ingestor.relative($0))?.uniqueid })
        _ = ingestor.recover(pendingUniqueids: pending)
        scan(now: Date())
        for i in 0..<max(1, options.workers) {
            workers.append(Worker(name: "callrec-ingest-\(i)") { [self] in workerLoop() })
        }
        loop = Worker(name: "callrec-watch") { [self] in watchLoop() }
        logger.info("watching the spool", metadata: ["spool": "\(spool)", "workers": "\(options.workers)"])
    }

    /// Stops taking new files and waits for the ingests in progress to finish.
    public func stop() {
        lock.lock()
        stopping = true
        lock.unlock()
        try? loop?.join()
        jobs.finish()
        for w in workers { try? w.join() }
        if inotifyFD >= 0 { close(inotifyFD) }
        inotifyFD = -1
    }

    /// Why callrec could not remove ingested files from the spool (so it would never empty and
    /// every file would be taken again at each start), or nil. Removing a file needs write and
    /// search access to its folder, which Asterisk's own user owns.
    public static func removalProblem(spool: String) -> String? {
        guard access(spool, W_OK | X_OK) != 0 else { return nil }
        let reason = String(cString: strerror(errno))
        return "callrec cannot remove files from the spool \(spool) (\(reason)): ingested recordings will stay there and "
            + "be taken again at every start. Fix: make the folder writable by callrec's user or group — run callrec in "
            + "Asterisk's group with a group-writable spool (chmod g+rwx), or give Asterisk callrec's uid/gid "
            + "(ASTERISK_UID/ASTERISK_GID in docker-compose)."
    }

    /// The number of ingests running now.
    public var inProgress: Int {
        lock.lock()
        defer { lock.unlock() }
        return inFlight.count
    }

    /// A spool file MixMonitor is still writing: no close seen, not being ingested, and changed
    /// within `quiet` (a writer that stopped without closing is no longer a call in progress).
    public struct Writing: Sendable, Equatable {
        public var path: String
        /// What the spool pattern reads from its name (nil when it does not match).
        public var name: SpoolName?
        public var bytes: Int
        public var modified: Date
        public var firstSeen: Date

        public init(path: String, name: SpoolName?, bytes: Int, modified: Date, firstSeen: Date) {
            self.path = path
            self.name = name
            self.bytes = bytes
            self.modified = modified
            self.firstSeen = firstSeen
        }
    }

    /// The files being written now (the console's and `/calls/live`'s calls being recorded).
    public func writing(now: Date = Date(), quiet: TimeInterval = 30) -> [Writing] {
        lock.lock()
        let open = files.filter { path, state in state.closedAt == nil && !inFlight.contains(path) }.map { ($0.key, $0.value.firstSeen) }
        lock.unlock()
        var out: [Writing] = []
        for (path, firstSeen) in open {
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            let modified = Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
            guard now.timeIntervalSince(modified) <= quiet else { continue }
            out.append(Writing(path: path, name: ingestor.naming.parse(ingestor.relative(path)), bytes: Int(st.st_size), modified: modified, firstSeen: firstSeen))
        }
        return out.sorted { $0.path < $1.path }
    }

    /// The number of files waiting or in progress (for tests and /healthz).
    public var backlog: Int {
        lock.lock()
        defer { lock.unlock() }
        return files.count
    }

    // MARK: - the watch loop

    private func watchLoop() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            lock.lock()
            let stop = stopping
            lock.unlock()
            if stop { return }
            var pfd = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
            // Sleep until the next file is due (a settle time ending), the next event, or a tick.
            let wait = max(0.002, min(options.tick, nextDeadline.timeIntervalSinceNow))
            let r = poll(&pfd, 1, Int32((wait * 1000).rounded(.up)))
            let now = Date()
            if r > 0 {
                let n = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress!, $0.count) }
                if n > 0 { handleEvents(buffer, count: n, now: now) }
            }
            if now.timeIntervalSince(lastScan) >= options.rescanInterval { scan(now: now) }
            dispatchReady(now: now)
        }
    }

    private func handleEvents(_ buffer: [UInt8], count: Int, now: Date) {
        var offset = 0
        var rescan = false
        lock.lock()
        defer { lock.unlock() }
        while offset + 16 <= count {
            let (wd, mask, len) = buffer.withUnsafeBytes { raw in
                (raw.load(fromByteOffset: offset, as: Int32.self), raw.load(fromByteOffset: offset + 4, as: UInt32.self),
                 Int(raw.load(fromByteOffset: offset + 12, as: UInt32.self)))
            }
            let nameBytes = buffer[(offset + 16)..<min(offset + 16 + len, count)].prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            offset += 16 + len
            if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                rescan = true
                continue
            }
            if mask & UInt32(IN_IGNORED) != 0 {
                watches[wd] = nil
                continue
            }
            guard let dir = watches[wd], !name.isEmpty else { continue }
            let path = dir + "/" + name
            if mask & UInt32(IN_ISDIR) != 0 {
                if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0, !name.hasPrefix(".") || ingestor.naming.admitsHiddenNames {
                    lock.unlock()
                    addWatchTree(path)  // and pick up what was written before the watch existed
                    scanTree(path, now: now)
                    lock.lock()
                }
                continue
            }
            guard isCandidate(path: path, name: name) else { continue }
            if mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 {
                files[path] = nil
                names[path] = nil
                continue
            }
            var state = files[path] ?? FileState(lastChange: now)
            state.sawEvents = true
            state.lastChange = now
            if mask & UInt32(IN_CLOSE_WRITE | IN_MOVED_TO) != 0 {
                state.closedAt = now
            } else if mask & UInt32(IN_MODIFY | IN_CREATE) != 0 {
                state.closedAt = nil  // being written (again: MixMonitor's `a` reopens the file)
            }
            files[path] = state
        }
        if rescan { lastScan = .distantPast }
    }

    private func dispatchReady(now: Date) {
        lock.lock()
        defer { lock.unlock() }
        nextDeadline = .distantFuture
        guard !stopping, inFlight.count < max(1, options.workers) else { return }
        // Oldest first, so that the parts of one call are appended in order.
        let ready = files.filter { path, state in !inFlight.contains(path) && isReady(path: path, state: state, now: now) }
            .sorted { ($0.value.mtime, $0.key) < ($1.value.mtime, $1.key) }
        let readyPaths = Set(ready.map(\.key))
        // The files of each call with r()/t() legs, by folder and uniqueid.
        var calls: [String: [String]] = [:]
        for path in files.keys {
            guard let name = parsedName(path) else { continue }
            calls[parentDirectory(of: path) + "/" + name.uniqueid, default: []].append(path)
        }
        for (path, _) in ready {
            guard inFlight.count < max(1, options.workers) else { break }
            if inFlight.contains(path) { continue }  // taken with its call's other files this round
            let name = parsedName(path)
            let id = name?.uniqueid ?? path
            if inFlightIDs.contains(id) { continue }
            var group = [path]
            if let name, let members = calls[parentDirectory(of: path) + "/" + name.uniqueid], members.contains(where: { parsedName($0)?.leg != nil }) {
                // A call with legs: all of its files together, once every one is finished.
                guard members.allSatisfy({ readyPaths.contains($0) && !inFlight.contains($0) }) else { continue }
                let legs = Set(members.compactMap { parsedName($0)?.leg })
                if legs.count < 2 {
                    let newest = members.compactMap { files[$0]?.mtime }.max() ?? 0
                    let due = Date(timeIntervalSince1970: newest + options.legWait)
                    if due > now {
                        nextDeadline = min(nextDeadline, due)
                        continue
                    }
                    logger.warning("an r()/t() leg's partner did not arrive in time; ingesting what there is", metadata: ["uniqueid": "\(id)", "files": "\(members.count)"])
                }
                group = members.sorted()
            }
            for p in group { inFlight.insert(p) }
            inFlightIDs.insert(id)
            jobs.push((group, id))
        }
    }

    /// What a tracked file's name says, parsed once. Called with the lock held.
    private func parsedName(_ path: String) -> SpoolName? {
        if let cached = names[path] { return cached }
        let n = ingestor.naming.parse(ingestor.relative(path))
        names[path] = .some(n)
        return n
    }

    /// Whether a file is finished. Called with the lock held; refreshes the file's size and mtime.
    private func isReady(path: String, state: FileState, now: Date) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            files[path] = nil  // gone, or a symlink / not a regular file
            names[path] = nil
            return false
        }
        let size = Int(st.st_size)
        let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        var s = state
        if size != s.size || mtime != s.mtime {
            if s.size >= 0 { s.lastChange = now }
            s.size = size
            s.mtime = mtime
            files[path] = s
        }
        if let retry = s.retryAt, retry > now { return false }
        let quiet = now.timeIntervalSince(s.lastChange)
        if let closed = s.closedAt {
            let due = max(closed, s.lastChange).addingTimeInterval(options.settle)
            if due > now { nextDeadline = min(nextDeadline, due) }
            return due <= now
        }
        if s.sawEvents { return quiet >= options.openTimeout }
        return now.timeIntervalSince1970 - mtime >= options.scanAge && quiet >= options.settle
    }

    // MARK: - workers

    private func workerLoop() {
        while let (paths, id) = try? jobs.pop() {  // pop throws only after fail(), never called here
            let outcome = paths.count == 1 ? ingestor.ingest(path: paths[0]) : ingestor.ingest(call: paths)
            let now = Date()
            lock.lock()
            inFlightIDs.remove(id)
            for path in paths {
                inFlight.remove(path)
                if case .deferred = outcome, var s = files[path] {
                    s.attempts += 1
                    s.retryAt = now.addingTimeInterval(min(options.maxBackoff, options.backoff * pow(2, Double(s.attempts - 1))))
                    files[path] = s
                } else {
                    files[path] = nil
                    names[path] = nil
                }
            }
            lock.unlock()
            onOutcome?(paths[0], outcome)
            dispatchReady(now: Date())  // the next file now, not at the next tick
        }
    }

    // MARK: - scanning

    private func addWatchTree(_ root: String) {
        let mask = UInt32(IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR) | UInt32(IN_DONT_FOLLOW)
        var dirs = [root]
        while let dir = dirs.popLast() {
            let wd = inotify_add_watch(inotifyFD, dir, mask)
            if wd >= 0 {
                lock.lock()
                watches[wd] = dir
                lock.unlock()
            } else {
                logger.warning("cannot watch a folder; the periodic rescan covers it", metadata: ["folder": "\(dir)", "error": "\(String(cString: strerror(errno)))"])
            }
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !entry.hasPrefix(".") || ingestor.naming.admitsHiddenNames {
                var st = stat()
                let p = dir + "/" + entry
                if lstat(p, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { dirs.append(p) }
            }
        }
    }

    /// A file to consider: an audio name, not hidden, not a temporary — or hidden only because a
    /// pattern field of it starts with a dot (the ingest quarantines it with that reason).
    private func isCandidate(path: String, name: String) -> Bool {
        if SpoolNaming.isCandidate(fileName: name) && !ingestor.relative(path).split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
            return true
        }
        return ingestor.naming.isHiddenRecording(ingestor.relative(path))
    }

    /// Every candidate file under the spool.
    private func listSpool() -> [String] { listTree(spool) }

    private func listTree(_ root: String) -> [String] {
        var out: [String] = []
        var dirs = [root]
        while let dir = dirs.popLast() {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !entry.hasPrefix(".") || ingestor.naming.admitsHiddenNames {
                let p = dir + "/" + entry
                var st = stat()
                guard lstat(p, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: dirs.append(p)
                case S_IFREG where isCandidate(path: p, name: entry): out.append(p)
                default: break
                }
            }
        }
        return out
    }

    private func scan(now: Date) {
        lastScan = now
        scanTree(spool, now: now)
    }

    private func scanTree(_ root: String, now: Date) {
        let found = listTree(root)
        lock.lock()
        for p in found where files[p] == nil { files[p] = FileState(lastChange: now) }
        lock.unlock()
    }
}
