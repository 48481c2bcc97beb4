import Core
import Foundation
@testable import LinuxVM
import TestSupport
import XCTest

/// gvlt-init booted for real: Debian's kernel, our initramfs (init + driver modules), a squashfs root
/// on the worker's virtio-scsi disk, the worker's 9p shares, under QEMU with -accel tcg.
final class GuestInitBootTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let work = NSTemporaryDirectory() + "gvlt-guest-" + UUID().uuidString

    /// Built once per test run: the init, the kernel, the initramfs and a root disk.
    static let prepared: Result<(kernel: KernelBundle, initramfs: String, disk: String), Error> = Result {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let initPath = work + "/gvlt-init"
        try run("/usr/bin/env", ["bash", repository + "/scripts/build-init", initPath])
        let kernel = try DebianKernelProvider(cache: KernelTests.cache).bundle()
        let modules = try XCTUnwrap(try kernel.moduleTree())
        let order = try KernelValidator.validate(
            kernel.config, modules: modules, root: .squashfs(.gzip), kernel: kernel.origin)
        let initramfs = work + "/initramfs.cpio"
        _ = try Initramfs(
            release: kernel.release, modules: order.map { ($0, modules.modules[$0]!) },
            modulesDirectory: modules.directory, initBinary: initPath
        ).write(to: initramfs, force: true)

        // The root: a static test program, the baked config, and the mount points the init uses.
        let root = work + "/root"
        for dir in [
            "bin", "etc/gvlt", "proc", "sys", "dev", "run", "tmp", "mnt/gevulot/input", "mnt/gevulot/output",
            "mnt/gevulot/rt-config"
        ] {
            try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        try Data(
            """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            int main(int argc, char **argv) {
                printf("hello from the guest: %s\\n", argc > 1 ? argv[1] : "");
                const char *greeting = getenv("GREETING"), *who = getenv("WHO");
                printf("GREETING=%s WHO=%s\\n", greeting ? greeting : "(unset)", who ? who : "(unset)");
                FILE *in = fopen("/mnt/gevulot/input/in.txt", "r");
                char line[128] = "(no input)";
                if (in) { if (!fgets(line, sizeof line, in)) line[0] = 0; fclose(in); }
                FILE *out = fopen("/mnt/gevulot/output/result.txt", "w");
                if (out) { fprintf(out, "processed %s", line); fclose(out); }
                fflush(stdout);
                return argc > 2 ? atoi(argv[2]) : 0;
            }
            """.utf8
        ).write(to: URL(fileURLWithPath: work + "/hello.c"))
        try run("/usr/bin/gcc", ["-static", "-O2", "-o", root + "/bin/hello", work + "/hello.c"])
        // Prints `PATH=CONTENT` for each argument: how the tests read the guest's sysfs.
        try Data(
            """
            #include <stdio.h>
            #include <string.h>
            int main(int argc, char **argv) {
                for (int i = 1; i < argc; i++) {
                    char value[256] = "(missing)";
                    FILE *f = fopen(argv[i], "r");
                    if (f) { if (!fgets(value, sizeof value, f)) value[0] = 0; fclose(f); }
                    value[strcspn(value, "\\n")] = 0;
                    printf("%s=%s\\n", argv[i], value);
                }
                return 0;
            }
            """.utf8
        ).write(to: URL(fileURLWithPath: work + "/show.c"))
        try run("/usr/bin/gcc", ["-static", "-O2", "-o", root + "/bin/show", work + "/show.c"])
        try Data(
            """
            version: 1.1.0
            command: /bin/hello
            args: [baked]
            env:
              - key: GREETING
                value: hi
              - key: WHO
                value: image
            mounts:
              - {source: gevulot-input, target: /mnt/gevulot/input, fstype: 9p, flags: 1, data: "trans=virtio,version=9p2000.L"}
              - {source: gevulot-output, target: /mnt/gevulot/output, fstype: 9p, data: "trans=virtio,version=9p2000.L"}
              - {source: gevulot-rt-config, target: /mnt/gevulot/rt-config, fstype: 9p, flags: 1, data: "trans=virtio,version=9p2000.L"}
            follow-config: /mnt/gevulot/rt-config/config.yaml
            """.utf8
        ).write(to: URL(fileURLWithPath: root + "/etc/gvlt/config.yaml"))
        let squashfs = work + "/root.squashfs"
        try run("/usr/bin/mksquashfs", [root, squashfs, "-all-root", "-noappend", "-comp", "gzip", "-quiet"])

        return (kernel, initramfs, try disk(root: squashfs, at: work + "/disk.img"))
    }

    /// The worker's disk around a root image: partition 1 (boot, empty here: the tests boot with
    /// -kernel/-initrd) and partition 2 (the root).
    static func disk(root squashfs: String, at path: String) throws -> String {
        let rootBytes = try Data(contentsOf: URL(fileURLWithPath: squashfs))
        let rootSectors = UInt32((rootBytes.count + 511) / 512)
        var disk = Data(
            try MBR(
                diskSignature: 0x6776_6c74,
                partitions: [
                    .init(active: true, type: MBR.Partition.fat32LBA, firstSector: 2048, sectorCount: 2048),
                    .init(active: false, type: MBR.Partition.linux, firstSector: 4096, sectorCount: rootSectors)
                ]
            ).encode())
        disk.append(Data(count: 4096 * 512 - disk.count))
        disk.append(rootBytes)
        disk.append(Data(count: Int(rootSectors) * 512 - rootBytes.count))
        try disk.write(to: URL(fileURLWithPath: path))
        return path
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let result = try HostCommand.run(tool, arguments)
        return result.output
    }

    /// Boots with the worker's QEMU flags; returns QEMU's exit status and the console output.
    /// `append` adds to the kernel command line; `scsiTarget` puts the disk at another SCSI target
    /// than the worker's (0).
    func boot(
        workerConfig: String?, input: String? = nil, disk overrideDisk: String? = nil, append: String = "",
        scsiTarget: Int? = nil
    ) throws -> (status: Int32, console: String, output: String?) {
        let (kernel, initramfs, preparedDisk) = try Self.prepared.get()
        let disk = overrideDisk ?? preparedDisk
        _ = try XCTUnwrap(QEMUProbe.qemu.locate(), "qemu-system-x86_64 is not installed: run scripts/setup")
        let run = Self.work + "/run-" + UUID().uuidString
        for share in ["input", "output", "rt-config"] {
            try FileManager.default.createDirectory(atPath: run + "/" + share, withIntermediateDirectories: true)
        }
        if let workerConfig {
            try Data(workerConfig.utf8).write(to: URL(fileURLWithPath: run + "/rt-config/config.yaml"))
        }
        if let input { try Data(input.utf8).write(to: URL(fileURLWithPath: run + "/input/in.txt")) }
        var arguments = WorkerQEMU.arguments(
            disk: disk, shares: run,
            boot: [
                "-kernel", kernel.image, "-initrd", initramfs, "-append", "console=ttyS0 panic=-1 quiet " + append
            ])
        if let scsiTarget {
            let disk = try XCTUnwrap(arguments.firstIndex(of: "scsi-hd,bus=scsi0.0,drive=hd0"))
            arguments[disk] = "scsi-hd,bus=scsi0.0,scsi-id=\(scsiTarget),drive=hd0"
        }
        let (status, console) = try WorkerQEMU.run(arguments, timeout: 180)
        let output = try? String(contentsOfFile: run + "/output/result.txt", encoding: .utf8)
        return (status, console, output)
    }

    let workerConfig = """
        version: 1.1.0
        command: /bin/hello
        args: [worker, "7"]
        env:
          - key: WHO
            value: worker
        debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
        """

    func testWorkerConfigOverridesCommandAndExitStatusIsExact() throws {
        let (status, console, output) = try boot(workerConfig: workerConfig, input: "task-42\n")
        if ProcessInfo.processInfo.environment["GVLT_SHOW_CONSOLE"] != nil { print(console) }
        XCTAssertTrue(console.contains("hello from the guest: worker"), console)
        // The baked env stays unless overridden.
        XCTAssertTrue(console.contains("GREETING=hi WHO=worker"), console)
        XCTAssertTrue(console.contains("gvlt-init: exit-status=7"), console)
        XCTAssertFalse(console.contains("value=") && console.contains("hi\n"), "the init must not log env values")
        XCTAssertEqual(output, "processed task-42\n")
        // Failure never looks like success (3): value 1 + 1 + 7 = 9, QEMU exits (9 << 1) | 1.
        XCTAssertEqual(status, 19, console)
    }

    func testSuccessExitsThroughDebugExitWithTheWorkersCode() throws {
        let config = workerConfig.replacingOccurrences(of: "args: [worker, \"7\"]", with: "args: [worker, \"0\"]")
        let (status, console, _) = try boot(workerConfig: config)
        XCTAssertTrue(console.contains("gvlt-init: exit-status=0"), console)
        XCTAssertEqual(status, 3, console)
    }

    func testUnknownKeyInWorkerConfigIsAClearErrorNotAHang() throws {
        let (status, console, _) = try boot(workerConfig: workerConfig + "\nbogus-key: 1\n")
        XCTAssertTrue(
            console.contains("gvlt-init: error: /mnt/gevulot/rt-config/config.yaml: line 8: unknown key `bogus-key`"),
            console)
        XCTAssertTrue(console.contains("exit-status=255 init-error"), console)
        XCTAssertNotEqual(status, 3)
        XCTAssertNotEqual(status, 0)
    }

    /// The worker's config as serde_yaml writes it: every unset field is `null` and `args` is an empty
    /// list. The image's own command and args must run unchanged, and `version: 1` means 1.0.0.
    func testWorkerConfigWithNullsKeepsTheImagesCommand() throws {
        let (status, console, _) = try boot(
            workerConfig: """
                version: "1"
                command: null
                args: []
                env: []
                working-dir: null
                mounts: []
                default-mounts: true
                kernel-modules: []
                debug-exit:
                  arch: x86
                  iobase: 244
                  iosize: 4
                  success-code: 3
                bootcmd: []
                follow-config: ~
                """)
        XCTAssertTrue(console.contains("hello from the guest: baked"), console)
        XCTAssertTrue(console.contains("gvlt-init: exit-status=0"), console)
        XCTAssertEqual(status, 3, console)
    }

    func showConfig(_ paths: [String]) -> String {
        """
        version: 1.1.0
        command: /bin/show
        args: [\(paths.joined(separator: ", "))]
        debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
        """
    }

    /// The init scans only the worker's SCSI target 0 at first (a full scan of virtio-scsi's 256
    /// targets costs about 0.1 s under TCG). A disk elsewhere must still be found, by the full scan
    /// that follows, and module parameters on the kernel command line reach the modules, `-` or `_`.
    func testDiskOnAnotherSCSITargetIsFoundAndCommandLineModuleParametersApply() throws {
        let (status, console, _) = try boot(
            workerConfig: showConfig([
                "/sys/module/scsi_mod/parameters/scan",
                "/sys/module/scsi_mod/parameters/inq_timeout"
            ]),
            append: "scsi-mod.inq_timeout=7", scsiTarget: 5)
        XCTAssertTrue(console.contains("gvlt-init: root file system on /dev/sda2"), console)
        XCTAssertTrue(console.contains("/sys/module/scsi_mod/parameters/scan=manual"), console)
        XCTAssertTrue(console.contains("/sys/module/scsi_mod/parameters/inq_timeout=7"), console)
        XCTAssertEqual(status, 3, console)
    }

    /// `scsi_mod.scan=` given by the user wins over the init's manual scan.
    func testUserScanModeOnTheCommandLineWins() throws {
        let (status, console, _) = try boot(
            workerConfig: showConfig(["/sys/module/scsi_mod/parameters/scan"]),
            append: "scsi_mod.scan=sync")
        XCTAssertTrue(console.contains("/sys/module/scsi_mod/parameters/scan=sync"), console)
        XCTAssertEqual(status, 3, console)
    }

    /// A baked config the init cannot read stops the boot with a clear console error and a failure
    /// status, never a hang.
    func testUnknownKeyInTheBakedConfigIsAClearError() throws {
        let (_, _, _) = try Self.prepared.get()
        let root = Self.work + "/bad-root"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.copyItem(atPath: Self.work + "/root", toPath: root)
        try Data("version: 1.1.0\ncommand: /bin/hello\nentrypoint: [oops]\n".utf8)
            .write(to: URL(fileURLWithPath: root + "/etc/gvlt/config.yaml"))
        let squashfs = Self.work + "/bad-root.squashfs"
        try Self.run("/usr/bin/mksquashfs", [root, squashfs, "-all-root", "-noappend", "-comp", "gzip", "-quiet"])
        let path = try Self.disk(root: squashfs, at: Self.work + "/bad-disk.img")
        let (status, console, _) = try boot(workerConfig: workerConfig, disk: path)
        XCTAssertTrue(
            console.contains("gvlt-init: error: /etc/gvlt/config.yaml: line 3: unknown key `entrypoint`"), console)
        XCTAssertTrue(console.contains("exit-status=255 init-error"), console)
        XCTAssertNotEqual(status, 3)
        XCTAssertNotEqual(status, 0)
    }
}
