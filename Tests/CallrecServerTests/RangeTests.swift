import Crypto
import CallrecIngest
import Foundation
import CallrecTestSupport
import Testing

@testable import CallrecServer

/// RFC 9110 §14 and §13 logic, case by case.
@Suite(.offThePool)
struct RangeParsingTests {
    @Test func ranges() {
        #expect(ByteRanges.parse(nil, size: 100) == .none)
        #expect(ByteRanges.parse("bytes=0-9", size: 100) == .ranges([0...9]))
        #expect(ByteRanges.parse("bytes=90-", size: 100) == .ranges([90...99]))
        #expect(ByteRanges.parse("bytes=-10", size: 100) == .ranges([90...99]))
        #expect(ByteRanges.parse("bytes=-1000", size: 100) == .ranges([0...99]))
        #expect(ByteRanges.parse("bytes=50-1000", size: 100) == .ranges([50...99]))
        #expect(ByteRanges.parse("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRanges.parse("bytes=-0", size: 100) == .unsatisfiable)
        #expect(ByteRanges.parse("bytes=0-0,-1", size: 100) == .ranges([0...0, 99...99]))
        #expect(ByteRanges.parse("bytes=200-300, 0-1", size: 100) == .ranges([0...1]))
        for bad in ["bytes=", "bytes=a-b", "bytes=5-1", "items=0-1", "bytes=0-1;x", "bytes 0-1", "bytes=--1", "bytes=99999999999999999999-"] {
            #expect(ByteRanges.parse(bad, size: 100) == .none, "\(bad)")
        }
        #expect(ByteRanges.parse("bytes=0-0", size: 0) == .unsatisfiable)
    }

    /// Overlapping or touching ranges are merged (RFC 9110 §14.2): `bytes=0-,0-,…` asked for the
    /// file 16 times over; disjoint ones keep the order asked.
    @Test func overlappingRangesAreCoalesced() {
        let sixteen = "bytes=" + Array(repeating: "0-", count: 16).joined(separator: ",")
        #expect(ByteRanges.parse(sixteen, size: 100) == .ranges([0...99]))
        #expect(ByteRanges.parse("bytes=10-19,15-29,30-39", size: 100) == .ranges([10...39]))
        #expect(ByteRanges.parse("bytes=50-59,-60", size: 100) == .ranges([40...99]))
        #expect(ByteRanges.parse("bytes=50-59,0-9", size: 100) == .ranges([50...59, 0...9]))
    }

    @Test func preconditions() {
        let etag = "\"abc\""
        let lm = Date(timeIntervalSince1970: 1_700_000_000)
        func eval(match: String? = nil, none: String? = nil, since: String? = nil, unmodified: String? = nil, range: String? = nil) -> Preconditions.Outcome {
            Preconditions.evaluate(ifMatch: match, ifNoneMatch: none, ifModifiedSince: since, ifUnmodifiedSince: unmodified, ifRange: range, etag: etag, lastModified: lm)
        }
        #expect(eval() == .proceed(honourRange: true))
        #expect(eval(none: "\"abc\"") == .notModified)
        #expect(eval(none: "\"x\", \"abc\"") == .notModified)
        #expect(eval(none: "*") == .notModified)
        #expect(eval(none: "W/\"abc\"") == .notModified)  // weak comparison for If-None-Match
        #expect(eval(none: "\"x\"") == .proceed(honourRange: true))
        #expect(eval(since: HTTPDate.string(lm)) == .notModified)
        #expect(eval(since: HTTPDate.string(lm.addingTimeInterval(-1))) == .proceed(honourRange: true))
        #expect(eval(none: "\"x\"", since: HTTPDate.string(lm)) == .proceed(honourRange: true))  // If-None-Match wins
        #expect(eval(match: "\"x\"") == .failed)
        #expect(eval(match: "W/\"abc\"") == .failed)  // strong comparison for If-Match
        #expect(eval(match: "\"abc\"") == .proceed(honourRange: true))
        #expect(eval(unmodified: HTTPDate.string(lm.addingTimeInterval(-10))) == .failed)
        #expect(eval(range: "\"abc\"") == .proceed(honourRange: true))
        #expect(eval(range: "W/\"abc\"") == .proceed(honourRange: false))
        #expect(eval(range: "\"other\"") == .proceed(honourRange: false))
        #expect(eval(range: HTTPDate.string(lm)) == .proceed(honourRange: true))
        #expect(eval(range: HTTPDate.string(lm.addingTimeInterval(5))) == .proceed(honourRange: false))
        #expect(HTTPDate.string(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") != nil)
    }
}

@Suite(.offThePool)
struct SignedURLTests {
    /// Every other spelling of a valid signature is refused (base64's spare bits included).
    @Test func onlyTheCanonicalSignature() {
        let signer = URLSigner(secret: "s")
        let exp = Int(Date().timeIntervalSince1970) + 60
        let sig = signer.signature(path: "/recordings/1.1.opus", expires: exp)
        #expect(signer.verify(path: "/recordings/1.1.opus", exp: String(exp), sig: sig, now: Date()))
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789-_" where c != sig.last! {
            #expect(!signer.verify(path: "/recordings/1.1.opus", exp: String(exp), sig: String(sig.dropLast()) + String(c), now: Date()))
        }
        #expect(!signer.verify(path: "/recordings/1.1.opus", exp: "0\(exp)", sig: sig, now: Date()))
        #expect(!signer.verify(path: "/recordings/1.1.opus", exp: String(exp), sig: sig + "=", now: Date()))
        // The contract's recipe, independently: base64url(HMAC-SHA256(secret, path + "\n" + exp)).
        let mac = HMAC<SHA256>.authenticationCode(for: Data("/recordings/1.1.opus\n\(exp)".utf8), using: SymmetricKey(data: Data("s".utf8)))
        let b64 = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        #expect(sig == b64)
    }
}

@Suite(.offThePool)
struct PurgeScheduleTests {
    @Test func nextPurgeTimeInTheLocalZone() throws {
        let sp = TimeZone(identifier: "America/Sao_Paulo")!
        #expect(Settings.clockTime("03:00")! == (3, 0))
        #expect(Settings.clockTime("24:00") == nil && Settings.clockTime("3") == nil && Settings.clockTime("3:5") == nil)
        #expect(throws: SettingsError.self) { try Settings(environment: ["CALLREC_PURGE_AT": "3am"]) }
        #expect(throws: SettingsError.self) { try Settings(environment: ["CALLREC_WEBHOOK_URL": "ftp://x"]) }
        #expect(try Settings(environment: [:]).retentionDays == 90)
        // 2026-11-25T05:00Z is 02:00 in São Paulo: the next 03:00 there is 06:00Z the same day.
        let now = Date(timeIntervalSince1970: 1_764_046_800)
        #expect(PurgeService.next(after: now, at: (3, 0), zone: sp) == Date(timeIntervalSince1970: 1_764_050_400))
        // Just after it: the next day.
        #expect(PurgeService.next(after: Date(timeIntervalSince1970: 1_764_050_401), at: (3, 0), zone: sp) == Date(timeIntervalSince1970: 1_764_050_400 + 86400))
    }
}
