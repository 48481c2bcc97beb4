import Core
@testable import LinuxVM
import XCTest

/// Every linuxvm option, decoded as flags give it (strings, lists, `true`) and as the build config
/// file gives it (YAML values), with the conflicts the backend refuses.
final class LinuxVMSettingsTests: XCTestCase {
    typealias Settings = LinuxVMBackend.Settings

    func settings(_ values: [String: JSONValue]) throws -> Settings {
        try Settings.decode(BuildOptions(values, origin: "test"))
    }

    func assertRefused(
        _ values: [String: JSONValue], _ fragment: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try settings(values), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "`\(fragment)` not in: \(error)", file: file, line: line)
        }
    }

    func testDefaults() throws {
        let settings = try settings([:])
        XCTAssertEqual(settings.kernel, .debian(version: nil))
        XCTAssertEqual(settings.root, .squashfs(.zstd))
        XCTAssertEqual(settings.commandLine, "console=ttyS0 panic=-1 quiet")
        XCTAssertTrue(settings.gevulotRuntime)
        XCTAssertTrue(settings.defaultMounts)
        XCTAssertFalse(settings.rwRoot)
        XCTAssertNil(settings.initBinary)
        XCTAssertNil(settings.customInit)
        XCTAssertNil(settings.size)
        XCTAssertEqual(settings.kernelModules, [])
        XCTAssertEqual(settings.mounts, [])
    }

    func testTheKeyListIsTheFlagList() {
        XCTAssertEqual(
            Set(Settings.optionKeys),
            [
                "kernel", "kernel-url", "kernel-file", "kernel-modules", "kernel-config", "kernel-cmdline", "root-fs",
                "root-fs-type",
                "kernel-module", "mount", "squashfs-compressor", "squashfs-writer", "init", "init-args", "init-binary",
                "mia-version",
                "no-gevulot-runtime",
                "no-default-mounts", "rw-root", "mbr-file", "size"
            ])
    }

    func testTheSquashfsWriter() throws {
        XCTAssertEqual(try settings([:]).squashfsWriter, .native)
        XCTAssertEqual(try settings(["squashfs-writer": "tool"]).squashfsWriter, .tool)
        // libsquashfs has no lzo: lzo roots are the tool's unless native is asked for by name.
        XCTAssertEqual(try settings(["squashfs-compressor": "lzo"]).squashfsWriter, .tool)
        assertRefused(
            ["squashfs-compressor": "lzo", "squashfs-writer": "native"], "--squashfs-writer native cannot write lzo")
        assertRefused(["squashfs-writer": "fast"], "--squashfs-writer `fast` is not native or tool")
        assertRefused(["root-fs": "ext4", "squashfs-writer": "tool"], "is for a squashfs root, and this one is ext4")
    }

    func testKernelOptions() throws {
        XCTAssertEqual(try settings(["kernel": "debian:6.1.0-56"]).kernel, .debian(version: "6.1.0-56"))
        XCTAssertEqual(
            try settings(["kernel": "file:/k/bzImage", "kernel-modules": "/k/mod", "kernel-config": "/k/config"])
                .kernel,
            .file(path: "/k/bzImage", modules: "/k/mod", config: "/k/config"))
        XCTAssertEqual(
            try settings(["kernel-file": "/k/bzImage"]).kernel, .file(path: "/k/bzImage", modules: nil, config: nil))
        XCTAssertEqual(
            try settings(["kernel-file": "/k/bzImage", "kernel": "file:/k/bzImage"]).kernel,
            .file(path: "/k/bzImage", modules: nil, config: nil))
        XCTAssertEqual(
            try settings(["kernel": "source:/src/linux"]).kernel, .source(directory: "/src/linux", config: nil))
        XCTAssertEqual(
            try settings(["kernel": "v6.10", "kernel-url": "/git/linux"]).kernel,
            .git(url: "/git/linux", ref: "v6.10", config: nil))
        // gvltctl's --kernel-url alone means that repository's default branch.
        XCTAssertEqual(
            try settings(["kernel-url": "/git/linux"]).kernel, .git(url: "/git/linux", ref: nil, config: nil))
        assertRefused(
            ["kernel-file": "/a", "kernel": "file:/b"], "--kernel-file /a and --kernel file:/b name different kernels")
        assertRefused(["kernel": "debain"], "is not a kernel provider or version")
        assertRefused(["kernel": "debian", "kernel-url": "/git/linux"], "--kernel-url does not go with --kernel debian")
        assertRefused(
            ["kernel": "source:/src", "kernel-modules": "/m"], "--kernel-modules does not go with --kernel source:/src")
    }

    func testKernelCommandLine() throws {
        XCTAssertEqual(try settings(["kernel-cmdline": "console=ttyS0 panic=-1"]).commandLine, "console=ttyS0 panic=-1")
        assertRefused(["kernel-cmdline": "a\nb"], "--kernel-cmdline must be one line")
    }

    func testRootFileSystem() throws {
        XCTAssertEqual(try settings(["root-fs": "ext4"]).root, .ext4)
        XCTAssertEqual(try settings(["root-fs-type": "ext4"]).root, .ext4)
        XCTAssertEqual(try settings(["root-fs": "ext4", "root-fs-type": "ext4"]).root, .ext4)
        XCTAssertEqual(try settings(["squashfs-compressor": "xz"]).root, .squashfs(.xz))
        assertRefused(
            ["root-fs": "ext4", "root-fs-type": "squashfs"], "--root-fs-type squashfs and --root-fs ext4 disagree")
        assertRefused(["root-fs": "btrfs"], "--root-fs `btrfs` is not squashfs or ext4")
        assertRefused(
            ["squashfs-compressor": "brotli"], "--squashfs-compressor `brotli` is not one of gzip, xz, zstd, lz4, lzo")
    }

    func testKernelModulesAndMounts() throws {
        // A repeated flag gives a list; a comma-separated value names several, as gvltctl reads it.
        XCTAssertEqual(
            try settings(["kernel-module": .array(["loop", "9p,virtio_net"])]).kernelModules,
            ["loop", "9p", "virtio_net"])
        XCTAssertEqual(try settings(["kernel-module": "loop"]).kernelModules, ["loop"])
        assertRefused(["kernel-module": "loop.ko"], "--kernel-module `loop.ko` is not a module name")
        let mounts = try settings(["mount": .array(["data:/data", "tmpfs:/scratch:tmpfs:size=64m"])]).mounts
        XCTAssertEqual(
            mounts,
            [
                RuntimeConfigFile.Mount(
                    source: "data", target: "/data", fstype: "9p", data: RuntimeConfigFile.ninePOptions),
                RuntimeConfigFile.Mount(source: "tmpfs", target: "/scratch", fstype: "tmpfs", data: "size=64m")
            ])
        assertRefused(["mount": "data"], "--mount `data` is not SOURCE:/TARGET")
        assertRefused(["mount": "data:/a/../b"], "must be a directory path without `.` or `..`")
    }

    func testInitOptions() throws {
        XCTAssertEqual(try settings(["init-binary": "/opt/gvlt-init"]).initBinary, "/opt/gvlt-init")
        XCTAssertEqual(try settings(["mia-version": "file:/opt/mia"]).initBinary, "/opt/mia")
        XCTAssertNil(try settings(["mia-version": "latest"]).initBinary)
        assertRefused(["mia-version": "0.3.1"], "gvlt does not download MIA releases")
        assertRefused(
            ["mia-version": "file:/a", "init-binary": "/b"], "--mia-version file:/a and --init-binary /b disagree")
        let custom = try settings(["init": "/sbin/init", "init-args": "--verbose"])
        XCTAssertEqual(custom.customInit, "/sbin/init")
        XCTAssertEqual(custom.initArgs, "--verbose")
        assertRefused(["init": "sbin/init"], "--init sbin/init is not an absolute path in the image")
        assertRefused(
            ["init": "/sbin/init", "kernel-module": "loop"],
            "--kernel-module configures gvlt-init, and --init /sbin/init replaces it")
        assertRefused(["init-args": "-v"], "--init-args is for a custom --init")
    }

    func testDebugFlagsAsFlagsAndAsConfigValues() throws {
        let flags = try settings([
            "no-gevulot-runtime": true, "no-default-mounts": "true", "rw-root": "yes", "root-fs": "ext4"
        ])
        XCTAssertFalse(flags.gevulotRuntime)
        XCTAssertFalse(flags.defaultMounts)
        XCTAssertTrue(flags.rwRoot)
        XCTAssertTrue(try settings(["no-gevulot-runtime": false]).gevulotRuntime)
        assertRefused(["rw-root": true], "--rw-root needs a writable root file system")
        assertRefused(["rw-root": "maybe", "root-fs": "ext4"], "test.rw-root: `maybe` is not true or false")
    }

    func testDiskOptions() throws {
        XCTAssertEqual(try settings(["mbr-file": "/opt/mbr.bin"]).mbrFile, "/opt/mbr.bin")
        XCTAssertEqual(try settings(["size": "10G"]).size, 10 << 30)
        XCTAssertEqual(try settings(["size": .number(1_048_576)]).size, 1_048_576)
        assertRefused(["size": "lots"], "--size `lots` is not a size")
    }

    func testWrongTypesNameWhereTheValueWasWritten() {
        assertRefused(["kernel": .array(["a", "b"])], "test.kernel: expected a string, found array")
        assertRefused(["mount": .object([:])], "test.mount: expected a string, found object")
    }
}
