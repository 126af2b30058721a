import ArgumentParser
import CallrecCatalog
import CallrecIngest
import CallrecServer
import Foundation

func makeAuthenticator(_ settings: Settings) async throws -> Authenticator {
    let urlSecret = try Secrets.value(.url, data: settings.data)
    let jwtSecret = try Secrets.value(.jwt, data: settings.data)
    return Authenticator(signer: URLSigner(secret: urlSecret), tokens: try await TokenAuthority(secret: jwtSecret))
}

struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a signed URL path (for <audio src>), valid for GET and HEAD until it expires.",
        discussion: "Signed with CALLREC_URL_SECRET, else the secret in <data>/secrets/ (created on first use).")

    @OptionGroup var common: CommonOptions
    @Argument(help: "The path to sign, e.g. /recordings/1732467600.42.opus") var path: String
    @Option(help: "Seconds until it expires (default 3600).") var ttl: Int = 3600

    func validate() throws {
        guard path.hasPrefix("/"), !path.contains("?") else { throw ValidationError("PATH is a URL path like /recordings/1732467600.42.opus, with no query") }
        guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
    }

    func run() async throws {
        let settings = try common.loadSettings()
        do {
            let signer = URLSigner(secret: try Secrets.value(.url, data: settings.data))
            print(signer.sign(path: path, expires: Int(Date().timeIntervalSince1970) + ttl))
        } catch { throw CommandFailure("\(error)") }
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a bearer token (HS256 JWT) for the HTTP API.",
        discussion: "Roles: viewer (needs --company), compliance, admin, recorder (needs --company: pauses and resumes live calls, nothing else). Signed with CALLREC_JWT_SECRET, else the secret in <data>/secrets/.")

    @OptionGroup var common: CommonOptions
    @Option(help: "viewer, compliance, admin or recorder.") var role: Role
    @Option(help: "Limit the token to one company (required for viewer and recorder).") var company: String?
    @Option(help: "The subject (who it is for).") var sub: String = "cli"
    @Option(help: "Seconds until it expires (default 3600).") var ttl: Int = 3600

    func validate() throws {
        if role.needsCompany && (company ?? "").isEmpty { throw ValidationError("a \(role.rawValue) token needs --company") }
        guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
    }

    func run() async throws {
        let settings = try common.loadSettings()
        do {
            let authority = try await TokenAuthority(secret: try Secrets.value(.jwt, data: settings.data))
            print(try await authority.issue(Claims(subject: sub, expires: Date().addingTimeInterval(TimeInterval(ttl)), role: role, company: company)))
        } catch { throw CommandFailure("\(error)") }
    }
}

extension Role: ExpressibleByArgument {}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the audit log: audio accesses, metadata changes, holds, releases, deletions.")

    @OptionGroup var common: CommonOptions
    @Option(help: "From this instant or date (inclusive).") var from: String?
    @Option(help: "To this instant or date (exclusive).") var to: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        let entries: [AuditEntry]
        do {
            entries = try catalog.auditLog(
                from: try from.map { try parseTime($0, zone: settings.timeZone) }, to: try to.map { try parseTime($0, zone: settings.timeZone) })
        } catch { throw CommandFailure("\(error)") }
        if json {
            try printJSON(entries)
            return
        }
        let iso = ISO8601DateFormatter()
        for e in entries {
            print([iso.string(from: Date(timeIntervalSince1970: TimeInterval(e.at))), e.actor, e.role ?? "-", e.company ?? "-", e.action, e.uniqueid ?? "-", e.client ?? "-", e.detail ?? ""].joined(separator: "\t"))
        }
    }
}
