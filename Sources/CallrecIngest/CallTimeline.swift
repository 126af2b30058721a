import CallrecCatalog
import CallrecMedia
import Foundation

/// Puts what AMI said about a call onto its recording's timeline: the file's sample 0 is
/// MixMonitorStart; with MixMonitor's `b` option the time the channel was not bridged is dropped
/// from the file (not zero-filled), so an instant's place in the file is the recorded time
/// before it. Whether the file was recorded that way is read from its length: the model (all the
/// time, or only the bridged time) closest to the file's duration wins. Pauses are checked
/// against the audio: a PCM mute is exact zeros.
public enum CallTimeline {
    /// A pause's span must be at least this much exact zeros to count as muted in the audio.
    static let zerosNeeded = 0.9
    /// Missing time below this (one frame and some scheduling) is not reported as a gap.
    static let gapFloorMs = 40

    public static func facts(call: CallRow, pauses: [PauseRow], measurements m: Measurements, pcm: Bool) -> AMIFacts {
        let durationMs = m.durationMs
        let end = call.endedAt
        var gaps: [AMIFacts.Gap] = []
        // Recorded spans in Asterisk time, from MixMonitorStart to the end (or the file's length).
        var recorded: [(Double, Double)] = []
        if let t0 = call.monitorStartedAt {
            let callEnd = end ?? (t0 + Double(durationMs) / 1000)
            let bridged = call.bridgeSpans.compactMap { span -> (Double, Double)? in
                let a = max(span.enter, t0), b = min(span.leave ?? callEnd, callEnd)
                return b > a ? (a, b) : nil
            }
            let wholeMs = (callEnd - t0) * 1000
            let bridgedMs = bridged.reduce(0) { $0 + ($1.1 - $1.0) } * 1000
            let useBridged = !bridged.isEmpty && abs(bridgedMs - Double(durationMs)) < abs(wholeMs - Double(durationMs))
            recorded = useBridged ? bridged : [(t0, callEnd)]
            if useBridged {
                // Each unbridged stretch before, between and after the bridges is a gap.
                var cursor = t0, at = 0.0
                for (a, b) in recorded {
                    let lost = Int(((a - cursor) * 1000).rounded())
                    if lost >= gapFloorMs { gaps.append(.init(atMs: Int(at.rounded()), lostMs: lost, why: "not_bridged")) }
                    at += (b - a) * 1000
                    cursor = b
                }
                let tail = Int(((callEnd - cursor) * 1000).rounded())
                if tail >= gapFloorMs { gaps.append(.init(atMs: min(durationMs, Int(at.rounded())), lostMs: tail, why: "not_bridged")) }
            }
            let expected = recorded.reduce(0) { $0 + ($1.1 - $1.0) } * 1000
            let unexplained = Int((expected - Double(durationMs)).rounded())
            // Beyond the last frames' flush, time is missing and the events do not say where.
            if unexplained >= 200 { gaps.append(.init(atMs: durationMs, lostMs: unexplained, why: "unexplained")) }
        }
        /// Milliseconds into the file of Asterisk time `t`.
        func offset(_ t: Double) -> Int {
            var ms = 0.0
            for (a, b) in recorded where t > a { ms += (min(t, b) - a) * 1000 }
            return max(0, min(durationMs, Int(ms.rounded())))
        }
        let rate = max(m.sampleRate, 1)
        let zeroSpans = m.zeroRuns.map { (Double($0[0]) * 1000 / Double(rate), Double($0[1]) * 1000 / Double(rate)) }
        let mapped: [AMIFacts.Pause] = pauses.compactMap { p in
            guard call.monitorStartedAt != nil else { return nil }
            let start = offset(p.startAt)
            let stop = offset(p.endAt ?? end ?? .infinity)
            guard stop >= start else { return nil }
            var zeros: Bool?
            if pcm {
                let covered = zeroSpans.reduce(0.0) { sum, z in sum + max(0, min(z.1, Double(stop)) - max(z.0, Double(start))) }
                // A pause of under a frame cannot be checked; otherwise the span must be zeros.
                zeros = stop - start < 20 ? nil : covered >= zerosNeeded * Double(stop - start - 20)
            }
            return AMIFacts.Pause(
                startMs: start, endMs: stop, by: p.by, requestedAt: p.requestedAt.map(AMIFacts.iso), endedBy: p.endBy, zeros: zeros)
        }
        return AMIFacts(
            startedAt: call.monitorStartedAt.map(AMIFacts.iso), answeredAt: call.answeredAt.map(AMIFacts.iso), endedAt: end.map(AMIFacts.iso),
            hangupCause: call.hangupCause, caller: call.callerNum, connected: call.connectedNum, pauses: mapped, gaps: gaps)
    }

    /// Agent and lead number from the call's two numbers, for a CRM that did not give them: an
    /// internal extension (2–6 digits) is the agent, a longer number (8+ digits, `+` allowed) the
    /// lead. Nothing when the numbers do not look like that.
    public static func parties(_ facts: AMIFacts) -> (agent: String?, lead: String?) {
        let numbers = [facts.caller, facts.connected].compactMap { $0 }
        func digits(_ s: String) -> Int? {
            let body = s.hasPrefix("+") ? s.dropFirst() : Substring(s)
            return !body.isEmpty && body.allSatisfy(\.isASCII) && body.allSatisfy(\.isNumber) ? body.count : nil
        }
        let agent = numbers.first { n in digits(n).map { (2...6).contains($0) } ?? false }
        let lead = numbers.first { n in digits(n).map { $0 >= 8 } ?? false }
        return (agent, lead)
    }
}
