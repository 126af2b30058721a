// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "callrec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "callrec", targets: ["callrec"]),
        .library(name: "CallrecMedia", targets: ["CallrecMedia"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        // C libraries from Debian (libsndfile1-dev, libopus-dev, libogg-dev, libopusfile-dev,
        // libsamplerate0-dev). Variadic *_ctl calls are wrapped in each shim.h.
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "COgg", pkgConfig: "ogg", providers: [.apt(["libogg-dev"])]),
        .systemLibrary(name: "COpusFile", pkgConfig: "opusfile", providers: [.apt(["libopusfile-dev"])]),
        .systemLibrary(name: "CSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),

        .target(
            name: "CallrecMedia",
            dependencies: [
                "CSndFile", "COpus", "COgg", "COpusFile", "CSampleRate",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "callrec",
            dependencies: [
                "CallrecMedia",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CallrecMediaTests", dependencies: ["CallrecMedia", "COpusFile"]),
    ]
)
