import Core
import Foundation
import TestSupport
import XCTest

/// `gvlt build --backend linuxvm` takes gvltctl build's options with their meaning; each is checked
/// on the image or in the booted guest, not just parsed.
final class GvltctlParityTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    func makeRoot(_ sandbox: Sandbox) throws {
        try FileManager.default.createDirectory(atPath: sandbox.path("root/usr/bin"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try PluginImageTests.probe.get(), toPath: sandbox.path("root/usr/bin/probe"))
    }

    func build(_ arguments: [String], in sandbox: Sandbox) throws -> RunResult {
        let (initBinary, _) = try Images.built.get()
        return try GvltBinary.run(["build", "--backend", "linuxvm", "--rootfs-dir", "root", "--init-binary", initBinary, "--cache-dir", Images.kernelCache] + arguments,
                                  in: sandbox, timeout: 600)
    }

    /// The root partition, cut out of the disk, for tools that take no offset (debugfs).
    func rootPartition(_ image: String, to path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: image))
        try data[Int(try NvidiaImageTests.rootOffset(image))...].write(to: URL(fileURLWithPath: path))
    }

    func testKernelModuleMountAndRootFsTypeReachTheImageAndTheGuest() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let result = try build(["--kernel-module", "loop", "--mount", "tmpfs:/scratch/space:tmpfs:size=1m,mode=0700", "--root-fs-type", "ext4",
                                "-o", "parity.img"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = sandbox.path("parity.img")
        try rootPartition(image, to: sandbox.path("root.ext4"))
        let magic = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("root.ext4")))[1080..<1082]
        XCTAssertEqual(Array(magic), [0x53, 0xEF], "--root-fs-type ext4 did not give an ext4 root")
        let config = try HostCommand.run("/usr/sbin/debugfs", ["-R", "cat /etc/gvlt/config.yaml", sandbox.path("root.ext4")]).output
        XCTAssertTrue(config.contains("kernel-modules: [\"loop\"]"), config)
        XCTAssertTrue(config.contains("- {source: \"tmpfs\", target: \"/scratch/space\", fstype: \"tmpfs\", data: \"size=1m,mode=0700\"}"), config)
        let listing = try HostCommand.run("/usr/sbin/debugfs", ["-R", "ls -l /scratch", sandbox.path("root.ext4")]).output
        XCTAssertTrue(listing.contains("space"), "the mount target was not created in the image: \(listing)")
        // `ls -p` lines are /inode/mode/uid/gid/name/size/: the one directory there is the release.
        let modules = try HostCommand.run("/usr/sbin/debugfs", ["-R", "ls -p /lib/modules", sandbox.path("root.ext4")]).output
        var names: [String] = []
        for line in modules.split(separator: "\n") {
            let fields = line.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if fields.count > 5, fields[2].hasPrefix("04"), fields[5] != ".", fields[5] != ".." { names.append(fields[5]) }
        }
        let release = try XCTUnwrap(names.first, modules)
        let loop = try HostCommand.run("/usr/sbin/debugfs", ["-R", "stat /lib/modules/\(release)/kernel/drivers/block/loop.ko", sandbox.path("root.ext4")]).output
        XCTAssertTrue(loop.contains("Type: regular"), "loop.ko is not in the image: \(loop)")

        let run = try GvltBinary.run(["run", image, "--accel", "tcg", "--command", "/usr/bin/probe"], in: sandbox, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        XCTAssertTrue(run.stdout.contains("module loop loaded: yes"), run.stdout)
        XCTAssertTrue(run.stdout.contains("mount: tmpfs /scratch/space tmpfs rw,relatime,size=1024k,mode=700"), run.stdout)
    }

    func testNinePOptionsOnlyFor9pMountsAndBadSpecsAreClearErrors() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let result = try build(["--mount", "datatag:/data", "--mount", "tmpfs:/t:tmpfs", "-o", "m.img"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let root = try NvidiaImageTests.extract(["etc/gvlt/config.yaml"], from: sandbox.path("m.img"), into: sandbox.path("out"))
        let config = try String(contentsOfFile: root + "/etc/gvlt/config.yaml", encoding: .utf8)
        // After the gevulot shares, in order; 9p options for the 9p mount only.
        let lines = config.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("  - {source: \"datatag\", target: \"/data\", fstype: \"9p\", data: \"trans=virtio,version=9p2000.L\"}"), config)
        XCTAssertTrue(lines.contains("  - {source: \"tmpfs\", target: \"/t\", fstype: \"tmpfs\"}"), config)
        XCTAssertLessThan(lines.firstIndex { $0.contains("gevulot-rt-config") } ?? .max, lines.firstIndex { $0.contains("datatag") } ?? -1)

        for (arguments, message) in [(["--mount", "nocolon"], "--mount `nocolon` is not SOURCE:/TARGET[:FSTYPE[:OPTIONS]]"),
                                     (["--mount", "x:/a/../b"], "must be a directory path without `.` or `..`"),
                                     (["--kernel-module", "no_such_module_x"], "--kernel-module needs kernel module no_such_module_x, which kernel"),
                                     (["--kernel-module", "../x.ko"], "--kernel-module `../x.ko` is not a module name"),
                                     (["--root-fs-type", "ext4", "--root-fs", "squashfs"], "--root-fs-type ext4 and --root-fs squashfs disagree"),
                                     (["--nvidia-drivers", "--nvidia-modules", "dir:" + sandbox.path("nothing")], "--nvidia-modules dir:\(sandbox.path("nothing")) has no nvidia.ko")] {
            let failed = try build(arguments + ["-o", "x.img"], in: sandbox)
            XCTAssertEqual(failed.status, 1, "\(arguments): \(failed.stderr)")
            XCTAssertTrue(failed.stderr.contains(message), "\(arguments): \(failed.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
        }
    }
}
