import CallrecMedia
import Foundation
import NIOPosix

/// Page indexes of recently played recordings, so that seeking in a `.wav` costs one block's
/// decode, not a scan of the file. Keyed by path and audio SHA-256 (a re-made file is a new key).
/// An index is built on NIO's thread pool: it reads the whole file (8 ms for an hour), which
/// must not hold up an event loop.
actor WavViewCache {
    private var views: [String: WavView] = [:]
    private var order: [String] = []
    let capacity: Int

    init(capacity: Int = 256) { self.capacity = capacity }

    func view(path: String, sha256: String) async throws -> WavView {
        let key = sha256 + ":" + path
        if let v = views[key] { return v }
        let v = try await NIOThreadPool.singleton.runIfActive { try WavView(path: path) }
        if let raced = views[key] { return raced }  // built meanwhile by another request
        views[key] = v
        order.append(key)
        if order.count > capacity { views[order.removeFirst()] = nil }
        return v
    }
}
