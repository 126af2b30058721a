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
        abstract: "Issue bearer tokens (HS256 JWT) for the HTTP API, and revoke them.",
        discussion: "`callrec token --role …` issues a token (the default subcommand, `issue`); `callrec token revoke` cuts tokens off before their exp; `callrec token revocations` lists the revocations in force.",
        subcommands: [TokenIssue.self, TokenRevoke.self, TokenRevocations.self], defaultSubcommand: TokenIssue.self)
}

struct TokenIssue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Print a bearer token (HS256 JWT) for the HTTP API.",
        discussion: "Roles: viewer (needs --company), compliance, admin, recorder (needs --company: pauses and resumes live calls, nothing else). Signed with CALLREC_JWT_SECRET, else the secret in <data>/secrets/. The token carries a random jti (revoke it alone with `callrec token revoke --jti`) and iat (the moment a `--subject` revocation compares with).")

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
            let now = Date()
            print(try await authority.issue(Claims(
                subject: sub, expires: now.addingTimeInterval(TimeInterval(ttl)), role: role, company: company, id: Claims.newID(), issuedAt: now)))
        } catch { throw CommandFailure("\(error)") }
    }
}

struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke one bearer token (--jti) or every token of a subject issued until now (--subject).",
        discussion: "A running `callrec serve` on the same data directory refuses the tokens within a second (401 `revoked`). --subject also refuses that subject's tokens that carry no iat, and ends the console sessions its CRM opened for it (/console/sso). A --jti revocation is kept until --exp (the token's exp, unix seconds), else for 366 days. Audited.")

    @OptionGroup var common: CommonOptions
    @Option(help: "The jti claim of the token to revoke.") var jti: String?
    @Option(help: "With --jti: the token's exp (unix seconds); the revocation is kept until then.") var exp: Int64?
    @Option(help: "The sub claim whose tokens issued until now are all revoked.") var subject: String?
    @Flag(help: "Print the stored revocation as JSON.") var json = false

    func validate() throws {
        guard (jti == nil) != (subject == nil) else { throw ValidationError("give exactly one of --jti or --subject") }
        if exp != nil && jti == nil { throw ValidationError("--exp goes with --jti") }
        if let exp, exp <= 0 { throw ValidationError("--exp is unix seconds") }
        for v in [jti, subject].compactMap({ $0 }) where v.isEmpty || v.unicodeScalars.count > 256 || v.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError("a jti or subject is 1–256 characters, no control characters")
        }
    }

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        let now = Date()
        let revocation = jti.map { TokenRevocation(jti: $0, exp: exp.map { Date(timeIntervalSince1970: TimeInterval($0)) }, actor: whoAmI, company: nil, now: now) }
            ?? TokenRevocation(subject: subject!, actor: whoAmI, company: nil, now: now)
        let detail = revocation.kind == .jti ? "jti=\(revocation.value)" : "sub=\(revocation.value)"
        let stored: TokenRevocation
        do {
            stored = try catalog.revokeNow(revocation, audit: AuditEntry(at: now, actor: whoAmI, role: "cli", company: nil, action: "token.revoke", uniqueid: nil, detail: detail))
        } catch { throw CommandFailure("\(error)") }
        if json { return try printJSON(stored) }
        let iso = ISO8601DateFormatter()
        switch stored.kind {
        case .jti: print("revoked token \(stored.value) until \(iso.string(from: Date(timeIntervalSince1970: TimeInterval(stored.exp ?? 0))))")
        case .sub: print("revoked every token of \(stored.value) issued until \(iso.string(from: Date(timeIntervalSince1970: TimeInterval(stored.at)))) (and those without iat)")
        }
    }
}

struct TokenRevocations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revocations", abstract: "List the token revocations in force.")

    @OptionGroup var common: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let settings = try common.loadSettings()
        let catalog = try common.loadCatalog(settings)
        let rows: [TokenRevocation]
        do { rows = try catalog.tokenRevocationsNow(now: Date()) } catch { throw CommandFailure("\(error)") }
        if json { return try printJSON(rows) }
        let iso = ISO8601DateFormatter()
        for r in rows {
            print([r.kind.rawValue, r.value, iso.string(from: Date(timeIntervalSince1970: TimeInterval(r.at))), r.exp.map { iso.string(from: Date(timeIntervalSince1970: TimeInterval($0))) } ?? "-", r.actor, r.company ?? "-"].joined(separator: "\t"))
        }
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
