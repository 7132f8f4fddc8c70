// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// The broker's targets: a nonisolated async function runs on its caller's executor instead of hopping to the
// global one on every call. gantryd runs Swift concurrency on NIO's event loops, which run each job as the loop's
// serial executor, so without this every call into a nonisolated async function was a re-enqueue (about 40 per
// `jobs.get`, measured by callgrind).
let brokerSettings = strictSettings + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "Gantry",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "GantryProtocol", targets: ["GantryProtocol"]),
        .library(name: "GantryBroker", targets: ["GantryBroker"]),
        .library(name: "GantryTesting", targets: ["GantryTesting"]),
        .library(name: "GantryClient", targets: ["GantryClient"]),
        .executable(name: "gantryd", targets: ["gantryd"]),
        .executable(name: "gantry-worker", targets: ["gantry-worker"]),
        .executable(name: "gantry", targets: ["gantry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        // Both already come with postgres-nio; named here because Gantry uses them itself (tokens, TLS).
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Webhook deliveries: HTTP/1.1 and TLS, redirects, timeouts and connection pooling done right.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Jobs carry W3C trace context from the enqueue to the worker's span, through any tracer the app uses.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
    ],
    targets: [
        // Wire types shared by broker and clients: Foundation, and ordered dictionaries for JSON objects.
        .target(
            name: "GantryProtocol",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")],
            swiftSettings: brokerSettings
        ),
        // A program's settings declared once: flag, environment variable, YAML key, default and check.
        .target(
            name: "GantrySettings",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        // Starting, watching, signalling and reaping child processes: the one way Gantry runs programs.
        .target(name: "CSpawnExtras"),
        // libpq, for the statements on every request: run in pipeline mode by a thread per connection.
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ", providers: [.apt(["libpq-dev"])]),
        .target(name: "ChildProcesses", dependencies: ["CSpawnExtras"], swiftSettings: strictSettings),
        .target(
            name: "GantryBroker",
            dependencies: [
                "ChildProcesses",
                "CLibPQ",
                "GantryProtocol",
                "GantrySettings",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: brokerSettings
        ),
        .executableTarget(
            name: "gantryd",
            dependencies: [
                "GantryBroker",
                "GantryProtocol",
                "GantrySettings",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: brokerSettings
        ),
        // The Swift client and the Worker runtime; what apps and worker fleets link.
        .target(
            name: "GantryClient",
            dependencies: [
                "GantryProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "gantry-worker",
            dependencies: [
                "ChildProcesses",
                "GantryClient",
                "GantryProtocol",
                "GantrySettings",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        // The operator CLI.
        .executableTarget(
            name: "gantry",
            dependencies: [
                "GantryClient",
                "GantryProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Benchmarks: executables that measure a running broker (numbers go in the README and issue notes).
        .executableTarget(
            name: "WorkerThroughput",
            dependencies: ["GantryClient", "GantryProtocol"],
            path: "Benchmarks/WorkerThroughput",
            swiftSettings: strictSettings
        ),
        // A libFuzzer target over the line reader and params decoding (scripts/fuzz.sh builds it with
        // -sanitize=fuzzer); built plainly, it replays a corpus.
        .target(name: "CLibFuzzer"),
        // The checks each input to the line reader must pass, shared by the fuzz target and the seeded tests.
        .target(name: "LineReaderChecks", dependencies: ["GantryProtocol"], swiftSettings: strictSettings),
        .executableTarget(
            name: "gantry-fuzz-lines",
            dependencies: ["CLibFuzzer", "LineReaderChecks"],
            path: "Fuzz/LineReader",
            exclude: ["seeds", "json.dict"],
            swiftSettings: strictSettings
        ),
        // A real broker and a throwaway Postgres for tests, ours and (later) the clients'.
        .target(
            name: "GantryTesting",
            dependencies: [
                "ChildProcesses",
                "GantryBroker",
                "GantryProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "GantryProtocolTests", dependencies: ["GantryProtocol", "GantryTesting", "LineReaderChecks"], swiftSettings: strictSettings),
        .testTarget(name: "GantryBrokerTests", dependencies: ["GantryBroker", "GantryProtocol", "GantrySettings", "GantryTesting", "gantry-worker"], swiftSettings: strictSettings),
        .testTarget(name: "ChildProcessTests", dependencies: ["ChildProcesses", "GantryTesting"], swiftSettings: strictSettings),
        .testTarget(
            name: "StoreTests",
            dependencies: ["GantryBroker", "GantryProtocol", "GantryTesting",
                           .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ClientTests",
            dependencies: ["ChildProcesses", "GantryBroker", "GantryClient", "GantryProtocol", "GantryTesting", "gantryd", "gantry-worker"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["ChildProcesses", "GantryBroker", "GantryProtocol", "GantryTesting", "gantryd", "gantry"],
            swiftSettings: strictSettings
        ),
    ]
)
