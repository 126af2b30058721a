import CallrecTestSupport
import Foundation

/// Small helpers of the Promised* suites. The rest they share with every suite, from
/// CallrecTestSupport (`callrec`, `CallrecProcess`, `eventuallyAsync`, `http`, `WebhookReceiver`)
/// and `ServeProcess`.
enum Promised {
    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    static func sha256(ofFile path: String) throws -> String {
        let r = try run("sha256sum", [path])
        return String(String(decoding: r.out, as: UTF8.self).prefix(64))
    }
}
