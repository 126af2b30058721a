import NIOPosix

/// Catalog work that may wait: a write waits for SQLite's write lock (up to the 10 s busy timeout,
/// when the CLI or an ingest holds it) and for an fsync. In `serve`, tasks run on NIO's event
/// loops, so such work runs on NIO's blocking pool instead, and the loop keeps serving.
func offLoop<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}
