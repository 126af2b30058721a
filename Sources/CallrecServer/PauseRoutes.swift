import CallrecAMI
import CallrecCatalog
import CallrecIngest
import Foundation
import Hummingbird

/// `POST /recordings/<uniqueid>/pause` and `/resume` (roles recorder and admin, company-scoped):
/// the PCI pause of a call being recorded now, through AMI's `MixMonitorMute`. 200 only once
/// Asterisk confirmed it (and the pause is stored); 503 `ami_unavailable` when it could not be
/// asked or did not confirm; 404 for a call not live or not visible to the token.
struct PauseRoutes: Sendable {
    let pauses: PauseService?
    let service: RecordingService
    let auth: Authenticator
    let naming: SpoolNaming?

    func register(on router: Router<CallrecContext>) {
        let group = router.group().add(middleware: Authenticate(auth, roles: [.recorder, .admin]))
        group.post("/recordings/:id/pause") { request, context in try await self.act(request, context, pause: true) }
        group.post("/recordings/:id/resume") { request, context in try await self.act(request, context, pause: false) }
    }

    func act(_ request: Request, _ context: CallrecContext, pause: Bool) async throws -> Response {
        let principal = try context.who
        let id = try RecordingRoutes.uniqueid(context.pathParameter("id"))
        guard let pauses else {
            throw APIError(.serviceUnavailable, "ami_unavailable", "callrec has no AMI connection (CALLREC_AMI is not set): the call is not paused")
        }
        guard let call = pauses.tracker.live(id), principal.scope.allows(try await company(of: call)) else { throw Self.notLive(id) }
        do {
            if pause {
                let row = try await pauses.pause(id, by: principal.actor)
                service.audit.record(service.entry(principal, "pause", id, client: context.client))
                return try JSONResponse.make(Answer(uniqueid: id, paused: true, pause: Answer.Pause(row)))
            }
            let row = try await pauses.resume(id, by: principal.actor)
            service.audit.record(service.entry(principal, "resume", id, client: context.client))
            return try JSONResponse.make(Answer(uniqueid: id, paused: false, pause: row.map(Answer.Pause.init)))
        } catch PauseError.notLive {
            throw Self.notLive(id)
        } catch PauseError.unavailable(let why) {
            throw APIError(.serviceUnavailable, "ami_unavailable", "\(why): the call is \(pause ? "not paused" : "maybe still paused")")
        }
    }

    static func notLive(_ id: String) -> APIError { APIError(.notFound, "not_found", "no call \(id) is being recorded now") }

    /// The call's company: what the CRM registered (`PUT …/metadata`), else what the recording's
    /// file name says under `CALLREC_SPOOL_PATTERN` (MIXMONITOR_FILENAME, read from its end).
    func company(of call: TrackedCall) async throws -> String? {
        if let m = try await service.catalog.pendingMetadata(call.uniqueid), let c = m.company { return c }
        if let row = try await service.catalog.find(call.uniqueid) { return row.company }
        return Self.fileMetadata(call, naming: naming)?.company
    }

    /// What MIXMONITOR_FILENAME says under `CALLREC_SPOOL_PATTERN` (read from its end: the
    /// pattern is relative to the spool, the file name absolute).
    static func fileMetadata(_ call: TrackedCall, naming: SpoolNaming?) -> Metadata? {
        guard let naming, let file = call.file else { return nil }
        let parts = file.split(separator: "/").map(String.init)
        for k in stride(from: min(parts.count, 8), through: 1, by: -1) {
            if let n = naming.parse(parts.suffix(k).joined(separator: "/")), n.uniqueid == call.uniqueid { return n.metadata }
        }
        return nil
    }

    struct Answer: Encodable {
        struct Pause: Encodable {
            var by: String?
            var requestedAt: String?
            var startedAt: String
            var endedAt: String?
            var endedBy: String?
            init(_ p: PauseRow) {
                by = p.by
                requestedAt = p.requestedAt.map(AMIFacts.iso)
                startedAt = AMIFacts.iso(p.startAt)
                endedAt = p.endAt.map(AMIFacts.iso)
                endedBy = p.endBy
            }
            enum CodingKeys: String, CodingKey {
                case by, requestedAt = "requested_at", startedAt = "started_at", endedAt = "ended_at", endedBy = "ended_by"
            }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(by, forKey: .by)
                try c.encode(requestedAt, forKey: .requestedAt)
                try c.encode(startedAt, forKey: .startedAt)
                try c.encode(endedAt, forKey: .endedAt)
                try c.encode(endedBy, forKey: .endedBy)
            }
        }
        var uniqueid: String
        var paused: Bool
        var pause: Pause?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(uniqueid, forKey: .uniqueid)
            try c.encode(paused, forKey: .paused)
            try c.encode(pause, forKey: .pause)
        }
        enum CodingKeys: String, CodingKey { case uniqueid, paused, pause }
    }
}
