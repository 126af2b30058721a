import ArgumentParser
import CallrecCatalog
import CallrecServer
import Foundation

/// `callrec user …`: the console's local accounts.
struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Console accounts: add, list, change a password, disable.",
        subcommands: [Add.self, UserList.self, Passwd.self, Disable.self])

    /// One line from standard input (`--password-stdin`), or a prompt without echo on a terminal.
    static func readPassword(stdin: Bool, prompt: String = "Password: ") throws -> String {
        if !stdin {
            guard isatty(STDIN_FILENO) == 1 else { throw CommandFailure("give the password with --password-stdin (standard input is not a terminal)") }
            guard let p = getpass(prompt) else { throw CommandFailure("no password given") }
            let first = String(cString: p)
            guard let again = getpass("Again: "), String(cString: again) == first else { throw CommandFailure("the two passwords differ") }
            return first
        }
        guard let line = readLine(strippingNewline: true) else { throw CommandFailure("no password on standard input") }
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }

    static func accounts(_ common: CommonOptions) throws -> ConsoleAccounts {
        let settings = try common.loadSettings()
        return ConsoleAccounts(catalog: try common.loadCatalog(settings))
    }

    static func run(_ work: () async throws -> Void) async throws {
        do { try await work() } catch let e as ConsoleAccounts.Failure { throw CommandFailure(e.description) }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an account.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The user name (letters, digits, . _ - @).") var name: String
        @Option(help: "viewer, compliance or admin (as a bearer token's role).") var role: String
        @Option(help: "The company it is limited to (required for a viewer).") var company: String?
        @Flag(help: "Read the password from standard input (one line).") var passwordStdin = false

        func run() async throws {
            let accounts = try User.accounts(common)
            let password = try User.readPassword(stdin: passwordStdin)
            try await User.run { try await accounts.add(name: name, role: role, company: company, password: password) }
            print("added \(name) (\(role)\(company.map { ", company \($0)" } ?? ""))")
        }
    }

    struct UserList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the accounts.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print JSON.") var json = false

        struct Item: Encodable {
            var name: String
            var role: String
            var company: String?
            var disabled: Bool
            var createdAt: String
            enum CodingKeys: String, CodingKey { case name, role, company, disabled, createdAt = "created_at" }
        }

        func run() async throws {
            let users = try await User.accounts(common).list()
            let items = users.map {
                Item(
                    name: $0.name, role: $0.role, company: $0.company, disabled: $0.isDisabled,
                    createdAt: ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval($0.createdAt))))
            }
            if json { return try printJSON(items) }
            for i in items { print([i.name, i.role, i.company ?? "-", i.disabled ? "disabled" : "enabled"].joined(separator: "\t")) }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "passwd", abstract: "Change an account's password (ends its sessions).")
        @OptionGroup var common: CommonOptions
        @Argument var name: String
        @Flag(help: "Read the password from standard input (one line).") var passwordStdin = false

        func run() async throws {
            let accounts = try User.accounts(common)
            let password = try User.readPassword(stdin: passwordStdin)
            try await User.run { try await accounts.setPassword(name: name, password: password) }
            print("password of \(name) changed")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable an account and end its sessions now.")
        @OptionGroup var common: CommonOptions
        @Argument var name: String

        func run() async throws {
            let accounts = try User.accounts(common)
            try await User.run { try await accounts.disable(name: name) }
            print("disabled \(name)")
        }
    }
}
