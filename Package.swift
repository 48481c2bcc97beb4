// swift-tools-version:6.0
import PackageDescription

// The release number, the one place it is written: `gvlt --version`, gvlt-init (scripts/build-init)
// and the packages (scripts/package) all read it from here.
let gvltVersion = "0.1.0"
// The source commit is not known to the manifest; scripts/install and scripts/package pass it.
let sourceCommit = Context.environment["GVLT_SOURCE_COMMIT"].flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"

let package = Package(
    name: "gvlt",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gvlt", targets: ["gvlt"]),
        // The fuzz targets as one static library, which scripts/fuzz links into libFuzzer drivers.
        .library(name: "GvltFuzzTargets", type: .static, targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // Registry pulls and task downloads (docs/architecture.md says why this client).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
    ],
    targets: [
        // System libraries: the C libraries the product builds on, found through pkg-config.
        .systemLibrary(
            name: "CArchive", path: "Sources/SystemLibraries/CArchive",
            pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(
            name: "CElf", path: "Sources/SystemLibraries/CElf",
            pkgConfig: "libelf", providers: [.apt(["libelf-dev"])]),
        .systemLibrary(
            name: "CFFI", path: "Sources/SystemLibraries/CFFI",
            pkgConfig: "libffi", providers: [.apt(["libffi-dev"])]),

        .systemLibrary(
            name: "CLibSquashfs", path: "Sources/SystemLibraries/CLibSquashfs",
            pkgConfig: "libsquashfs1", providers: [.apt(["libsquashfs-dev"])]),
        // The read-only SquashFS view gvlt inspect uses, over libsquashfs (see its header).
        .target(name: "CSquashfs", dependencies: ["CLibSquashfs"], path: "Sources/SystemLibraries/CSquashfs"),

        // glibc declarations Swift's Glibc module leaves out; header only.
        .systemLibrary(name: "CHost", path: "Sources/SystemLibraries/CHost"),

        // The version and source commit as C strings: Swift's -D defines flags, not values.
        .target(
            name: "CBuildInfo", path: "Sources/SystemLibraries/CBuildInfo",
            cSettings: [.define("GVLT_VERSION", to: "\"\(gvltVersion)\""),
                        .define("GVLT_SOURCE_COMMIT", to: "\"\(sourceCommit)\"")]),

        // arc4random for glibc 2.35 hosts: the static Swift runtime wants glibc 2.36's.
        .target(name: "CGlibcCompat", path: "Sources/SystemLibraries/CGlibcCompat"),

        .target(
            name: "Core",
            dependencies: [
                "CArchive", "CElf", "CFFI", "CHost", "CBuildInfo", "CGlibcCompat",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/Core", exclude: ["Network"],
            swiftSettings: [.swiftLanguageMode(.v5)]),

        // Core's network side: registry pulls and task downloads over async-http-client. A module of
        // its own so that the HTTP stack (SwiftNIO, BoringSSL) is built only where it is used: the
        // fuzz drivers and the benchmarks of local sources do without it.
        .target(
            name: "CoreNetwork",
            dependencies: [
                "Core",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Core/Network",
            swiftSettings: [.swiftLanguageMode(.v5)]),

        // Backends and accelerators depend on Core only, never on each other.
        .target(name: "Nanos", dependencies: ["Core", .product(name: "Crypto", package: "swift-crypto")], path: "Sources/Backends/Nanos",
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // GuestInit is the guest's PID 1, built separately with Embedded Swift (scripts/build-init).
        .target(name: "LinuxVM", dependencies: ["Core", "CSquashfs", .product(name: "Crypto", package: "swift-crypto")], path: "Sources/Backends/LinuxVM", exclude: ["GuestInit"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "NvidiaGPU", dependencies: ["Core"], path: "Sources/Backends/NvidiaGPU",
                swiftSettings: [.swiftLanguageMode(.v5)]),

        .executableTarget(
            name: "gvlt",
            dependencies: [
                "Core", "CoreNetwork", "Nanos", "LinuxVM", "NvidiaGPU",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/CLI",
            swiftSettings: [.swiftLanguageMode(.v5)]),

        // The flatten benchmark (bench/README.md); run with `swift run -c release gvlt-bench`.
        .executableTarget(
            name: "gvlt-bench",
            dependencies: ["Core"],
            path: "bench/Sources",
            swiftSettings: [.swiftLanguageMode(.v5)]),

        // The Nanos TFS writer benchmark (bench/README.md); run with `swift run -c release gvlt-bench-tfs`.
        .executableTarget(
            name: "gvlt-bench-tfs",
            dependencies: ["Core", "Nanos"],
            path: "bench/TFS",
            swiftSettings: [.swiftLanguageMode(.v5)]),

        // Raw bytes into each reader of untrusted input (scripts/fuzz, Tests/Fuzz/README.md).
        .target(
            name: "FuzzTargets", dependencies: ["Core", "Nanos", "LinuxVM"], path: "Tests/Fuzz/Targets",
            swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(
            name: "TestSupport",
            dependencies: ["Core", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/TestSupport",
            swiftSettings: [.swiftLanguageMode(.v5)]),
        // Unit tests: no QEMU, no podman, no apt; `scripts/test --fast` runs these alone.
        .testTarget(
            name: "CoreTests",
            dependencies: ["Core", "CoreNetwork", "TestSupport"],
            path: "Tests/CoreTests",
            swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(
            name: "LinuxVMTests",
            dependencies: ["Core", "LinuxVM", "TestSupport"],
            path: "Tests/LinuxVMTests",
            swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(
            name: "NanosTests",
            dependencies: ["Core", "Nanos", "TestSupport"],
            path: "Tests/NanosTests",
            swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(
            name: "NvidiaGPUTests",
            dependencies: ["Core", "NvidiaGPU"],
            path: "Tests/NvidiaGPUTests",
            swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(
            name: "CLITests",
            dependencies: ["gvlt", "Core", "LinuxVM", "Nanos", "NvidiaGPU"],
            path: "Tests/CLITests",
            swiftSettings: [.swiftLanguageMode(.v5)]),

        // Integration tests: they run the gvlt binary, boot images in QEMU, build with podman and
        // fetch kernels with apt.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["gvlt", "Core", "Nanos", "LinuxVM", "TestSupport"],
            path: "Tests/IntegrationTests",
            swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
