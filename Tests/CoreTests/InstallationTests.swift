import Core
import Foundation
import TestSupport
import XCTest

/// Where gvlt finds its own files: from the executable's path, in an installed layout and in a
/// build folder, never from the current directory.
final class InstallationTests: XCTestCase {
    func make(_ files: [String: Data], executable: [String] = [], in sandbox: Sandbox) throws {
        for (path, data) in files { try sandbox.write(path, data) }
        for path in executable { chmod(sandbox.path(path), 0o755) }
    }

    func testInstalledLayoutIsFoundFromTheExecutable() throws {
        let sandbox = try Sandbox()
        try make(
            [
                "prefix/bin/gvlt": Data(),
                "prefix/lib/gvlt/gvlt-init": Data("\u{7f}ELF gvlt-init version 1.2.3\0rest".utf8),
                "prefix/share/gvlt/plugins.json": Data("{}".utf8),
                // Decoys where a lookup by the current directory would look.
                "gvlt-init": Data(), "plugins.json": Data()
            ],
            executable: ["prefix/bin/gvlt", "prefix/lib/gvlt/gvlt-init", "gvlt-init"], in: sandbox)
        let installation = Installation(executable: sandbox.path("prefix/bin/gvlt"))
        XCTAssertEqual(installation.prefix, sandbox.path("prefix"))
        XCTAssertEqual(
            installation.guestInit(environment: [:]),
            Installation.Found(path: sandbox.path("prefix/lib/gvlt/gvlt-init"), origin: "installed with gvlt"))
        XCTAssertEqual(
            installation.shippedPluginsFile(),
            Installation.Found(path: sandbox.path("prefix/share/gvlt/plugins.json"), origin: "shipped with gvlt"))
        XCTAssertEqual(Installation.guestInitVersion(at: sandbox.path("prefix/lib/gvlt/gvlt-init")), "1.2.3")
        XCTAssertNil(
            Installation.guestInitVersion(at: sandbox.path("gvlt-init")), "an init without the marker has no version")

        // $GVLT_INIT wins over the installed copy, and says so.
        XCTAssertEqual(
            installation.guestInit(environment: ["GVLT_INIT": "/elsewhere/init"]),
            Installation.Found(path: "/elsewhere/init", origin: "$GVLT_INIT"))
        // The plugins.json search path starts with the shipped file, whatever the current directory.
        let paths = PluginsFile.searchPath(environment: ["HOME": sandbox.home], installation: installation)
        XCTAssertEqual(paths.first, sandbox.path("prefix/share/gvlt/plugins.json"))
    }

    func testBuildFolderLayoutsAndTheHintWhenTheInitIsMissing() throws {
        let sandbox = try Sandbox()
        try make(
            [
                ".build/x86_64-unknown-linux-gnu/debug/gvlt": Data(), ".build/gvlt-init": Data(),
                "plugins.json": Data("{}".utf8)
            ],
            executable: [".build/x86_64-unknown-linux-gnu/debug/gvlt", ".build/gvlt-init"], in: sandbox)
        let built = Installation(executable: sandbox.path(".build/x86_64-unknown-linux-gnu/debug/gvlt"))
        XCTAssertTrue(built.isBuildFolder)
        XCTAssertNil(built.prefix)
        XCTAssertEqual(built.guestInit(environment: [:])?.path, sandbox.path(".build/gvlt-init"))
        XCTAssertEqual(built.shippedPluginsFile()?.path, sandbox.path("plugins.json"))

        // An installed gvlt without its init points at the package, not at a script the user lacks.
        try make(["usr/bin/gvlt": Data()], executable: ["usr/bin/gvlt"], in: sandbox)
        let bare = Installation(executable: sandbox.path("usr/bin/gvlt"))
        XCTAssertNil(bare.guestInit(environment: [:]))
        XCTAssertNil(bare.shippedPluginsFile())
        XCTAssertTrue(bare.guestInitHint.contains(sandbox.path("usr/lib/gvlt/gvlt-init")), bare.guestInitHint)
        XCTAssertFalse(bare.guestInitHint.contains("scripts/build-init"), bare.guestInitHint)
        XCTAssertTrue(built.guestInitHint.contains("scripts/build-init"), built.guestInitHint)
    }

    func testVersionComesFromTheManifest() throws {
        let manifest = try String(
            contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().path + "/Package.swift", encoding: .utf8)
        XCTAssertTrue(manifest.contains("let gvltVersion = \"\(Installation.version)\""), Installation.version)
        XCTAssertEqual(Installation.versionLine, "gvlt \(Installation.version) (commit \(Installation.sourceCommit))")
    }

    func testDebianRelationshipsFollowTheFeatures() {
        let features = [
            HostFeature(
                "a", .required,
                tools: [
                    [
                        HostTool("tar2sqfs", apt: "squashfs-tools-ng", purpose: ""),
                        HostTool("mksquashfs", apt: "squashfs-tools", purpose: "")
                    ],
                    [HostTool("mkfs.ext4", apt: "e2fsprogs", purpose: "")],
                    [HostTool("debugfs", apt: "e2fsprogs", purpose: "")],
                    [HostTool("apt-get", apt: "apt", purpose: "")]
                ]),
            HostFeature("b", .optional, tools: [[.podman, .buildah], [.skopeo]]),
            HostFeature("c", .required, tools: [[HostTool("mkfs.ext4", apt: "e2fsprogs", purpose: "")]])
        ]
        XCTAssertEqual(
            HostFeature.debianRelationship(features, need: .required, excluding: ["apt"]),
            "squashfs-tools-ng | squashfs-tools, e2fsprogs")
        XCTAssertEqual(HostFeature.debianRelationship(features, need: .optional), "podman | buildah, skopeo")
    }

    func testADataFileRequirementIsFoundByItsPath() throws {
        let sandbox = try Sandbox()
        try sandbox.write("mbr.bin", Data([0]))
        XCTAssertEqual(
            HostTool(sandbox.path("mbr.bin"), apt: "syslinux-common", purpose: "").locate(environment: ["PATH": ""]),
            sandbox.path("mbr.bin"))
        XCTAssertNil(HostTool(sandbox.path("absent.bin"), apt: "syslinux-common", purpose: "").locate())
    }
}
