import Core
import Foundation
@testable import LinuxVM
import XCTest

/// Debian kernels from apt (real downloads, cached across tests and runs in one directory), checked
/// against the runtime's requirements.
final class KernelTests: XCTestCase {
    static let cache = CacheDirectory(root: NSTemporaryDirectory() + "gvlt-test-kernel-cache")

    func testDebianKernelIsFetchedIntoTheCacheAndMeetsTheRuntime() throws {
        let bundle = try DebianKernelProvider(cache: Self.cache).bundle()
        XCTAssertTrue(bundle.origin.hasPrefix("debian linux-image-"), bundle.origin)
        XCTAssertEqual(try BzImage.release(of: bundle.image), bundle.release)
        XCTAssertTrue(bundle.release.hasSuffix("-amd64"))
        let modules = try XCTUnwrap(try bundle.moduleTree())
        XCTAssertTrue(modules.builtIn.contains("ext4") == false)

        for root in [RootFilesystem.squashfs(.zstd), .squashfs(.gzip), .ext4] {
            let order = try KernelValidator.validate(bundle.config, modules: modules, root: root, kernel: bundle.origin)
            let wanted =
                ["virtio_pci", "virtio_scsi", "sd_mod", "virtio_blk", "9pnet_virtio", "9p"]
                + (root == .ext4 ? ["ext4"] : ["squashfs"])
            for module in wanted { XCTAssertTrue(order.contains(module), "\(module) missing from \(order)") }
            // Every module comes after everything it depends on.
            for (index, module) in order.enumerated() {
                for dependency in try ModuleInfo(module: modules.path(of: module)!).dependencies.map(
                    ModuleTree.canonical)
                {
                    let position = try XCTUnwrap(
                        order.firstIndex(of: dependency), "\(dependency) (for \(module)) not loaded")
                    XCTAssertLessThan(position, index, "\(dependency) must load before \(module)")
                }
            }
        }
        // The module's vermagic names the same release (read through libelf).
        let vermagic = try ModuleInfo(module: modules.path(of: "virtio_scsi")!).vermagic
        XCTAssertTrue(vermagic?.hasPrefix(bundle.release + " ") == true, vermagic ?? "nil")
    }

    func testCachedKernelIsReusedWithoutApt() throws {
        let first = try DebianKernelProvider(cache: Self.cache).bundle()
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        setenv("PATH", "/nonexistent", 1)
        defer { setenv("PATH", path, 1) }
        // apt's answer was recorded with the state of its package lists: no apt needed now.
        let recorded = try DebianKernelProvider(cache: Self.cache).bundle()
        XCTAssertEqual(recorded.image, first.image)
        XCTAssertEqual(recorded.origin, first.origin)
        // Without the record either, the newest cached kernel of the flavour is used, and said so.
        try FileManager.default.removeItem(atPath: try Self.cache.entryPath("kernels/debian/resolved-amd64") + ".json")
        let offline = try DebianKernelProvider(cache: Self.cache).bundle()
        XCTAssertEqual(offline.image, first.image)
        XCTAssertTrue(offline.origin.contains("cached"), offline.origin)
    }

    func testCloudKernelIsRefusedNamingTheMissingOptions() throws {
        let bundle = try DebianKernelProvider(cache: Self.cache, flavour: "cloud-amd64").bundle()
        XCTAssertThrowsError(
            try KernelValidator.validate(
                bundle.config, modules: try bundle.moduleTree(), root: .squashfs(.zstd),
                kernel: bundle.origin)
        ) { error in
            let text = "\(error)"
            for option in ["CONFIG_NET_9P:", "CONFIG_NET_9P_VIRTIO:", "CONFIG_9P_FS:"] {
                XCTAssertTrue(text.contains(option), "\(option) not named in: \(text)")
            }
            XCTAssertFalse(text.contains("CONFIG_SCSI_VIRTIO:"), "virtio-scsi is there: \(text)")
            XCTAssertTrue(text.contains("--kernel debian"), text)
        }
    }

    func testSquashfsCompressorMustBeBuiltIn() {
        var config = KernelConfig(text: "CONFIG_SQUASHFS=y\n# CONFIG_SQUASHFS_XZ is not set\nCONFIG_SQUASHFS_ZSTD=m\n")
        XCTAssertEqual(config["CONFIG_SQUASHFS"], .builtIn)
        XCTAssertNil(config["CONFIG_SQUASHFS_XZ"])
        XCTAssertThrowsError(try KernelValidator.validate(config, modules: nil, root: .squashfs(.xz), kernel: "k")) {
            XCTAssertTrue("\($0)".contains("CONFIG_SQUASHFS_XZ: is not set"), "\($0)")
        }
        XCTAssertThrowsError(try KernelValidator.validate(config, modules: nil, root: .squashfs(.zstd), kernel: "k")) {
            XCTAssertTrue("\($0)".contains("CONFIG_SQUASHFS_ZSTD: is a module but must be built in"), "\($0)")
        }
        config = KernelConfig(text: "")
        XCTAssertThrowsError(try KernelValidator.validate(config, modules: nil, root: .ext4, kernel: "k"))
    }

    func testKernelChoiceAndFileProviderErrors() throws {
        XCTAssertEqual(try KernelChoice.parse("debian", modules: nil, config: nil), .debian(version: nil))
        XCTAssertEqual(
            try KernelChoice.parse("debian:6.1.0-56", modules: nil, config: nil), .debian(version: "6.1.0-56"))
        XCTAssertEqual(
            try KernelChoice.parse("file:/k", modules: "/m", config: "/c"),
            .file(path: "/k", modules: "/m", config: "/c"))
        XCTAssertThrowsError(try KernelChoice.parse("ubuntu", modules: nil, config: nil))
        // gvltctl's -k VERSION: a tag of --kernel-url (default torvalds/linux); latest is Debian's.
        XCTAssertEqual(
            try KernelChoice.parse("v6.10", modules: nil, config: nil),
            .git(url: GitKernelSource.defaultURL, ref: "v6.10", config: nil))
        XCTAssertEqual(try KernelChoice.parse("latest", modules: nil, config: nil), .debian(version: nil))
        XCTAssertEqual(
            try KernelChoice.parse("latest", modules: nil, config: "/c", url: "/repo"),
            .git(url: "/repo", ref: nil, config: "/c"))
        XCTAssertEqual(
            try KernelChoice.parse("my-branch", modules: nil, config: nil, url: "/repo"),
            .git(url: "/repo", ref: "my-branch", config: nil))
        XCTAssertThrowsError(try KernelChoice.parse("v6.10", modules: "/m", config: nil))
        XCTAssertThrowsError(try FileKernelProvider.bundle(image: "/nonexistent", modules: nil, config: nil)) {
            XCTAssertTrue("\($0)".contains("does not exist"))
        }
        let bundle = try DebianKernelProvider(cache: Self.cache).bundle()
        XCTAssertThrowsError(try FileKernelProvider.bundle(image: bundle.image, modules: nil, config: nil)) {
            XCTAssertTrue("\($0)".contains("--kernel-config"), "\($0)")
        }
        let viaFile = try FileKernelProvider.bundle(
            image: bundle.image, modules: bundle.modulesDirectory,
            config: URL(fileURLWithPath: bundle.image).deletingLastPathComponent().path + "/config-\(bundle.release)")
        XCTAssertEqual(viaFile.release, bundle.release)
    }

    func testInitramfsIsDeterministicAndListsModulesInLoadOrder() throws {
        let bundle = try DebianKernelProvider(cache: Self.cache).bundle()
        let modules = try XCTUnwrap(try bundle.moduleTree())
        let order = try KernelValidator.validate(
            bundle.config, modules: modules, root: .squashfs(.zstd), kernel: bundle.origin)
        let directory = NSTemporaryDirectory() + "gvlt-initramfs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("#!fake-init".utf8).write(to: URL(fileURLWithPath: directory + "/init"))
        let initramfs = Initramfs(
            release: bundle.release, modules: order.map { ($0, modules.modules[$0]!) },
            modulesDirectory: modules.directory, initBinary: directory + "/init")
        let first = try initramfs.write(to: directory + "/a.cpio", force: false)
        let second = try initramfs.write(to: directory + "/b.cpio", force: false)
        XCTAssertEqual(first.sha256, second.sha256)

        let file = try SharedFile.openReadOnly(directory + "/a.cpio")
        let reader = try ArchiveReader(
            format: .cpio, source: FileRangeSource(file: file, length: file.size), label: "initramfs")
        var names: [String] = []
        var loadOrder = ""
        while let entry = try reader.nextHeader() {
            let header = try ArchiveEntryCoding.decode(entry)
            names.append(header.name)
            XCTAssertEqual(header.metadata.uid, 0)
            XCTAssertEqual(header.metadata.mtime, .epoch)
            if header.name == Initramfs.loadOrderPath {
                while let (block, _) = try reader.readBlock() { loadOrder += String(decoding: block, as: UTF8.self) }
            }
        }
        XCTAssertTrue(names.contains("init"))
        XCTAssertEqual(
            loadOrder.split(separator: "\n").map { String($0.split(separator: "/").last!.dropLast(3)) }
                .map(ModuleTree.canonical), order)
        for line in loadOrder.split(separator: "\n") {
            XCTAssertTrue(names.contains(String(line.dropFirst())), "\(line) not in the archive")
        }
    }

    /// The source provider's fragment: every runtime requirement, merged over whatever the base said.
    func testKernelFragmentCoversTheRuntimeAndOverridesTheBase() {
        for root in [RootFilesystem.ext4] + RootFilesystem.SquashfsCompressor.allCases.map(RootFilesystem.squashfs) {
            for requirement in KernelRequirement.requirements(for: root) {
                XCTAssertTrue(KernelFragment.options.contains(requirement.option), requirement.option)
            }
        }
        let base = "CONFIG_FOO=y\n# CONFIG_9P_FS is not set\nCONFIG_VIRTIO=m\nCONFIG_SQUASHFS_ZSTD_EXTRA=y\n"
        let merged = KernelConfig(text: KernelFragment.merge(into: base))
        XCTAssertEqual(merged["CONFIG_FOO"], .builtIn)
        XCTAssertEqual(merged["CONFIG_9P_FS"], .builtIn)
        XCTAssertEqual(merged["CONFIG_VIRTIO"], .builtIn)
        XCTAssertEqual(merged["CONFIG_SQUASHFS_ZSTD_EXTRA"], .builtIn)
        let text = KernelFragment.merge(into: base)
        XCTAssertFalse(text.contains("# CONFIG_9P_FS is not set"))
        XCTAssertFalse(text.contains("CONFIG_VIRTIO=m"))
        XCTAssertEqual(text.components(separatedBy: "CONFIG_VIRTIO=y\n").count, 2, "each option once")
    }

    /// Debian's kernel has no IKCONFIG: the whole real payload is decompressed without an error
    /// (the appended size is not taken for data) and the answer is "none".
    func testDebianKernelHasNoEmbeddedConfig() throws {
        let bundle = try DebianKernelProvider(cache: KernelTests.cache).bundle()
        XCTAssertNil(try EmbeddedKernelConfig.read(bzImage: bundle.image))
    }
}
