import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// What a server answered: status, headers (names lowercased), body.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// One real HTTP request from a test (blocking until the answer): `method` to `url`, with an
/// optional bearer token, headers and body. Throws on a transport error, or when no answer came
/// within `timeout` seconds. The one HTTP client of the tests.
@discardableResult
public func http(
    _ method: String = "GET", _ url: String, token: String? = nil, headers: [String: String] = [:], body: Data? = nil,
    timeout: TimeInterval = 60
) throws -> HTTPAnswer {
    var req = URLRequest(url: URL(string: url)!)
    req.httpMethod = method
    req.timeoutInterval = timeout
    if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
    req.httpBody = body
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var answer: HTTPAnswer?
    nonisolated(unsafe) var failure: (any Error)?
    URLSession.shared.dataTask(with: req) { data, response, error in
        if let error {
            failure = error
        } else {
            let r = response as? HTTPURLResponse
            var fields: [String: String] = [:]
            for (k, v) in r?.allHeaderFields ?? [:] { fields[String(describing: k).lowercased()] = String(describing: v) }
            answer = HTTPAnswer(status: r?.statusCode ?? 0, headers: fields, body: data ?? Data())
        }
        done.signal()
    }.resume()
    done.wait()
    if let failure { throw failure }
    return answer!
}
