import ArgumentParser
import Foundation
import GantryBroker
import GantrySettings

/// What `gantryd serve` and `gantryd migrate` are told: a YAML file, and the settings of
/// `GantrydSettings.table` as flags (each also an environment variable and a file key), collected here and
/// read there.
struct CommonOptions: ParsableArguments {
    @Option(help: "A YAML file of settings: the keys are the flags' names with underscores (listen, max_line_bytes, …), plus cron: (schedules by name), queues: (limits by queue) and tokens: (a list of name, sha256, role, queues).")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    /// Flags over environment over file over defaults, every value checked.
    func resolve() throws -> GantrydSettings {
        do {
            return try GantrydSettings.resolve(flags: settings, configFile: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The settings for `--help`, generated from the one table.
    static let settingsHelp = """
        Settings: each a flag, an environment variable (in brackets) and a config file key (the flag's name with underscores); \
        flags win over the environment, which wins over the file):

        \(GantrydSettings.table.helpText(defaults: GantrydSettings()))
        """
}
