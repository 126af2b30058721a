import Foundation
import NIOConcurrencyHelpers

/// Sign-in throttling: failures counted per account and per client address in a sliding window;
/// past the limit every attempt (right password or not) is refused until old failures age out.
/// Kept in memory: one `serve` process answers the sign-ins, and a restart forgetting the counts
/// costs an attacker a restart of our service, which they cannot cause.
final class SignInThrottle: Sendable {
    struct Limits: Sendable {
        var perAccount = 5
        var perAddress = 20
        var window: TimeInterval = 15 * 60

        static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Limits {
            var l = Limits()
            if let n = env["CALLREC_LOGIN_MAX_FAILURES"].flatMap(Int.init), n > 0 { l.perAccount = n }
            if let n = env["CALLREC_LOGIN_MAX_FAILURES_PER_ADDRESS"].flatMap(Int.init), n > 0 { l.perAddress = n }
            if let n = env["CALLREC_LOGIN_WINDOW_SECONDS"].flatMap(Double.init), n > 0 { l.window = n }
            return l
        }
    }

    let limits: Limits
    private let state = NIOLockedValueBox<[String: [Date]]>([:])

    init(limits: Limits = .fromEnvironment()) { self.limits = limits }

    private static func accountKey(_ name: String) -> String { "u:" + name.lowercased() }
    private static func addressKey(_ address: String) -> String { "a:" + address }

    /// Seconds until an attempt is allowed again, or nil when it is allowed now.
    func retryAfter(account: String, address: String, now: Date) -> TimeInterval? {
        state.withLockedValue { s in
            var wait: TimeInterval?
            for (key, limit) in [(Self.accountKey(account), limits.perAccount), (Self.addressKey(address), limits.perAddress)] {
                let recent = (s[key] ?? []).filter { now.timeIntervalSince($0) < limits.window }
                s[key] = recent
                if recent.count >= limit, let oldest = recent.first {
                    wait = max(wait ?? 0, limits.window - now.timeIntervalSince(oldest))
                }
            }
            return wait
        }
    }

    func failed(account: String, address: String, now: Date) {
        state.withLockedValue { s in
            for key in [Self.accountKey(account), Self.addressKey(address)] { s[key, default: []].append(now) }
            if s.count > 100_000 { s = s.filter { !$0.value.isEmpty && now.timeIntervalSince($0.value.last!) < limits.window } }
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    func succeeded(account: String) {
        state.withLockedValue { s in s[Self.accountKey(account)] = nil }
    }
}
