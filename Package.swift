// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "callrec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "callrec", targets: ["callrec"]),
        .library(name: "CallrecMedia", targets: ["CallrecMedia"]),
        .library(name: "CallrecCatalog", targets: ["CallrecCatalog"]),
        .library(name: "CallrecIngest", targets: ["CallrecIngest"]),
        .library(name: "CallrecServer", targets: ["CallrecServer"]),
        .library(name: "CallrecCompliance", targets: ["CallrecCompliance"]),
        .library(name: "CallrecAMI", targets: ["CallrecAMI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // bcrypt for the console's passwords (HummingbirdBcrypt needs only its C bcrypt).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // C libraries from Debian (libsndfile1-dev, libopus-dev, libogg-dev, libopusfile-dev,
        // libsamplerate0-dev). Variadic *_ctl calls are wrapped in each shim.h.
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "COgg", pkgConfig: "ogg", providers: [.apt(["libogg-dev"])]),
        .systemLibrary(name: "COpusFile", pkgConfig: "opusfile", providers: [.apt(["libopusfile-dev"])]),
        .systemLibrary(name: "CSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),

        // Threads, durable file operations, hex and base64url: what every module leans on.
        .target(name: "CallrecSupport"),
        .target(
            name: "CallrecMedia",
            dependencies: [
                "CallrecSupport", "CSndFile", "COpus", "COgg", "COpusFile", "CSampleRate",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "CallrecCatalog",
            dependencies: [
                "CallrecSupport", "CallrecMedia",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for incremental blob I/O (Catalog+Blobs.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "CallrecCompliance",
            dependencies: ["CallrecSupport", "CallrecMedia", "CallrecCatalog", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "CallrecIngest",
            dependencies: [
                "CallrecSupport", "CallrecMedia", "CallrecCatalog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The Asterisk Manager Interface: the connection, the call tracker, PCI pauses.
        .target(
            name: "CallrecAMI",
            dependencies: [
                "CallrecCatalog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "CallrecServer",
            dependencies: [
                "CallrecSupport", "CallrecMedia", "CallrecCatalog", "CallrecIngest", "CallrecCompliance", "CallrecAMI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "callrec",
            dependencies: [
                "CallrecAMI", "CallrecMedia", "CallrecCatalog", "CallrecIngest", "CallrecServer", "CallrecCompliance",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Paths, temporary directories and subprocesses for every test target.
        .target(
            name: "CallrecTestSupport",
            dependencies: ["COpusFile", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            path: "Tests/CallrecTestSupport"),
        // Benchmarks of the catalog and the spool (scripts/bench-catalog runs it in release mode).
        .executableTarget(
            name: "callrec-bench",
            dependencies: [
                "CallrecSupport", "CallrecAMI", "CallrecTestSupport", "CallrecCatalog", "CallrecIngest", "CallrecMedia", "CallrecCompliance",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "CallrecSupportTests", dependencies: ["CallrecSupport"]),
        .testTarget(name: "CallrecAMITests", dependencies: ["CallrecAMI", "CallrecIngest", "CallrecCatalog", "CallrecCompliance", "CallrecTestSupport"]),
        .testTarget(name: "CallrecMediaTests", dependencies: ["CallrecMedia", "COpusFile", "CallrecTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "CallrecComplianceTests", dependencies: ["CallrecCompliance", "CallrecIngest", "CallrecCatalog", "CallrecTestSupport"]),
        .testTarget(name: "CallrecCatalogTests", dependencies: ["CallrecCatalog", "CallrecTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "CallrecServerTests",
            dependencies: [
                "CallrecServer", "CallrecIngest", "CallrecCatalog", "CallrecMedia", "CallrecTestSupport", "CallrecAMI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "CallrecIngestTests", dependencies: ["CallrecIngest", "CallrecCatalog", "CallrecSupport", "CallrecTestSupport"]),
        // End to end: the built `callrec` binary, a real spool, a real server on loopback.
        .testTarget(
            name: "CallrecTests",
            dependencies: [
                "CallrecCatalog", "CallrecMedia", "CallrecTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
