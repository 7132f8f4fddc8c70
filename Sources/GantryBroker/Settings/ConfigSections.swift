import Foundation
import GantryProtocol
import GantrySettings

/// The config file's sections: `cron:` (schedules by name), `queues:` (limits by queue), `subscriptions:` (by name)
/// and `tokens:` (a list),
/// each entry checked as the matching RPC would check it, and tokens from the environment.
enum ConfigSections {
    /// YAML's scalars read as numbers, booleans and strings before anything else, as JSON would spell them.
    static var yamlScalars: [CodingUserInfoKey: Any] { [JSONValue.scalarsFirst: true] }

    /// The `cron:` section as schedules; nil when the file has none (then schedules from files stay as they are).
    static func cronSchedules(_ file: SettingsFile) throws(SettingProblem) -> [CronUpsert.Params]? {
        guard let cron = try file.section("cron", as: [String: CronEntry].self, userInfo: yamlScalars) else { return nil }
        var schedules: [CronUpsert.Params] = []
        for (name, entry) in cron.sorted(by: { $0.key < $1.key }) {
            let params = CronUpsert.Params(
                name: name, cron: entry.cron, type: entry.type, args: entry.args ?? .emptyArray, queue: entry.queue ?? ProtocolDefaults.queue,
                priority: entry.priority ?? ProtocolDefaults.priority, description: entry.description, timezone: entry.timezone ?? "UTC")
            do {
                try params.validate()
                _ = try CronHandlers.parseSchedule(cron: params.cron, timezone: params.timezone)
            } catch {
                throw SettingProblem("The config file's cron schedule \(name) is not valid: \((error as? RPCErrorObject)?.message ?? "\(error)")")
            }
            schedules.append(params)
        }
        return schedules
    }

    /// The `queues:` section as limits; nil when the file has none.
    static func queueLimits(_ file: SettingsFile) throws(SettingProblem) -> [String: QueueLimit]? {
        guard let queues = try file.section("queues", as: [String: QueueEntry].self, userInfo: yamlScalars) else { return nil }
        var limits: [String: QueueLimit] = [:]
        for (queue, entry) in queues {
            let params = QueuesConfigure.Params(queue: queue, concurrency: entry.concurrency, rateLimit: entry.rateLimit)
            do { try params.validate() } catch {
                throw SettingProblem("The config file's limits for queue \(queue) are not valid: \(error.message)")
            }
            limits[queue] = QueueLimit(concurrency: entry.concurrency, rateLimit: entry.rateLimit)
        }
        return limits
    }

    /// The `subscriptions:` section, each entry checked as `subscriptions.upsert` checks it; nil when the file has none.
    static func subscriptions(_ file: SettingsFile) throws(SettingProblem) -> [SubscriptionsUpsert.Params]? {
        guard let entries = try file.section("subscriptions", as: [String: SubscriptionEntry].self, userInfo: yamlScalars) else { return nil }
        var subscriptions: [SubscriptionsUpsert.Params] = []
        for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
            let params = SubscriptionsUpsert.Params(name: name, event: entry.event, filter: entry.filter, target: entry.target)
            do { try params.validate() } catch {
                throw SettingProblem("The config file's subscription \(name) is not valid: \(error.message)")
            }
            subscriptions.append(params)
        }
        return subscriptions
    }

    /// The `packages:` section, each entry checked as `packages.upsert` checks it; nil when the file has none.
    static func packages(_ file: SettingsFile) throws(SettingProblem) -> [PackagesUpsert.Params]? {
        guard let entries = try file.section("packages", as: [String: PackageEntry].self, userInfo: yamlScalars) else { return nil }
        var packages: [PackagesUpsert.Params] = []
        for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
            let params = PackagesUpsert.Params(
                name: name, description: entry.description, steps: entry.steps, config: entry.config ?? [:], triggers: entry.triggers,
                active: entry.active ?? true, queue: entry.queue ?? ProtocolDefaults.queue)
            do {
                let (_, triggers) = try params.checked()
                _ = try PackageHandlers.schedule(of: triggers)
            } catch {
                throw SettingProblem("The config file's package \(name) is not valid: \(error.message)")
            }
            packages.append(params)
        }
        return packages
    }

    /// The `webhooks:` section, each entry checked as `webhooks.upsert` checks it; `secret_env` names an
    /// environment variable holding the secret, so the file need not; nil when the file has none.
    static func webhooks(_ file: SettingsFile, environment: [String: String] = ProcessInfo.processInfo.environment) throws(SettingProblem) -> [WebhooksUpsert.Params]? {
        guard let entries = try file.section("webhooks", as: [String: WebhookEntry].self, userInfo: yamlScalars) else { return nil }
        var webhooks: [WebhooksUpsert.Params] = []
        for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
            guard let secret = entry.secret ?? entry.secretEnv.flatMap({ environment[$0] }) else {
                throw SettingProblem("The config file's webhook \(name) needs secret, or secret_env naming an environment variable that is set.")
            }
            let params = WebhooksUpsert.Params(name: name, url: entry.url, events: entry.events, queues: entry.queues, secret: secret)
            do { try params.validate() } catch {
                throw SettingProblem("The config file's webhook \(name) is not valid: \(error.message)")
            }
            webhooks.append(params)
        }
        return webhooks
    }

    /// Plain tokens from the environment, one per role (for containers whose secrets arrive as variables).
    static let environmentTokens: [(variable: String, role: Role)] = [
        ("GANTRY_ADMIN_TOKEN", .admin), ("GANTRY_WORKER_TOKEN", .worker), ("GANTRY_PRODUCER_TOKEN", .producer),
        ("GANTRY_VIEWER_TOKEN", .viewer),
    ]

    /// The file's `tokens:` and the environment's, each checked; names are unique.
    static func tokens(_ file: SettingsFile, environment: [String: String]) throws(SettingProblem) -> [AccessToken] {
        var tokens: [AccessToken] = []
        for (index, entry) in (try file.section("tokens", as: [TokenEntry].self, userInfo: yamlScalars) ?? []).enumerated() {
            let label = entry.name.map { "\"\($0)\"" } ?? "number \(index + 1)"
            guard let name = entry.name, !name.isEmpty else { throw SettingProblem("The config file's token \(label) needs a name (it names the token in logs).") }
            guard let role = Role(rawValue: entry.role ?? "") else {
                throw SettingProblem("The config file's token \(label) needs a role: producer, worker, viewer or admin.")
            }
            guard let hex = entry.sha256, let digest = AccessToken.parseDigest(hex) else {
                throw SettingProblem("The config file's token \(label) needs sha256: the token's SHA-256 as 64 hex digits (`gantry token new` prints it). The token itself never goes in the file.")
            }
            if role == .viewer && entry.queues != nil {
                throw SettingProblem("The config file's token \(label) is a viewer token limited to queues; viewers see every queue on the dashboard. Drop queues, or give it the role producer.")
            }
            if role == .admin && entry.queues != nil {
                throw SettingProblem("The config file's token \(label) is an admin token limited to queues; admin tokens cover every queue. Give it the role producer or worker, or drop queues.")
            }
            if let queues = entry.queues, queues.isEmpty {
                throw SettingProblem("The config file's token \(label) has an empty queues list; leave queues out for every queue.")
            }
            tokens.append(AccessToken(name: name, digest: digest, role: role, queues: entry.queues.map(Set.init)))
        }
        for (variable, role) in environmentTokens {
            guard let plain = environment[variable], !plain.isEmpty else { continue }
            guard plain.count >= 16 else { throw SettingProblem("\(variable) is shorter than 16 characters; use `gantry token new` for a strong one.") }
            tokens.append(AccessToken(name: variable.lowercased(), plain: plain, role: role))
        }
        var seen: Set<String> = []
        for token in tokens where !seen.insert(token.name).inserted {
            throw SettingProblem("Two tokens are named \"\(token.name)\"; names must be unique (they name tokens in logs).")
        }
        return tokens
    }

    /// One schedule under `cron:`, keyed by its name.
    struct CronEntry: Decodable {
        var cron: String
        var type: String
        var args: JSONValue?
        var queue: String?
        var priority: Int?
        var description: String?
        var timezone: String?
    }

    /// One subscription under `subscriptions:`, keyed by its name.
    struct SubscriptionEntry: Decodable {
        var event: String
        var filter: JSONValue?
        var target: JSONValue
    }

    /// One package under `packages:`, keyed by its name.
    struct PackageEntry: Decodable {
        var description: String?
        var steps: JSONValue
        var config: JSONValue?
        var triggers: JSONValue?
        var active: Bool?
        var queue: String?
    }

    /// One webhook under `webhooks:`, keyed by its name.
    struct WebhookEntry: Decodable {
        var url: String
        var events: [String]
        var queues: [String]?
        var secret: String?
        var secretEnv: String?

        enum CodingKeys: String, CodingKey {
            case url, events, queues, secret
            case secretEnv = "secret_env"
        }
    }

    /// One queue under `queues:`.
    struct QueueEntry: Decodable {
        var concurrency: Int?
        var rateLimit: RateLimit?

        enum CodingKeys: String, CodingKey {
            case concurrency
            case rateLimit = "rate_limit"
        }
    }

    /// One entry of the `tokens:` list.
    struct TokenEntry: Decodable {
        var name: String?
        var sha256: String?
        var role: String?
        var queues: [String]?
    }
}
