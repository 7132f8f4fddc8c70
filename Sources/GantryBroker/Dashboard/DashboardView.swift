import Foundation
import GantryProtocol
import Hummingbird
import Mustache

/// Renders the dashboard's pages: the templates (`Templates/`, compiled into the binary) inside one frame, with
/// the navigation, the signed-in user, the CSRF token every form carries, and a notice from the last action.
enum DashboardView {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in DashboardTemplates.all {
            do { try library.register(text, named: name) } catch {
                preconditionFailure("the dashboard template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    static func render(_ template: String, _ model: [String: Any]) -> String {
        library.render(pruned(model) ?? [:], withTemplate: template) ?? "template \(template) is missing"
    }

    /// Mustache takes every present value as true, an empty string and a nil inside `Any` too (and prints the
    /// nil as "nil"), so what is empty is left out: `{{#lastJobID}}…{{/lastJobID}}` then shows only for a job.
    static func pruned(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first?.value else { return nil }
            return pruned(wrapped)
        }
        switch value {
        case let text as String: return text.isEmpty ? nil : text
        case let object as [String: Any]: return object.compactMapValues(pruned)
        case let list as [[String: Any]]: return list.map { $0.compactMapValues(pruned) }
        case let list as [Any]: return list.compactMap(pruned)
        default: return value
        }
    }

    static let sections: [(path: String, title: String)] = [
        ("/", "Overview"), ("/jobs", "Jobs"), ("/queues", "Queues"), ("/workers", "Workers"), ("/cron", "Cron"),
        ("/operations", "Operations"), ("/events", "Events"), ("/packages", "Packages"), ("/types", "Job types"), ("/audit", "Audit"),
    ]

    /// A whole page. `section` is the navigation entry to mark; `model` is what the page's template reads.
    static func page(_ template: String, title: String, section: String, user: DashboardUser, query: FormFields,
                     model: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        var context = model
        context["title"] = title
        context["nav"] = sections.map { ["path": $0.path, "title": $0.title, "active": $0.path == section] as [String: Any] }
        context["user"] = ["name": user.name, "role": user.role.rawValue, "open": user.isOpen, "signedIn": !user.isOpen] as [String: Any]
        context["mayAct"] = user.mayAct
        context["csrf"] = user.csrf
        context["notice"] = query["notice"]
        context["problem"] = (model["problem"] as? String) ?? query["problem"]
        let html = render(template, context)
        var response = Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
        response.headers[.cacheControl] = "no-store"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        response.headers[.init("Content-Security-Policy")!] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'"
        return response
    }

    static func plain(_ text: String, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    /// After an action: back to a page, with a notice (or a problem) to show there.
    static func redirect(_ path: String, notice: String? = nil, problem: String? = nil) -> Response {
        var target = path
        if let notice { target += (target.contains("?") ? "&" : "?") + "notice=" + FormFields.encode(notice) }
        if let problem { target += (target.contains("?") ? "&" : "?") + "problem=" + FormFields.encode(problem) }
        return Response(status: .seeOther, headers: [.location: target])
    }

    // MARK: formatting

    static func timestamp(_ date: Date?) -> String {
        guard let date else { return "" }
        var text = GantryJSON.formatTimestamp(date)
        text = text.replacingOccurrences(of: "T", with: " ")
        if let dot = text.firstIndex(of: ".") { text = String(text[..<dot]) + " UTC" }
        return text.hasSuffix("Z") ? String(text.dropLast()) + " UTC" : text
    }

    static func ago(_ date: Date?, now: Date = Date()) -> String {
        guard let date else { return "" }
        let seconds = now.timeIntervalSince(date)
        return seconds >= 0 ? duration(seconds) + " ago" : "in " + duration(-seconds)
    }

    static func duration(_ seconds: Double) -> String {
        switch seconds {
        case ..<1: return "\(Int((seconds * 1000).rounded())) ms"
        case ..<60: return String(format: "%.1f s", seconds)
        case ..<3600: return "\(Int(seconds / 60)) min \(Int(seconds.truncatingRemainder(dividingBy: 60))) s"
        case ..<86400: return "\(Int(seconds / 3600)) h \(Int(seconds.truncatingRemainder(dividingBy: 3600) / 60)) min"
        default: return "\(Int(seconds / 86400)) d \(Int(seconds.truncatingRemainder(dividingBy: 86400) / 3600)) h"
        }
    }

    static func pretty(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        return (try? JSONWriter.string(value, prettyPrinted: true)) ?? ""
    }

    static func compact(_ value: JSONValue?, limit: Int = 120) -> String {
        guard let value, let text = try? JSONWriter.string(value) else { return "" }
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }
}
