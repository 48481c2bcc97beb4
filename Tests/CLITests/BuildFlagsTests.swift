import Core
@testable import gvlt
import LinuxVM
import Nanos
import NvidiaGPU
import XCTest

/// Each backend's flags write the keys its settings decode, so that a flag, a config file's
/// `options:` entry and `--option KEY=VALUE` are the same setting.
final class BuildFlagsTests: XCTestCase {
    func options(_ arguments: [String]) throws -> BuildOptions {
        let command = try BuildCommand.parse(arguments)
        var options = BuildOptions()
        command.linuxvm.collect(into: &options)
        command.nanos.collect(into: &options)
        command.nvidia.collect(into: &options)
        return options
    }

    func testEveryLinuxVMFlagIsASettingsKey() throws {
        let options = try self.options([
            "--kernel", "debian", "--kernel-url", "/git", "--kernel-file", "/k", "--kernel-modules", "/m",
            "--kernel-config", "/c",
            "--kernel-cmdline", "console=ttyS0", "--root-fs", "ext4", "--root-fs-type", "ext4", "--kernel-module",
            "loop",
            "--kernel-module", "9p", "--mount", "a:/a", "--squashfs-compressor", "xz", "--squashfs-writer", "tool",
            "--init", "/sbin/init",
            "--init-args", "-v",
            "--init-binary", "/i", "--mia-version", "latest", "--no-gevulot-runtime", "--no-default-mounts",
            "--rw-root",
            "--mbr-file", "/mbr", "--size", "1G"
        ])
        XCTAssertEqual(options.keys, LinuxVMBackend.Settings.optionKeys.sorted())
        XCTAssertEqual(options["kernel-module"], ["loop", "9p"])
        XCTAssertEqual(options["rw-root"], true)
        XCTAssertEqual(options.origin(of: "size"), "--size")
        // -k and -s are gvltctl's short names.
        XCTAssertEqual(try self.options(["-k", "debian:6.1", "-s", "2G"]).json, ["kernel": "debian:6.1", "size": "2G"])
    }

    func testEveryNanosFlagIsASettingsKey() throws {
        let options = try self.options([
            "--manifest", "m.json", "-a", "x", "--args", "y", "--imagename", "n", "--nightly", "--nanos-dir", "/r",
            "--nanos-version", "0.1", "--boot", "/b", "--kernel", "/k", "--label", "l", "--local-run", "--envs", "A=1",
            "--target-root", "/t", "--ops-images", "-a", "--starts-with-a-dash"
        ])
        XCTAssertEqual(options.keys, NanosBackend.Settings.optionKeys.sorted())
        XCTAssertEqual(options["args"], ["x", "y", "--starts-with-a-dash"])
        XCTAssertEqual(options["envs"], ["A=1"])
        let previews = try BuildCommand.parse(["--print-deps", "--print-manifest"]).nanos.previews
        XCTAssertEqual(previews, [.dependencies, .manifest])
    }

    func testEveryNvidiaFlagIsASettingsKey() throws {
        let options = try self.options([
            "--nvidia-modules", "debian", "--nvidia-kernel-modules", "nvidia", "--nvidia-userspace", "keep",
            "--nvidia-version", "535.261.03", "--require-gpu", "--nvidia-klib", "/k", "--nvidia-firmware", "/f"
        ])
        XCTAssertEqual(options.keys, NvidiaSettings.optionKeys.sorted())
    }

    func testUnsetFlagsWriteNothing() throws {
        XCTAssertTrue(try options([]).isEmpty)
    }
}
