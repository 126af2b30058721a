import CallrecCatalog
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// HTML escaping: every value that reaches a page goes through this.
func esc(_ s: String?) -> String {
    guard let s else { return "" }
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// The console's pages: server-rendered HTML in a shared frame; behaviour in `/console/assets/console.js`.
struct ConsolePage {
    let lang: Lang
    let zone: TimeZone
    let user: ConsoleUser?
    /// The request's path and query, for the language switch.
    let here: String
    var setLangCookie = false

    func t(_ key: String) -> String { esc(lang.t(key)) }

    /// Strict CSP: no inline script, nothing from elsewhere.
    static let csp =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
        + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func headers(html: Bool = true) -> HTTPFields {
        var h: HTTPFields = [
            .contentSecurityPolicy: csp, .cacheControl: "no-store", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "same-origin", HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
        if html { h[.contentType] = "text/html; charset=utf-8" }
        return h
    }

    var langSwitchHref: String {
        var parts = here.split(separator: "?", maxSplits: 1).map(String.init)
        let path = parts.removeFirst()
        var query = parts.first.map { Form.parse($0) } ?? [:]
        query["lang"] = lang.other.rawValue
        let q = query.sorted { $0.key < $1.key }.map { "\(Form.encode($0.key))=\(Form.encode($0.value))" }.joined(separator: "&")
        return path + "?" + q
    }

    func response(_ title: String, _ body: String, status: HTTPResponse.Status = .ok, active: String = "") -> Response {
        var nav = ""
        if let user {
            let canComply = user.role == .compliance || user.role == .admin
            func link(_ id: String, _ href: String, _ key: String) -> String {
                "<a data-testid=\"nav-\(id)\" href=\"\(href)\"\(active == id ? " aria-current=\"page\"" : "")>\(t(key))</a>"
            }
            nav = "<nav>" + link("search", "/", "search") + (canComply ? link("exports", "/exports", "exports") + link("audit", "/audit", "audit") : "")
                + link("retention", "/console/retention", "retention")
                + (canComply && user.company == nil ? link("quarantine", "/console/quarantine", "quarantine") : "")
                + (user.role == .admin ? link("erasure", "/console/erasure", "erasure") : "")
                + "</nav>"
            nav += """
                <div class="who"><span class="tz" title="\(t("timezone"))">\(t("timezone")): \(esc(zone.identifier))</span>
                <span class="user">\(esc(user.name)) · \(esc(user.role.rawValue))\(user.company.map { " · " + esc($0) } ?? "")</span>
                <a data-testid="locale-switch" hreflang="\(lang.other.rawValue)" href="\(esc(langSwitchHref))">\(lang == .en ? "Português" : "English")</a>
                <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="\(esc(user.csrf))">
                <button data-testid="logout" type="submit">\(t("signout"))</button></form></div>
                """
        } else {
            nav = "<div class=\"who\"><a data-testid=\"locale-switch\" hreflang=\"\(lang.other.rawValue)\" href=\"\(esc(langSwitchHref))\">\(lang == .en ? "Português" : "English")</a></div>"
        }
        let html = """
            <!doctype html>
            <html lang="\(lang.rawValue)">
            <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(esc(title)) · callrec</title>
            <link rel="stylesheet" href="/console/assets/console.css">
            <script type="module" src="/console/assets/console.js"></script>
            </head>
            <body data-lang="\(lang.rawValue)" data-tz="\(esc(zone.identifier))" data-csrf="\(esc(user?.csrf))">
            <header><a class="brand" href="/">callrec</a>\(nav)</header>
            <main>
            \(body)
            </main>
            </body></html>
            """
        var headers = Self.headers()
        if setLangCookie { headers[.setCookie] = "\(Lang.cookie)=\(lang.rawValue); Path=/; SameSite=Lax; Max-Age=31536000" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// `YYYY-MM-DD` of a day in the zone.
    func day(_ date: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = zone
        let c = cal.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    func dateTime(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = lang.locale
        f.timeZone = zone
        f.dateStyle = .short
        f.timeStyle = .medium
        return f.string(from: date)
    }

    func number(_ x: Double, digits: Int = 1) -> String {
        let f = NumberFormatter()
        f.locale = lang.locale
        f.numberStyle = .decimal
        f.minimumFractionDigits = digits
        f.maximumFractionDigits = digits
        return f.string(from: NSNumber(value: x)) ?? String(x)
    }

    static func clock(ms: Int) -> String {
        let s = ms / 1000
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
