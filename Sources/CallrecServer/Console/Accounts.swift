// The console (pages, sessions, sign-in, SSO) lives inside CallrecServer rather than in a module
// of its own: it must reach the principal, the company scope and the recording service exactly as
// the API does, and those are internal to this module (a separate module would make them public
// API, and the server that registers the console would depend on it in a circle).

import CallrecCatalog
import Foundation
import HummingbirdBcrypt

/// Console accounts: names, roles and companies as bearer tokens have them; passwords hashed with
/// bcrypt (hummingbird-auth's), never stored or compared in clear.
public struct ConsoleAccounts: Sendable {
    let catalog: Catalog
    /// bcrypt's cost: `CALLREC_BCRYPT_COST` (4…31), default 12.
    let cost: UInt8
    let now: @Sendable () -> Date

    public init(catalog: Catalog, cost: UInt8? = nil, now: @escaping @Sendable () -> Date = Date.init) {
        self.catalog = catalog
        self.cost = cost ?? Self.costFromEnvironment()
        self.now = now
    }

    static func costFromEnvironment() -> UInt8 {
        if let s = ProcessInfo.processInfo.environment["CALLREC_BCRYPT_COST"], let n = UInt8(s), (4...31).contains(n) { return n }
        return 12
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ d: String) { description = d }
    }

    /// What a user name may be: 1–64 of letters, digits, `. _ - @`.
    static func validName(_ s: String) -> Bool {
        (1...64).contains(s.count) && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".-_@".unicodeScalars.contains($0)) }
    }

    static func checkPassword(_ p: String) throws {
        guard p.count >= 8 else { throw Failure("a password needs at least 8 characters") }
        // bcrypt reads at most 72 bytes: a longer one would be silently cut.
        guard p.utf8.count <= 72 else { throw Failure("a password is at most 72 bytes (bcrypt reads no more)") }
    }

    public func add(name: String, role: String, company: String?, password: String) async throws {
        guard Self.validName(name) else { throw Failure("a user name is 1–64 of letters, digits, . _ - @") }
        guard let r = Role(rawValue: role), r != .recorder else { throw Failure("role must be viewer, compliance or admin") }
        let company = company.flatMap { $0.isEmpty ? nil : $0 }
        if r == .viewer && company == nil { throw Failure("a viewer needs --company (viewers see one company's recordings)") }
        if let company, company.count > 128 { throw Failure("a company id is 1–128 characters") }
        try Self.checkPassword(password)
        let hash = Bcrypt.hash(password, cost: cost)
        do {
            try await catalog.addUser(UserAccount(name: name, role: r.rawValue, company: company, passwordHash: hash, now: now()))
        } catch let e as AccountError { throw Failure(e.description) }
    }

    public func setPassword(name: String, password: String) async throws {
        try Self.checkPassword(password)
        do { try await catalog.setPasswordHash(name, Bcrypt.hash(password, cost: cost), now: now()) } catch let e as AccountError {
            throw Failure(e.description)
        }
    }

    public func disable(name: String) async throws {
        do { try await catalog.disableUser(name, now: now()) } catch let e as AccountError { throw Failure(e.description) }
    }

    public func list() async throws -> [UserAccount] { try await catalog.users() }

    /// A hash to compare against when the account does not exist, so that a missing account
    /// takes as long to refuse as a wrong password.
    static let decoy = Bcrypt.hash("callrec-decoy-password", cost: 4)

    /// The account when `password` is its password and it is enabled; nil otherwise.
    func verify(name: String, password: String) async throws -> UserAccount? {
        let user = try await catalog.user(name)
        let hash = user?.passwordHash ?? Self.decoy
        let ok = await Task.detached { Bcrypt.verify(password, hash: hash) }.value
        guard ok, let user, !user.isDisabled else { return nil }
        return user
    }
}
