import Core
import Foundation
import TestSupport
import XCTest

/// `gvlt build --backend linuxvm` takes gvltctl build's options with their meaning; each is checked
/// on the image or in the booted guest, not just parsed.
final class GvltctlParityTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    /// A root holding the probe program as /usr/bin/probe (the other linuxvm tests use it too).
    static func makeRoot(_ sandbox: Sandbox) throws {
        try FileManager.default.createDirectory(atPath: sandbox.path("root/usr/bin"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: try PluginImageTests.probe.get(), toPath: sandbox.path("root/usr/bin/probe"))
    }

    func makeRoot(_ sandbox: Sandbox) throws { try Self.makeRoot(sandbox) }

    func build(_ arguments: [String], in sandbox: Sandbox) throws -> RunResult {
        try Self.build(arguments, in: sandbox)
    }

    /// `gvlt build --backend linuxvm` of `root` with the suite's init and cached kernel.
    static func build(_ arguments: [String], in sandbox: Sandbox, environment: [String: String] = [:]) throws
        -> RunResult
    {
        let (initBinary, _) = try Images.built.get()
        return try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--rootfs-dir", "root", "--init-binary", initBinary, "--cache-dir",
                Images.kernelCache
            ] + arguments,
            in: sandbox, environment: environment, timeout: 600)
    }

    /// The root partition, cut out of the disk, for tools that take no offset (debugfs).
    func rootPartition(_ image: String, to path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: image))
        try data[Int(try NvidiaImageTests.rootOffset(image))...].write(to: URL(fileURLWithPath: path))
    }

    /// Each build fails with status 1, says `message`, and leaves no image.
    func assertRefused(
        _ cases: [([String], String)], in sandbox: Sandbox, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        for (arguments, message) in cases {
            let failed = try build(arguments + ["-o", "x.img"], in: sandbox)
            XCTAssertEqual(failed.status, 1, "\(arguments): \(failed.stderr)", file: file, line: line)
            XCTAssertTrue(failed.stderr.contains(message), "\(arguments): \(failed.stderr)", file: file, line: line)
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: sandbox.path("x.img")), "\(arguments)", file: file, line: line)
        }
    }

    func testKernelModuleMountAndRootFsTypeReachTheImageAndTheGuest() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let result = try build(
            [
                "--kernel-module", "loop", "--mount", "tmpfs:/scratch/space:tmpfs:size=1m,mode=0700", "--root-fs-type",
                "ext4",
                "-o", "parity.img"
            ], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = sandbox.path("parity.img")
        try rootPartition(image, to: sandbox.path("root.ext4"))
        let magic = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("root.ext4")))[1080..<1082]
        XCTAssertEqual(Array(magic), [0x53, 0xEF], "--root-fs-type ext4 did not give an ext4 root")
        let config = try HostCommand.run(
            "/usr/sbin/debugfs", ["-R", "cat /etc/gvlt/config.yaml", sandbox.path("root.ext4")]
        ).output
        XCTAssertTrue(config.contains("kernel-modules: [\"loop\"]"), config)
        XCTAssertTrue(
            config.contains(
                "- {source: \"tmpfs\", target: \"/scratch/space\", fstype: \"tmpfs\", data: \"size=1m,mode=0700\"}"),
            config)
        let listing = try HostCommand.run("/usr/sbin/debugfs", ["-R", "ls -l /scratch", sandbox.path("root.ext4")])
            .output
        XCTAssertTrue(listing.contains("space"), "the mount target was not created in the image: \(listing)")
        // `ls -p` lines are /inode/mode/uid/gid/name/size/: the one directory there is the release.
        let modules = try HostCommand.run("/usr/sbin/debugfs", ["-R", "ls -p /lib/modules", sandbox.path("root.ext4")])
            .output
        var names: [String] = []
        for line in modules.split(separator: "\n") {
            let fields = line.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if fields.count > 5, fields[2].hasPrefix("04"), fields[5] != ".", fields[5] != ".." {
                names.append(fields[5])
            }
        }
        let release = try XCTUnwrap(names.first, modules)
        let loop = try HostCommand.run(
            "/usr/sbin/debugfs",
            ["-R", "stat /lib/modules/\(release)/kernel/drivers/block/loop.ko", sandbox.path("root.ext4")]
        ).output
        XCTAssertTrue(loop.contains("Type: regular"), "loop.ko is not in the image: \(loop)")

        let run = try GvltBinary.run(
            ["run", image, "--accel", "tcg", "--command", "/usr/bin/probe"], in: sandbox, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        XCTAssertTrue(run.stdout.contains("module loop loaded: yes"), run.stdout)
        XCTAssertTrue(
            run.stdout.contains("mount: tmpfs /scratch/space tmpfs rw,relatime,size=1024k,mode=700"), run.stdout)
    }

    func testNinePOptionsOnlyFor9pMountsAndBadSpecsAreClearErrors() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let result = try build(["--mount", "datatag:/data", "--mount", "tmpfs:/t:tmpfs", "-o", "m.img"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let root = try NvidiaImageTests.extract(
            ["etc/gvlt/config.yaml"], from: sandbox.path("m.img"), into: sandbox.path("out"))
        let config = try String(contentsOfFile: root + "/etc/gvlt/config.yaml", encoding: .utf8)
        // After the gevulot shares, in order; 9p options for the 9p mount only.
        let lines = config.split(separator: "\n").map(String.init)
        XCTAssertTrue(
            lines.contains(
                "  - {source: \"datatag\", target: \"/data\", fstype: \"9p\", data: \"trans=virtio,version=9p2000.L\"}"),
            config)
        XCTAssertTrue(lines.contains("  - {source: \"tmpfs\", target: \"/t\", fstype: \"tmpfs\"}"), config)
        XCTAssertLessThan(
            lines.firstIndex { $0.contains("gevulot-rt-config") } ?? .max,
            lines.firstIndex { $0.contains("datatag") } ?? -1)

        try assertRefused(
            [
                (["--mount", "nocolon"], "--mount `nocolon` is not SOURCE:/TARGET[:FSTYPE[:OPTIONS]]"),
                (["--mount", "x:/a/../b"], "must be a directory path without `.` or `..`"),
                (
                    ["--kernel-module", "no_such_module_x"],
                    "--kernel-module needs kernel module no_such_module_x, which kernel"
                ),
                (["--kernel-module", "../x.ko"], "--kernel-module `../x.ko` is not a module name"),
                (
                    ["--root-fs-type", "ext4", "--root-fs", "squashfs"],
                    "--root-fs-type ext4 and --root-fs squashfs disagree"
                ),
                (
                    ["--nvidia-drivers", "--nvidia-modules", "dir:" + sandbox.path("nothing")],
                    "--nvidia-modules dir:\(sandbox.path("nothing")) has no nvidia.ko"
                )
            ], in: sandbox)
    }

    /// A root with busybox as /bin/sh and friends, and an init script that shows what it was given.
    func makeShellRoot(_ sandbox: Sandbox) throws {
        XCTAssertTrue(
            FileManager.default.isExecutableFile(atPath: "/bin/busybox"),
            "busybox-static is not installed: run scripts/setup")
        try FileManager.default.createDirectory(atPath: sandbox.path("root/bin"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: sandbox.path("root/bin/busybox"))
        for tool in ["sh", "mount", "grep", "cat", "poweroff", "test", "echo"] {
            try FileManager.default.createSymbolicLink(
                atPath: sandbox.path("root/bin/\(tool)"), withDestinationPath: "busybox")
        }
        for dir in ["proc", "sys", "dev"] {
            try FileManager.default.createDirectory(
                atPath: sandbox.path("root/\(dir)"), withIntermediateDirectories: true)
        }
        try sandbox.writeExecutable(
            "root/init.sh",
            """
            #!/bin/sh
            echo "custom init: pid $$ args [$*]"
            mount -t proc proc /proc
            echo "cmdline: $(cat /proc/cmdline)"
            poweroff -f

            """)
    }

    func appendLine(_ image: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: image))
        guard let range = data.range(of: Data("  APPEND ".utf8)) else { return "" }
        return String(decoding: data[range.upperBound...].prefix { $0 != 0x0A && $0 != 0x0D }, as: UTF8.self)
    }

    func testCustomInitWithArgsTakesOverTheRoot() throws {
        let sandbox = try Sandbox()
        try makeShellRoot(sandbox)
        // gvltctl's -i/--init and --init-args: the kernel command line names them, and the image's
        // own program runs as PID 1 on the root the initramfs found.
        let result = try build(["-i", "/init.sh", "--init-args", "one --two", "-o", "custom.img"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let append = try appendLine(sandbox.path("custom.img"))
        XCTAssertTrue(append.hasSuffix("init=/init.sh initrd=/initrd.img -- one --two"), append)
        let run = try GvltBinary.run(
            ["run", "custom.img", "--accel", "tcg", "--timeout", "120"], in: sandbox, timeout: 300)
        XCTAssertTrue(run.stdout.contains("custom init: pid 1 args [one --two]"), run.stdout)
        // It powered off itself, without gvlt-init's result line: gvlt run says so.
        XCTAssertEqual(run.status, 125, run.stderr)

        try assertRefused(
            [
                (["-i", "/missing/init"], "--init /missing/init is not in the image"),
                (["-i", "relative/init"], "is not an absolute path in the image"),
                (["--init-args", "x"], "--init-args is for a custom --init"),
                (
                    ["-i", "/init.sh", "--kernel-module", "loop"],
                    "--kernel-module configures gvlt-init, and --init /init.sh replaces it"
                ),
                (["--init", "/init.sh", "-i", "/init.sh"], "-i and --init both name the init"),
                (["--mia-version", "0.1.0"], "gvlt does not download MIA releases")
            ], in: sandbox)
    }

    func testRuntimeSwitchesReachTheConfigAndTheGuest() throws {
        let sandbox = try Sandbox()
        try makeShellRoot(sandbox)
        let shell = [
            "--command", "/bin/sh", "--args", "-c",
            "test -e /proc/self && echo proc:yes || echo proc:no; mount -t proc proc /proc 2>/dev/null; grep ' / ' /proc/mounts"
        ]

        // --no-default-mounts: gvlt-init mounts no /proc.
        XCTAssertEqual(try build(["--no-default-mounts", "-o", "nodefault.img"], in: sandbox).status, 0)
        let bare = try GvltBinary.run(["run", "nodefault.img", "--accel", "tcg"] + shell, in: sandbox, timeout: 300)
        XCTAssertEqual(bare.status, 0, bare.stderr)
        XCTAssertTrue(bare.stdout.contains("proc:no"), bare.stdout)
        XCTAssertTrue(try build(["-o", "default.img"], in: sandbox).status == 0)
        let normal = try GvltBinary.run(["run", "default.img", "--accel", "tcg"] + shell, in: sandbox, timeout: 300)
        XCTAssertTrue(normal.stdout.contains("proc:yes"), normal.stdout)

        // --rw-root (ext4 only): the command line asks for rw; the worker's read-only disk keeps it ro.
        XCTAssertEqual(
            try build(["--rw-root", "--root-fs", "squashfs", "-o", "x.img"], in: sandbox).stderr.contains(
                "squashfs is read-only"), true)
        let rw = try build(["--rw-root", "--root-fs", "ext4", "-o", "rw.img"], in: sandbox)
        XCTAssertEqual(rw.status, 0, rw.stderr)
        let append = try appendLine(sandbox.path("rw.img"))
        XCTAssertTrue(append.split(separator: " ").contains("rw"), append)
        let rwRun = try GvltBinary.run(["run", "rw.img", "--accel", "tcg"] + shell, in: sandbox, timeout: 300)
        XCTAssertEqual(rwRun.status, 0, rwRun.stderr)
        XCTAssertTrue(rwRun.stdout.contains("root file system not mounted read-write"), rwRun.stdout)
        XCTAssertTrue(rwRun.stdout.contains(" / ext4 ro,"), rwRun.stdout)

        // --no-gevulot-runtime: no shares and no worker config, so gvlt run's --command is not seen.
        XCTAssertEqual(try build(["--no-gevulot-runtime", "-o", "noruntime.img"], in: sandbox).status, 0)
        let root = try NvidiaImageTests.extract(
            ["etc/gvlt/config.yaml"], from: sandbox.path("noruntime.img"), into: sandbox.path("noruntime"))
        let config = try String(contentsOfFile: root + "/etc/gvlt/config.yaml", encoding: .utf8)
        XCTAssertFalse(config.contains("gevulot-input") || config.contains("follow-config"), config)
        let ignored = try GvltBinary.run(["run", "noruntime.img", "--accel", "tcg"] + shell, in: sandbox, timeout: 300)
        XCTAssertTrue(ignored.stdout.contains("no command to run"), ignored.stdout)
        XCTAssertFalse(ignored.stdout.contains("proc:"), ignored.stdout)
    }

    func testDiskOptionsSizeMBRAndInitBinary() throws {
        let sandbox = try Sandbox()
        try makeShellRoot(sandbox)
        let (initBinary, _) = try Images.built.get()
        // altmbr.bin (439 bytes) boots the partition named in byte 439: the FAT one is 1.
        var code = try Data(contentsOf: URL(fileURLWithPath: "/usr/lib/syslinux/mbr/altmbr.bin"))
        XCTAssertEqual(code.count, 439)
        code.append(1)
        try sandbox.write("alt.bin", code)
        try FileManager.default.copyItem(atPath: initBinary, toPath: sandbox.path("mia-init"))
        // --mia-version file:PATH installs that init, as --init-binary does (which `build` passes).
        let result = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--rootfs-dir", "root", "--cache-dir", Images.kernelCache,
                "-s", "64M", "--mbr-file", "alt.bin", "--mia-version", "file:" + sandbox.path("mia-init"), "-o",
                "disk.img"
            ],
            in: sandbox, environment: ["GVLT_INIT": "/nonexistent"], timeout: 600)
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = sandbox.path("disk.img")
        let attributes = try FileManager.default.attributesOfItem(atPath: image)
        XCTAssertEqual(attributes[.size] as? Int, 64 << 20)
        var info = stat()
        XCTAssertEqual(stat(image, &info), 0)
        XCTAssertLessThan(Int(info.st_blocks) * 512, 32 << 20, "the empty tail was written instead of left as a hole")
        let mbr = try Data(contentsOf: URL(fileURLWithPath: image)).prefix(512)
        XCTAssertEqual(mbr.prefix(440), code)
        // Partition 2 ends at the disk's end.
        func le32(_ offset: Int) -> Int {
            (0..<4).reduce(0) { $0 | Int(mbr[mbr.startIndex + offset + $1]) << (8 * $1) }
        }
        XCTAssertEqual((le32(0x1CE + 8) + le32(0x1CE + 12)) * 512, 64 << 20)
        let root = try NvidiaImageTests.extract(["usr/lib/gvlt/init"], from: image, into: sandbox.path("x"))
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: root + "/usr/lib/gvlt/init")),
            try Data(contentsOf: URL(fileURLWithPath: initBinary)))
        let run = try GvltBinary.run(
            ["run", "disk.img", "--accel", "tcg", "--command", "/bin/echo", "--args", "booted by altmbr"], in: sandbox,
            timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("booted by altmbr"), run.stdout)
        // The same inputs give the same bytes, hole included.
        XCTAssertEqual(
            try build(
                ["-s", "64M", "--mbr-file", "alt.bin", "--init-binary", sandbox.path("mia-init"), "-o", "again.img"],
                in: sandbox
            ).status, 0)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("again.img"))),
            try Data(contentsOf: URL(fileURLWithPath: image)))

        try sandbox.write("big.bin", Data(count: 600))
        try assertRefused(
            [
                (["-s", "2M"], "is too small: this image needs at least"),
                (["-s", "ten"], "--size `ten` is not a size"),
                (["--mbr-file", "big.bin"], "MBR boot code is at most 440 bytes"),
                (["--mbr-file", "none.bin"], "cannot read the MBR boot code none.bin")
            ], in: sandbox)
    }

    func testKernelVersionComesFromTheKernelURLRepository() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        // A repository with a tag, as gvltctl's -k VERSION --kernel-url takes; not a kernel tree, so
        // the source build that follows the checkout says so, naming the checkout.
        let repo = sandbox.path("linux-repo")
        try sandbox.write("linux-repo/README", Data("not a kernel\n".utf8))
        for command in [
            ["init", "-q", "-b", "main"], ["add", "README"],
            ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"], ["tag", "v0.1"]
        ] {
            _ = try HostCommand.run("/usr/bin/git", ["-C", repo] + command)
        }
        let cache = sandbox.path("cache")
        let result = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--rootfs-dir", "root", "-k", "v0.1", "--kernel-url", repo,
                "--cache-dir", cache, "-o", "x.img"
            ], in: sandbox, timeout: 300)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("is not a Linux source tree"), result.stderr)
        let checkouts = try FileManager.default.contentsOfDirectory(atPath: cache + "/entries/kernels/git")
        XCTAssertEqual(checkouts.count, 1)
        XCTAssertTrue(result.stderr.contains(cache + "/entries/kernels/git/" + checkouts[0] + "/tree"), result.stderr)
        XCTAssertEqual(
            try String(
                contentsOfFile: cache + "/entries/kernels/git/" + checkouts[0] + "/tree/README", encoding: .utf8),
            "not a kernel\n")

        let missing = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--rootfs-dir", "root", "-k", "v9.9", "--kernel-url", repo,
                "--cache-dir", cache, "-o", "x.img"
            ], in: sandbox, timeout: 300)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("check --kernel-url and the version"), missing.stderr)
        let mixed = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--rootfs-dir", "root", "-k", "debian", "--kernel-url", repo, "-o",
                "x.img"
            ], in: sandbox)
        XCTAssertTrue(mixed.stderr.contains("--kernel-url does not go with --kernel debian"), mixed.stderr)
    }

    func testShortContainerFlagAndDockerBackend() throws {
        if ProcessInfo.processInfo.environment["GVLT_TESTS_WITHOUT_PODMAN"] == "1" {
            throw XCTSkip("GVLT_TESTS_WITHOUT_PODMAN=1")
        }
        let sandbox = try Sandbox()
        try Images.makeImage(in: sandbox)
        let (initBinary, _) = try Images.built.get()
        // -c with --backend linuxvm is the container, as in gvltctl build -c.
        let short = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "-c", "oci:img", "-o", "c.img", "--init-binary", initBinary,
                "--cache-dir", Images.kernelCache, "--json"
            ], in: sandbox, timeout: 600)
        XCTAssertEqual(short.status, 0, short.stderr)
        let both = try GvltBinary.run(
            ["build", "--backend", "linuxvm", "-c", "oci:img", "--container", "oci:img", "-o", "x.img"], in: sandbox)
        XCTAssertTrue(both.stderr.contains("-c and --container both name the container"), both.stderr)

        // --container-backend docker runs `docker build` and `docker save`; podman's docker-compatible
        // CLI stands in for Docker, which needs a daemon this machine does not run.
        try sandbox.write(
            "ctx/Containerfile", Data("FROM scratch\nCOPY hello.txt /hello.txt\nENTRYPOINT [\"/hello\"]\n".utf8))
        try sandbox.write("ctx/hello.txt", Data("hello\n".utf8))
        try sandbox.writeExecutable(
            "bin/docker", "#!/bin/sh\necho \"docker $1\" >> \"\(sandbox.path("docker.log"))\"\nexec podman \"$@\"\n")
        let path = sandbox.path("bin") + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let docker = try GvltBinary.run(
            ["export", "--containerfile", "ctx/Containerfile", "--container-backend", "docker", "-o", "out.tar"],
            in: sandbox, environment: ["PATH": path], timeout: 300)
        XCTAssertEqual(docker.status, 0, docker.stderr)
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("docker.log"), encoding: .utf8),
            "docker build\ndocker save\ndocker rmi\n")
        XCTAssertTrue(try TarListing.of(sandbox.path("out.tar")).contains { $0.hasPrefix("hello.txt file") })
        let wrong = try GvltBinary.run(
            ["export", "--containerfile", "ctx/Containerfile", "--container-backend", "kaniko", "-o", "x.tar"],
            in: sandbox)
        XCTAssertTrue(wrong.stderr.contains("--container-backend `kaniko` is not podman or docker"), wrong.stderr)
    }

    func testKernelFileIsTheBootedKernel() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        XCTAssertEqual(try build(["-o", "first.img"], in: sandbox).status, 0)  // fills the kernel cache
        let debian = Images.kernelCache + "/entries/kernels/debian"
        let entry = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: debian).first {
                $0.hasPrefix("linux-image-") && !$0.contains("cloud")
            })
        let boot = debian + "/" + entry + "/boot"
        let files = try FileManager.default.contentsOfDirectory(atPath: boot)
        let kernel = boot + "/" + (try XCTUnwrap(files.first { $0.hasPrefix("vmlinuz-") }))
        let config = boot + "/" + (try XCTUnwrap(files.first { $0.hasPrefix("config-") }))
        let release = String(URL(fileURLWithPath: kernel).lastPathComponent.dropFirst("vmlinuz-".count))
        try FileManager.default.copyItem(atPath: kernel, toPath: sandbox.path("bzImage"))
        // gvltctl's --kernel-file, with the modules and config a Debian kernel needs beside it.
        let result = try build(
            [
                "--kernel-file", "bzImage", "--kernel-modules", debian + "/" + entry + "/lib/modules/" + release,
                "--kernel-config", config, "-o", "kf.img"
            ], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        try Images.shell([
            "mcopy", "-n", "-i", sandbox.path("kf.img") + "@@4096", "::/vmlinuz", sandbox.path("vmlinuz.out")
        ])
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("vmlinuz.out"))),
            try Data(contentsOf: URL(fileURLWithPath: kernel)))
        let run = try GvltBinary.run(
            ["run", "kf.img", "--accel", "tcg", "--command", "/usr/bin/probe"], in: sandbox, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr)
        let both = try build(["--kernel-file", "bzImage", "--kernel", "debian", "-o", "x.img"], in: sandbox)
        XCTAssertTrue(both.stderr.contains("name different kernels"), both.stderr)
    }
}
