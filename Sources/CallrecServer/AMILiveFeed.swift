import CallrecAMI
import CallrecIngest
import Foundation
import ServiceLifecycle

/// Feeds `LiveCalls` from AMI: every second, the calls Asterisk is recording now (MixMonitorStart
/// seen, no hangup yet), beside the spool's files. AMI knows a call before MixMonitor's first
/// 32 KB reach the disk, knows the recording's exact start, and whether a PCI pause is on; the
/// company, agent and lead number come from MIXMONITOR_FILENAME under `CALLREC_SPOOL_PATTERN`
/// (else from the spool's file of the same call, merged by uniqueid).
struct AMILiveFeed: Service {
    let tracker: CallTracker
    let live: LiveCalls
    let naming: SpoolNaming?
    let interval: Duration
    let now: @Sendable () -> Date

    static let source = "ami"

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            live.replace(source: Self.source, with: Self.calls(tracker.live(), naming: naming, now: now()))
            try? await Task.sleep(for: interval)
        }
        live.replace(source: Self.source, with: [])
    }

    static func calls(_ tracked: [TrackedCall], naming: SpoolNaming?, now: Date) -> [LiveCall] {
        tracked.map { c in
            let started = c.recordingSince ?? now
            let meta = PauseRoutes.fileMetadata(c, naming: naming)
            return LiveCall(
                uniqueid: c.uniqueid, company: meta?.company, agent: meta?.agent, leadNumber: meta?.leadNumber,
                startedAt: started, durationMs: max(0, Int(now.timeIntervalSince(started) * 1000)), updatedAt: now, paused: c.paused)
        }
    }
}
