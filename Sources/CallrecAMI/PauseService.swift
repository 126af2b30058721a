import CallrecCatalog
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Why a pause or resume was not done.
public enum PauseError: Error, Equatable, Sendable {
    /// No call with that uniqueid is being recorded now.
    case notLive
    /// AMI is down, or Asterisk did not confirm (the reason, for the client).
    case unavailable(String)
}

/// PCI pauses: `MixMonitorMute` (Direction both, State 1/0) on the call's channel, answered only
/// once Asterisk confirmed it, and stored in the catalog (who asked, when) before the answer; a
/// repeated pause of a paused call stores nothing new. A pause left open is resumed after
/// `maxPause` (its end then says `max_pause`), also after a restart of callrec.
public final class PauseService: @unchecked Sendable {
    public let client: AMIClient?
    public let tracker: CallTracker
    let catalog: Catalog
    let maxPause: TimeInterval
    let logger: Logger
    let now: @Sendable () -> Date
    private let timers = NIOLockedValueBox<[String: Task<Void, Never>]>([:])

    public init(client: AMIClient?, tracker: CallTracker, catalog: Catalog, maxPause: TimeInterval, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.client = client
        self.tracker = tracker
        self.catalog = catalog
        self.maxPause = maxPause
        self.logger = logger
        self.now = now
    }

    /// Mutes the recording of a live call for `by`; returns the pause (a new one, or the one
    /// already open).
    public func pause(_ uniqueid: String, by: String) async throws -> PauseRow {
        guard let call = tracker.live(uniqueid) else { throw PauseError.notLive }
        let requestedAt = now().timeIntervalSince1970
        try await mute(call, on: true)
        let (row, created) = try await catalog.confirmPause(uniqueid, by: by, requestedAt: requestedAt, confirmedAt: now().timeIntervalSince1970)
        tracker.setPaused(uniqueid, true)
        if created || timers.withLockedValue({ $0[uniqueid] == nil }) { arm(row) }
        logger.notice("recording paused", metadata: ["uniqueid": "\(uniqueid)", "by": "\(by)", "new": "\(created)"])
        return row
    }

    /// Unmutes a live call; returns the pause it ended (nil when none was open: Asterisk is still
    /// told, so the recording is surely not muted).
    @discardableResult
    public func resume(_ uniqueid: String, by: String) async throws -> PauseRow? {
        guard let call = tracker.live(uniqueid) else { throw PauseError.notLive }
        try await mute(call, on: false)
        let row = try await catalog.endPause(uniqueid, by: by, at: now().timeIntervalSince1970, source: "callrec", claimClosed: call.paused)
        tracker.setPaused(uniqueid, false)
        disarm(uniqueid)
        logger.notice(
            by == "max_pause" ? "recording resumed: the pause reached CALLREC_MAX_PAUSE" : "recording resumed",
            metadata: ["uniqueid": "\(uniqueid)", "by": "\(by)"])
        return row
    }

    private func mute(_ call: TrackedCall, on: Bool) async throws {
        guard let client, client.isConnected else { throw PauseError.unavailable("the AMI connection to Asterisk is down") }
        do {
            try await client.send("MixMonitorMute", [("Channel", call.channel), ("Direction", "both"), ("State", on ? "1" : "0")])
        } catch let e as AMIError {
            if case .refused = e, tracker.live(call.uniqueid) == nil { throw PauseError.notLive }
            throw PauseError.unavailable("\(e)")
        }
    }

    // MARK: CALLREC_MAX_PAUSE

    /// Re-arms the timers of pauses a previous run left open.
    public func restore() async throws {
        for p in try await catalog.openPauses() where tracker.call(p.uniqueid) != nil { arm(p) }
    }

    func arm(_ pause: PauseRow) {
        let id = pause.uniqueid
        let due = (pause.requestedAt ?? pause.startAt) + maxPause
        let task = Task { [weak self] in
            guard let self else { return }
            var wait = due - self.now().timeIntervalSince1970
            while !Task.isCancelled {
                if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
                if Task.isCancelled { return }
                do {
                    try await self.resume(id, by: "max_pause")
                    return
                } catch PauseError.notLive {
                    return
                } catch {
                    // AMI down: keep trying until the call ends.
                    self.logger.warning("cannot resume a pause past CALLREC_MAX_PAUSE yet", metadata: ["uniqueid": "\(id)", "error": "\(error)"])
                    wait = 2
                }
            }
        }
        let old = timers.withLockedValue { t -> Task<Void, Never>? in
            let old = t[id]
            t[id] = task
            return old
        }
        old?.cancel()
    }

    func disarm(_ uniqueid: String) {
        let t = timers.withLockedValue { $0.removeValue(forKey: uniqueid) }
        // Not the timer's own task cancelling itself mid-resume: it returns right after.
        t?.cancel()
    }
}

/// The AMI side of `callrec serve` as a service: restores the calls and pauses a previous run
/// left, keeps the connection, and on each login asks `CoreShowChannels` which calls are still up.
public struct AMIService: Service {
    public let client: AMIClient
    public let tracker: CallTracker
    public let pauses: PauseService

    public init(client: AMIClient, tracker: CallTracker, pauses: PauseService) {
        self.client = client
        self.tracker = tracker
        self.pauses = pauses
    }

    /// Wires a client to a tracker and a pause service.
    public static func make(
        endpoint: AMIEndpoint, options: AMIOptions = AMIOptions(), catalog: Catalog, maxPause: TimeInterval, logger: Logger
    ) -> AMIService {
        let tracker = CallTracker(catalog: catalog, logger: logger)
        let followed = CallTracker.followed
        let box = NIOLockedValueBox<AMIClient?>(nil)
        let client = AMIClient(
            endpoint: endpoint, options: options, logger: logger, wanted: { followed.contains(String($0)) || $0.hasPrefix("CoreShowChannel") },
            onLogin: {
                // Calls that ended while the connection was down are over.
                Task {
                    guard let client = box.withLockedValue({ $0 }) else { return }
                    do {
                        let channels = try await client.sendList("CoreShowChannels")
                        tracker.reconcile(present: Set(channels.compactMap { $0["Uniqueid"] }), now: Date().timeIntervalSince1970)
                    } catch {
                        logger.warning("AMI: CoreShowChannels failed; live calls not reconciled", metadata: ["error": "\(error)"])
                    }
                }
            },
            onEvent: { tracker.handle($0) })
        box.withLockedValue { $0 = client }
        let pauses = PauseService(client: client, tracker: tracker, catalog: catalog, maxPause: maxPause, logger: logger)
        tracker.onEnded = { [weak pauses] id in pauses?.disarm(id) }
        return AMIService(client: client, tracker: tracker, pauses: pauses)
    }

    /// How long what AMI said about an ended call is kept for its recording's ingest (which reads
    /// it seconds after the hangup; a MixMonitor `a` part may come later).
    public static let keepEndedCalls: TimeInterval = 7 * 86400

    public func run() async throws {
        // A catalog that cannot be read now must not stop the server: AMI goes on without them.
        do {
            try await tracker.restore()
            try await pauses.restore()
        } catch {
            tracker.logger.error("AMI: cannot take back the calls and pauses of the previous run", metadata: ["error": "\(error)"])
        }
        let catalog = pauses.catalog
        let sweeper = Task {
            while !Task.isCancelled {
                try? await catalog.forgetCalls(endedBefore: Date().timeIntervalSince1970 - Self.keepEndedCalls)
                try? await Task.sleep(nanoseconds: 3600 * 1_000_000_000)
            }
        }
        await withGracefulShutdownHandler {
            await client.run()
        } onGracefulShutdown: {
            client.stop()
        }
        sweeper.cancel()
        await tracker.flush()
    }
}
