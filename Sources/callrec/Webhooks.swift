import ArgumentParser
import CallrecCatalog
import Foundation

struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show webhook events not delivered yet: pending, and failing with their last error.")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let catalog = try common.loadCatalog(try common.loadSettings())
        let events: [(id: String, type: String, uniqueid: String?, attempts: Int, nextAttemptAt: Int64, lastError: String?)]
        do { events = try catalog.undeliveredEvents() } catch { throw CommandFailure("\(error)") }
        if json {
            try printJSON(events.map { ["id": $0.id, "type": $0.type, "uniqueid": $0.uniqueid ?? "", "attempts": String($0.attempts), "last_error": $0.lastError ?? ""] })
            return
        }
        let failing = events.filter { $0.attempts > 0 }
        print("\(events.count) undelivered, \(failing.count) failing")
        for e in events {
            print([e.id, e.type, e.uniqueid ?? "-", "attempts \(e.attempts)", e.lastError ?? ""].joined(separator: "\t"))
        }
    }
}
