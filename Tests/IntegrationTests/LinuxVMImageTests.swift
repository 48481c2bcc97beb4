import Core
import Foundation
import TestSupport
import XCTest

/// `gvlt build --backend linuxvm` end to end: the image boots from its own disk (SeaBIOS → SYSLINUX →
/// Debian kernel → initramfs → gvlt-init → the program) with the worker's QEMU flags, under TCG.
final class LinuxVMImageTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let work: String = {
        let path = NSTemporaryDirectory() + "gvlt-vmimage-" + UUID().uuidString
        RemoveAtEnd.register(path)
        return path
    }()
    /// Shared with LinuxVMTests, so the Debian kernel is downloaded once per machine.
    static let kernelCache = NSTemporaryDirectory() + "gvlt-test-kernel-cache"

    static let built: Result<(initBinary: String, program: Data), Error> = Result {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try shell(["bash", repository + "/scripts/build-init", work + "/gvlt-init"])
        try Data(
            """
            #include <signal.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <unistd.h>
            #include <sys/stat.h>
            #include <sys/sysmacros.h>
            int main(int argc, char **argv) {
                printf("prover says: %s\\n", argc > 1 ? argv[1] : "");
                printf("MODE=%s KEEP=%s\\n", getenv("MODE") ? getenv("MODE") : "-", getenv("KEEP") ? getenv("KEEP") : "-");
                printf("PATH=%s HOME=%s\\n", getenv("PATH") ? getenv("PATH") : "-", getenv("HOME") ? getenv("HOME") : "-");
                fflush(stdout);
                if (argc > 1 && strcmp(argv[1], "kill") == 0) raise(SIGKILL);
                if (argc > 1 && strcmp(argv[1], "hang") == 0) for (;;) pause();
                struct stat st;
                if (stat("/usr/bin/su-like", &st) == 0)
                    printf("su-like uid=%u gid=%u mode=%o\\n", st.st_uid, st.st_gid, st.st_mode & 07777);
                if (stat("/dev-in-image/ttyX", &st) == 0)
                    printf("ttyX chardev=%d major=%u minor=%u\\n", S_ISCHR(st.st_mode), major(st.st_rdev), minor(st.st_rdev));
                FILE *in = fopen("/mnt/gevulot/input/in.txt", "r"), *out = fopen("/mnt/gevulot/output/out.txt", "w");
                char line[256] = "";
                if (in && fgets(line, sizeof line, in) && out) fprintf(out, "got %s", line);
                if (out) fclose(out);
                fflush(stdout);
                return argc > 2 ? atoi(argv[2]) : 0;
            }
            """.utf8
        )
        .write(to: URL(fileURLWithPath: work + "/prover.c"))
        try shell(["gcc", "-static", "-O2", "-o", work + "/prover", work + "/prover.c"])
        return (work + "/gvlt-init", try Data(contentsOf: URL(fileURLWithPath: work + "/prover")))
    }

    static func shell(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "shell", code: Int(process.terminationStatus))
        }
    }

    /// An OCI layout holding the prover, a setuid file owned by 1000:1000 and a char device.
    static func makeImage(in sandbox: Sandbox) throws {
        let (_, program) = try Self.built.get()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([
            try layout.image(
                [
                    LayerFixture([
                        .dir("usr"), .dir("usr/bin"), TarMember("usr/bin/prover", .file(program), mode: 0o755)
                    ]),
                    LayerFixture([
                        TarMember("usr/bin/su-like", .file(Data("x".utf8)), mode: 0o4755, uid: 1000, gid: 1000),
                        .dir("dev-in-image"), TarMember("dev-in-image/ttyX", .characterDevice(4, 64), mode: 0o620)
                    ])
                ],
                config: [
                    "Entrypoint": ["/usr/bin/prover"], "Cmd": ["from-image"],
                    "Env": ["PATH=/usr/bin", "MODE=image", "KEEP=yes"]
                ])
        ])
    }

    static func build(
        _ sandbox: Sandbox, output: String = "vm.img", extra: [String] = [], environment: [String: String] = [:],
        timeout: Double = 600
    ) throws -> RunResult {
        let (initBinary, _) = try Self.built.get()
        return try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--container", "oci:img", "-o", output, "--init-binary", initBinary,
                "--cache-dir", Self.kernelCache
            ] + extra, in: sandbox, environment: environment, timeout: timeout)
    }

    /// Boots `image` exactly as the worker does and returns QEMU's status and console.
    static func boot(_ image: String, sandbox: Sandbox, workerConfig: String, input: String?) throws -> (
        Int32, String, String?
    ) {
        let run = sandbox.root + "/run-" + UUID().uuidString
        for share in ["input", "output", "rt-config"] {
            try FileManager.default.createDirectory(atPath: run + "/" + share, withIntermediateDirectories: true)
        }
        try Data(workerConfig.utf8).write(to: URL(fileURLWithPath: run + "/rt-config/config.yaml"))
        if let input { try Data(input.utf8).write(to: URL(fileURLWithPath: run + "/input/in.txt")) }
        let (status, console) = try WorkerQEMU.run(WorkerQEMU.arguments(disk: image, shares: run))
        return (status, console, try? String(contentsOfFile: run + "/output/out.txt", encoding: .utf8))
    }

    func testImageFromOCILayoutBootsOnTheWorkersFlagsAndKeepsMetadata() throws {
        let sandbox = try Sandbox()
        try Self.makeImage(in: sandbox)
        let result = try Self.build(sandbox, extra: ["--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(report["backend"] as? String, "linuxvm")
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch files left behind")

        let (status, console, output) = try Self.boot(
            sandbox.path("vm.img"), sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: "proof-input\n")
        XCTAssertTrue(console.contains("prover says: from-image"), console)
        // The guest sees the layer's metadata exactly.
        XCTAssertTrue(console.contains("su-like uid=1000 gid=1000 mode=4755"), console)
        XCTAssertTrue(console.contains("ttyX chardev=1 major=4 minor=64"), console)
        XCTAssertTrue(console.contains("gvlt-init: exit-status=0"), console)
        XCTAssertEqual(output, "got proof-input\n")
        XCTAssertEqual(status, 3, console)

        let (failStatus, failConsole, _) = try Self.boot(
            sandbox.path("vm.img"), sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                command: /usr/bin/prover
                args: [from-worker, "7"]
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: nil)
        XCTAssertTrue(
            failConsole.contains("prover says: from-worker") && failConsole.contains("gvlt-init: exit-status=7"),
            failConsole)
        XCTAssertNotEqual(failStatus, 3)
    }

    func testBuildsAreReproducibleAcrossDirectoriesAndClocks() throws {
        var digests: Set<String> = []
        for (index, epoch) in ["1700000000", "1700000000"].enumerated() {
            let sandbox = try Sandbox()
            try Self.makeImage(in: sandbox)
            if index == 1 { sleep(1) }
            let result = try Self.build(
                sandbox, output: "image-\(index).img", extra: ["--json"], environment: ["SOURCE_DATE_EPOCH": epoch])
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
            digests.insert(report["sha256"] as! String)
            let data = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("image-\(index).img")))
            XCTAssertEqual(report["sha256"] as? String, TarBuilder.sha256(data))
        }
        XCTAssertEqual(digests.count, 1, "two builds of the same input gave different images")
    }

    /// One image for the `gvlt run` tests.
    static let runImage: Result<String, Error> = Result {
        let sandbox = try Sandbox()
        try makeImage(in: sandbox)
        let result = try build(sandbox)
        guard result.status == 0 else { throw NSError(domain: "build: \(result.stderr)", code: 1) }
        let path = work + "/run.img"
        try FileManager.default.moveItem(atPath: sandbox.path("vm.img"), toPath: path)
        return path
    }

    func gvltRun(_ arguments: [String], in sandbox: Sandbox, timeout: Double = 300) throws -> RunResult {
        try GvltBinary.run(
            ["run", try Self.runImage.get(), "--accel", "tcg"] + arguments, in: sandbox, timeout: timeout)
    }

    func testRunWithInputAndOutputsReturnsZero() throws {
        let sandbox = try Sandbox()
        try sandbox.write("data/in.txt", Data("witness-123\n".utf8))
        let result = try gvltRun(
            ["--input", "data/in.txt:in.txt", "--output", "out.txt", "--output-dir", "results"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr + result.stdout)
        XCTAssertTrue(result.stdout.contains("prover says: from-image"), result.stdout)
        XCTAssertTrue(result.stdout.contains("MODE=image KEEP=yes"), result.stdout)
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("results/out.txt"), encoding: .utf8), "got witness-123\n")
        XCTAssertTrue(result.stderr.contains("the program exited with status 0"), result.stderr)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "temp dirs left behind")
    }

    func testRunOverridesCommandArgsAndEnvAndReturnsTheExactStatus() throws {
        let sandbox = try Sandbox()
        let result = try gvltRun(
            ["--env", "MODE=run", "--command", "/usr/bin/prover", "--args", "from-run", "7"], in: sandbox)
        XCTAssertEqual(result.status, 7, result.stderr)
        XCTAssertTrue(result.stdout.contains("prover says: from-run"), result.stdout)
        // The worker's env overrides MODE; the image's KEEP stays.
        XCTAssertTrue(result.stdout.contains("MODE=run KEEP=yes"), result.stdout)
        XCTAssertTrue(result.stderr.contains("the program exited with status 7"), result.stderr)
    }

    func testRunReportsAProgramKilledBySignal() throws {
        let sandbox = try Sandbox()
        let result = try gvltRun(["--args", "kill"], in: sandbox)
        XCTAssertEqual(result.status, 128 + 9, result.stderr)
        XCTAssertTrue(result.stderr.contains("the program was killed by signal 9"), result.stderr)
    }

    func testRunStopsAHangingProgramAtTheTimeout() throws {
        let sandbox = try Sandbox()
        let started = Date()
        let result = try gvltRun(["--timeout", "30", "--args", "hang"], in: sandbox)
        XCTAssertEqual(result.status, 124, result.stderr)
        XCTAssertTrue(result.stderr.contains("timed out after 30 s"), result.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }

    /// --print-qemu-command prepares the shares it names, so that the printed command, run by hand
    /// through a shell, boots the image and the program's output lands in the output share.
    func testThePrintedQEMUCommandRunsAsPrinted() throws {
        let sandbox = try Sandbox()
        try sandbox.write("data/in.txt", Data("witness-321\n".utf8))
        let printed = try gvltRun(
            ["--print-qemu-command", "--input", "data/in.txt:in.txt", "--shares-dir", "shares"], in: sandbox)
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(
            printed.stdout.contains("path=\(sandbox.path("shares"))/input,mount_tag=gevulot-input"), printed.stdout)
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("shares/input/in.txt"), encoding: .utf8), "witness-321\n")
        XCTAssertTrue(
            try String(contentsOfFile: sandbox.path("shares/rt-config/config.yaml"), encoding: .utf8)
                .contains("debug-exit"))
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        shell.arguments = ["300", "/bin/sh", "-c", printed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        shell.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
        shell.standardInput = FileHandle.nullDevice
        let console = Pipe()
        shell.standardOutput = console
        shell.standardError = console
        try shell.run()
        let text = String(decoding: console.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        // The worker's debug-exit success code, 3: the init wrote 1, and QEMU exits with (1 << 1) | 1.
        XCTAssertEqual(shell.terminationStatus, 3, text)
        XCTAssertTrue(text.contains("gvlt-init: exit-status=0"), text)
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("shares/output/out.txt"), encoding: .utf8), "got witness-321\n")

        let again = try gvltRun(["--print-qemu-command", "--shares-dir", "shares"], in: sandbox)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("--shares-dir \(sandbox.path("shares")) is not empty"), again.stderr)
        let fresh = try gvltRun(["--print-qemu-command"], in: sandbox)
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertTrue(fresh.stderr.contains("note: the shares are in \(sandbox.tmp)/gvlt-shares-"), fresh.stderr)
    }

    func testRunFailsWhenARequestedOutputIsMissingAndPrintsTheWorkersQEMUCommand() throws {
        let sandbox = try Sandbox()
        let result = try gvltRun(["--output", "never-written.txt"], in: sandbox)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(
            result.stderr.contains("requested outputs not written by the program: never-written.txt"), result.stderr)

        let printed = try gvltRun(
            ["--print-qemu-command", "--mem", "2G", "--smp", "2", "--gpu", "0000:01:00.0"], in: sandbox)
        XCTAssertEqual(printed.status, 0, printed.stderr)
        for flag in [
            "-machine q35", "-m 2048M", "-smp 2", "scsi-hd,bus=scsi0.0,drive=hd0", "readonly=on",
            "mount_tag=gevulot-input",
            "mount_tag=gevulot-output", "mount_tag=gevulot-rt-config", "isa-debug-exit,iobase=0xf4,iosize=0x4",
            "vfio-pci,rombar=0,host=0000:01:00.0"
        ] {
            XCTAssertTrue(printed.stdout.contains(flag), "\(flag) missing from \(printed.stdout)")
        }
        let bad = try GvltBinary.run(["run", "/nonexistent.img", "--accel", "tcg"], in: sandbox)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("does not exist"), bad.stderr)
    }

    /// The bundled example, packaged without a container engine (an OCI layout made here), run as a
    /// worker would with an input: the proof it writes is the witness's sha256.
    func testHelloProverExampleFromAnOCILayout() throws {
        let sandbox = try Sandbox()
        let (initBinary, _) = try Self.built.get()
        try Self.shell([
            "gcc", "-static", "-O2", "-o", sandbox.path("hello-prover"),
            Self.repository + "/examples/hello-prover/hello-prover.c"
        ])
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([
            try layout.image(
                [
                    LayerFixture([
                        .dir("usr"), .dir("usr/bin"),
                        TarMember(
                            "usr/bin/hello-prover",
                            .file(try Data(contentsOf: URL(fileURLWithPath: sandbox.path("hello-prover")))), mode: 0o755
                        )
                    ])
                ], config: ["Entrypoint": ["/usr/bin/hello-prover"], "Cmd": ["/mnt/gevulot/input/witness.txt"]])
        ])
        let build = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--container", "oci:img", "-o", "prover.img", "--init-binary",
                initBinary,
                "--cache-dir", Self.kernelCache
            ], in: sandbox, timeout: 600)
        XCTAssertEqual(build.status, 0, build.stderr)
        let witness = Self.repository + "/examples/hello-prover/witness.txt"
        let run = try GvltBinary.run(
            ["run", "prover.img", "--accel", "tcg", "--input", witness + ":witness.txt", "--output", "proof.txt"],
            in: sandbox, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        let expected = TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: witness))).dropFirst(7)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("output/proof.txt"), encoding: .utf8), expected + "\n")

        let failing = try GvltBinary.run(
            [
                "run", "prover.img", "--accel", "tcg", "--input", witness + ":witness.txt",
                "--args", "/mnt/gevulot/input/witness.txt", "5"
            ], in: sandbox, timeout: 300)
        XCTAssertEqual(failing.status, 5, failing.stderr)
    }

    /// An image that sets no PATH or HOME (podman import, a bare rootfs) gets what podman, docker and
    /// containerd would give it: the default PATH, and HOME from the user's passwd entry.
    func testAnImageWithoutPathOrHomeGetsTheContainerRuntimeDefaults() throws {
        let sandbox = try Sandbox()
        let (_, program) = try Self.built.get()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([
            try layout.image(
                [
                    LayerFixture([
                        .dir("usr"), .dir("usr/bin"), TarMember("usr/bin/prover", .file(program), mode: 0o755),
                        .dir("etc"),
                        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nprover:x:1000:1000::/home/prover:/bin/sh\n")
                    ])
                ],
                config: ["Entrypoint": ["/usr/bin/prover"], "Cmd": ["bare"], "User": "1000"])
        ])
        let built = try Self.build(sandbox, output: "bare.img")
        XCTAssertEqual(built.status, 0, built.stderr)
        let inspected = try GvltBinary.run(["inspect", "bare.img", "--json"], in: sandbox)
        let report = try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any]
        XCTAssertTrue(
            (report?["bakedConfig"] as? String ?? "").contains(
                "  - {key: \"PATH\", value: \"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"}\n  - {key: \"HOME\", value: \"/home/prover\"}\n"
            ), inspected.stdout)
        let (_, console, _) = try Self.boot(
            sandbox.path("bare.img"), sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: nil)
        XCTAssertTrue(console.contains("prover says: bare"), console)
        XCTAssertTrue(
            console.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/prover"),
            console)
    }

    /// A root directory has no config; --entrypoint, --cmd and --env give it one, and without them the
    /// build warns and names the flags.
    func testARootDirectoryBootsWithTheRunConfigFlags() throws {
        let sandbox = try Sandbox()
        let (initBinary, program) = try Self.built.get()
        try sandbox.write("root/usr/bin/prover", program)
        chmod(sandbox.path("root/usr/bin/prover"), 0o755)
        let common = [
            "build", "--rootfs-dir", "root", "--init-binary", initBinary, "--cache-dir", Self.kernelCache
        ]
        let bare = try GvltBinary.run(common + ["-o", "bare.img"], in: sandbox, timeout: 600)
        XCTAssertEqual(bare.status, 0, bare.stderr)
        XCTAssertTrue(bare.stderr.contains("backend: linuxvm (from --rootfs-dir)"), bare.stderr)
        XCTAssertTrue(bare.stderr.contains("names no command to run"), bare.stderr)
        XCTAssertTrue(bare.stderr.contains("pass --entrypoint (and --cmd)"), bare.stderr)

        let given = try GvltBinary.run(
            common + [
                "-o", "given.img", "--entrypoint", "/usr/bin/prover", "--cmd", "[\"from-flags\"]", "--env", "MODE=flag"
            ], in: sandbox, timeout: 600)
        XCTAssertEqual(given.status, 0, given.stderr)
        XCTAssertFalse(given.stderr.contains("names no command"), given.stderr)
        let (status, console, _) = try Self.boot(
            sandbox.path("given.img"), sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: nil)
        XCTAssertTrue(console.contains("prover says: from-flags"), console)
        XCTAssertTrue(console.contains("MODE=flag KEEP=-"), console)
        XCTAssertEqual(status, 3, console)
    }

    /// A real Debian root with python3 (mmdebstrap, cached across runs), as `podman import` gives it:
    /// no config, so no PATH. The entrypoint is `#!/usr/bin/env python3`; with the default PATH the
    /// image gets at build time, env finds /usr/bin/python3, whose sys.prefix is /usr, so the image's
    /// /usr/local/lib/python3.11/dist-packages is on sys.path.
    static let debianPython: Result<String, Error> = Result {
        let tar = NSTemporaryDirectory() + "gvlt-test-debian-python3-bookworm.tar"
        if FileManager.default.fileExists(atPath: tar) { return tar }
        let part = tar + ".part.tar"
        let made = try HostCommand.run(
            "/usr/bin/mmdebstrap",
            [
                "--quiet", "--variant=essential", "--include=python3-minimal", "bookworm", part,
                "deb http://deb.debian.org/debian bookworm main"
            ], check: false)
        guard made.status == 0 else {
            try? FileManager.default.removeItem(atPath: part)
            throw NSError(domain: "mmdebstrap failed: \(made.output)", code: 1)
        }
        try FileManager.default.moveItem(atPath: part, toPath: tar)
        return tar
    }

    func testDebianPythonWithoutPATHFindsItsUsrLocalPackages() throws {
        let sandbox = try Sandbox()
        let tar = try Self.debianPython.get()
        let (initBinary, _) = try Self.built.get()
        try FileManager.default.createDirectory(atPath: sandbox.path("root"), withIntermediateDirectories: true)
        XCTAssertEqual(
            try HostCommand.run("/bin/tar", ["-xf", tar, "-C", sandbox.path("root")], check: false).status, 0)
        let packages = try FileManager.default.contentsOfDirectory(atPath: sandbox.path("root/usr/lib"))
            .filter { $0.hasPrefix("python3.") }
        let version = try XCTUnwrap(packages.first, "no python3.X in the root")
        try sandbox.write(
            "root/usr/local/lib/\(version)/dist-packages/gvltprobe.py", Data("VALUE = 'from-usr-local'\n".utf8))
        _ = try sandbox.writeExecutable(
            "root/usr/local/bin/prove",
            "#!/usr/bin/env python3\nimport os, sys, gvltprobe\nprint('probe:', gvltprobe.VALUE, sys.prefix, os.environ['PATH'], os.environ['HOME'])\n"
        )
        let build = try GvltBinary.run(
            [
                "build", "--rootfs-dir", "root", "--entrypoint", "/usr/local/bin/prove", "-o", "py.img",
                "--init-binary", initBinary, "--cache-dir", Self.kernelCache
            ], in: sandbox, timeout: 900)
        XCTAssertEqual(build.status, 0, build.stderr)
        let inspect = try GvltBinary.run(["inspect", "py.img"], in: sandbox)
        XCTAssertTrue(
            inspect.stdout.contains(
                "{key: \"PATH\", value: \"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"}"),
            inspect.stdout)
        let (status, console, _) = try Self.boot(
            sandbox.path("py.img"), sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: nil)
        XCTAssertTrue(
            console.contains(
                "probe: from-usr-local /usr /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root"),
            console)
        XCTAssertEqual(status, 3, console)
    }

    func testInspectReportsWhatTheImageHolds() throws {
        let sandbox = try Sandbox()
        let image = try Self.runImage.get()
        let (initBinary, _) = try Self.built.get()
        let result = try GvltBinary.run(["inspect", image, "--json"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(
            report["sha256"] as? String, TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: image))))
        XCTAssertEqual(
            (report["partitions"] as? [[String: Any]])?.map { $0["type"] as? String }, ["FAT32 (LBA)", "Linux"])
        XCTAssertTrue((report["kernelRelease"] as? String ?? "").hasSuffix("-amd64"), "\(report)")
        XCTAssertTrue((report["initramfsModules"] as? [String] ?? []).contains("virtio_scsi"), "\(report)")
        XCTAssertEqual(report["rootFilesystem"] as? String, "squashfs")
        XCTAssertEqual(report["rootCompressor"] as? String, "zstd")
        XCTAssertEqual(
            report["initSHA256"] as? String, TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: initBinary))))
        XCTAssertTrue((report["bakedConfig"] as? String ?? "").contains("command: \"/usr/bin/prover\""), "\(report)")
        // The image's own PATH stays; the HOME it lacks is added, as a container runtime would.
        XCTAssertTrue(
            (report["bakedConfig"] as? String ?? "").contains(
                "  - {key: \"PATH\", value: \"/usr/bin\"}\n  - {key: \"MODE\", value: \"image\"}\n  - {key: \"KEEP\", value: \"yes\"}\n  - {key: \"HOME\", value: \"/\"}\n"
            ),
            "\(report)")

        try sandbox.write("not-an-image", Data(repeating: 7, count: 4096))
        let bad = try GvltBinary.run(["inspect", "not-an-image"], in: sandbox)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("not a Firestarter image"), bad.stderr)
    }

    /// `--kernel file:` with Debian's cloud kernel, which has no 9p: refused before anything is built,
    /// naming the missing options.
    func testCloudKernelGivenAsAFileIsRefusedNamingTheMissingOptions() throws {
        let sandbox = try Sandbox()
        try Self.makeImage(in: sandbox)
        let download = Process()
        download.executableURL = URL(fileURLWithPath: "/usr/bin/apt-get")
        download.arguments = ["download", "-q", "linux-image-cloud-amd64"]
        download.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
        try download.run()
        download.waitUntilExit()
        // The metapackage names the real kernel package; fetch and unpack that one.
        let meta = try FileManager.default.contentsOfDirectory(atPath: sandbox.work).first {
            $0.hasPrefix("linux-image-cloud-amd64")
        }!
        let control = Process()
        control.executableURL = URL(fileURLWithPath: "/usr/bin/dpkg-deb")
        control.arguments = ["-f", sandbox.path(meta), "Depends"]
        let pipe = Pipe()
        control.standardOutput = pipe
        try control.run()
        control.waitUntilExit()
        let depends = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let package = String(
            depends.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("linux-image-") }!.split(separator: " ").first!)
        try Self.shell([
            "bash", "-c",
            "cd '\(sandbox.work)' && apt-get download -q \(package) >/dev/null 2>&1 && dpkg-deb -x \(package)_*.deb cloud"
        ])
        let boot = try FileManager.default.contentsOfDirectory(atPath: sandbox.path("cloud/boot"))
        let vmlinuz = try XCTUnwrap(boot.first { $0.hasPrefix("vmlinuz-") })
        let release = String(vmlinuz.dropFirst("vmlinuz-".count))
        let result = try Self.build(
            sandbox,
            extra: [
                "--kernel", "file:" + sandbox.path("cloud/boot/" + vmlinuz),
                "--kernel-config", sandbox.path("cloud/boot/config-" + release),
                "--kernel-modules", sandbox.path("cloud/lib/modules/" + release)
            ])
        XCTAssertEqual(result.status, 1, result.stderr)
        for option in ["CONFIG_NET_9P:", "CONFIG_NET_9P_VIRTIO:", "CONFIG_9P_FS:"] {
            XCTAssertTrue(result.stderr.contains(option), "\(option) not named: \(result.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("vm.img")))
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }

    func testExt4RootBootsWithExactMetadataAndIsReproducible() throws {
        var digests: Set<String> = []
        var lastImage = ""
        var lastSandbox: Sandbox?
        for index in 0..<2 {
            let sandbox = try Sandbox()
            try Self.makeImage(in: sandbox)
            let result = try Self.build(
                sandbox, extra: ["--root-fs", "ext4", "--json"], environment: ["SOURCE_DATE_EPOCH": "1700000000"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
            digests.insert(report["sha256"] as! String)
            lastImage = sandbox.path("vm.img")
            lastSandbox = sandbox
            if index == 0 { sleep(1) }
        }
        XCTAssertEqual(digests.count, 1, "two ext4 builds of the same input differ")
        let sandbox = try XCTUnwrap(lastSandbox)
        let inspect = try GvltBinary.run(["inspect", lastImage, "--json"], in: sandbox)
        XCTAssertTrue(inspect.stdout.contains("\"rootFilesystem\" : \"ext4\""), inspect.stdout)
        let (status, console, output) = try Self.boot(
            lastImage, sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: "ext4-input\n")
        XCTAssertTrue(console.contains("su-like uid=1000 gid=1000 mode=4755"), console)
        XCTAssertTrue(console.contains("ttyX chardev=1 major=4 minor=64"), console)
        XCTAssertEqual(output, "got ext4-input\n")
        XCTAssertEqual(status, 3, console)
    }
}
