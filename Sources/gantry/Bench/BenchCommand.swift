import ArgumentParser
import Foundation
import GantryProtocol

/// `gantry bench`: the load generator behind the README's Performance table.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure a running broker: jobs/s and latency percentiles per scenario.",
        discussion: """
            Scenarios (default: all but backlog, in this order): enqueue (one job per request over --connections
            connections), drain (the enqueued jobs, reserve max 100 + pipelined acks, 8 workers), drain-ids (as many jobs
            enqueued by batch, then drained with one ack of ids per reserve), end-to-end (--connections
            producers and as many workers, one job per request everywhere), wake-up (an idle long-polling worker, jobs
            5 ms apart), batch (enqueue_batch of 1,000), backlog (end to end beside --backlog queued jobs), soak (end to
            end at --soak-rate for --soak-minutes, each minute's rate reported).
            Every run uses queues of its own and leaves the batch and backlog jobs queued: run it against a broker
            you can throw away (scripts/benchmark does). A live progress line goes to stderr.
            """)

    @Option(help: "The broker, as gantry://host:port or host:port (default: GANTRY_URL, else 127.0.0.1:7440).")
    var broker: String?

    @Option(help: "Comma-separated scenarios: enqueue, drain, drain-ids, end-to-end, wake-up, batch, backlog, soak.")
    var scenarios: String = "enqueue,drain,end-to-end,wake-up,batch"

    @Option(help: "Connections for the enqueue and end-to-end scenarios (default 64).")
    var connections: Int = 64

    @Option(help: "Scale every scenario's job count (1 = full size: 100,000 enqueued and drained, 50,000 end to end, 200,000 in batches).")
    var scale: Double = 1

    @Option(help: "Queued jobs for the backlog scenario (default 1,000,000).")
    var backlog: Int = 1_000_000

    @Option(help: "Jobs per second for the soak scenario (default 300).")
    var soakRate: Int = 300

    @Option(help: "Minutes the soak scenario runs (default 30).")
    var soakMinutes: Int = 30

    @Flag(help: "Print the results as JSON instead of a table.")
    var json = false

    func validate() throws {
        let known: Set<String> = ["enqueue", "drain", "drain-ids", "end-to-end", "wake-up", "batch", "backlog", "soak"]
        for name in chosen where !known.contains(name) {
            throw ValidationError("Unknown scenario \(name); choose from \(known.sorted().joined(separator: ", ")).")
        }
        guard connections >= 1, scale > 0, soakRate >= 1, soakMinutes >= 1 else {
            throw ValidationError("--connections, --scale, --soak-rate and --soak-minutes must be positive.")
        }
        if chosen.contains("drain") && !chosen.contains("enqueue") {
            throw ValidationError("drain drains what enqueue stored: give both (enqueue,drain).")
        }
    }

    var chosen: [String] { scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func run() async throws {
        let settings = BenchSettings(
            url: broker ?? ProcessInfo.processInfo.environment["GANTRY_URL"] ?? "127.0.0.1:7440", connections: connections, scale: scale)
        var results: [BenchResult] = []
        let enqueued = settings.jobs(100_000)
        for scenario in chosen {
            let result: BenchResult
            switch scenario {
            case "enqueue": result = try await Scenarios.enqueueOneAtATime(settings, queue: settings.queue("backlog-drain"), total: enqueued)
            case "drain": result = try await Scenarios.drain(settings, queue: settings.queue("backlog-drain"), total: enqueued)
            case "drain-ids":
                let queue = settings.queue("drain-ids")
                try await Scenarios.fill(settings, queue: queue, total: enqueued)
                result = try await Scenarios.drain(settings, queue: queue, total: enqueued, acks: .ids)
            case "end-to-end": result = try await Scenarios.endToEnd(settings, queue: settings.queue("end-to-end"), total: settings.jobs(50_000))
            case "wake-up": result = try await Scenarios.wakeUp(settings, queue: settings.queue("wake-up"), total: settings.jobs(1_000))
            case "batch": result = try await Scenarios.enqueueBatches(settings, queue: settings.queue("batch"), total: settings.jobs(200_000))
            case "soak": result = try await Scenarios.soak(settings, queue: settings.queue("soak"), rate: soakRate, minutes: soakMinutes)
            default: result = try await Scenarios.endToEndBesideBacklog(settings, backlog: backlog, total: settings.jobs(50_000))
            }
            results.append(result)
            if !json { FileHandle.standardError.write(Data("\(Self.row(result))\n".utf8)) }
        }
        if json {
            var encoder = GantryJSON.makeEncoder()
            encoder.prettyPrinted = true
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(Self.table(results), terminator: "")
        }
    }

    static func row(_ result: BenchResult) -> String {
        "\(result.scenario): \(result.jobsPerSecond.map { "\(Int($0)) jobs/s" } ?? "-"), p50 \(format(result.p50Ms)), p99 \(format(result.p99Ms))"
    }

    static func format(_ milliseconds: Double?) -> String {
        milliseconds.map { String(format: "%.2f ms", $0) } ?? "-"
    }

    static func table(_ results: [BenchResult]) -> String {
        var rows = [["SCENARIO", "JOBS", "SECONDS", "JOBS/S", "P50", "P99", "TARGET", "MET"]]
        for result in results {
            rows.append([result.scenario, String(result.jobs), String(format: "%.2f", result.seconds),
                         result.jobsPerSecond.map { String(Int($0)) } ?? "-", format(result.p50Ms), format(result.p99Ms),
                         result.target, result.met.map { $0 ? "yes" : "no" } ?? "-"])
        }
        return Table.render(rows)
    }
}
