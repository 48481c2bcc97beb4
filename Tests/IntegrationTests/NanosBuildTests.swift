import Core
import Foundation
import Nanos
import TestSupport
import XCTest

/// `gvlt build --backend nanos` end to end, against a stub release made in the test (the golden
/// boot.img, whose region record is real, a kernel file and a klib): the seed manifests unchanged,
/// the root tuple each gives, reproducibility, and every bad input refused with nothing written.
final class NanosBuildTests: XCTestCase {
    static let golden =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/Tests/Fixtures/nanos-golden"

    /// A release directory, a dynamic C program called `prover`, and the seed manifests, in `dir`.
    func prepare(_ sandbox: Sandbox, program: String = "prover") throws {
        let inputs = Self.golden + "/ops-layout/inputs"
        try sandbox.write("release/boot.img", try Data(contentsOf: URL(fileURLWithPath: inputs + "/boot.img")))
        try sandbox.write("release/kernel.img", try Data(contentsOf: URL(fileURLWithPath: inputs + "/kernel.img")))
        try sandbox.write(
            "release/klibs/gpu_nvidia", try Data(contentsOf: URL(fileURLWithPath: inputs + "/klibs/gpu_nvidia")))
        try sandbox.write(
            "prover.c",
            Data("#include <stdio.h>\nint main(int c, char **v) { printf(\"hi %d\\n\", c); return 0; }\n".utf8))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
        process.arguments = ["-O1", "-o", sandbox.path(program), sandbox.path("prover.c")]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }

    static let proverJSON = """
        {
          "ManifestPassthrough": {
            "readonly_rootfs": "true"
          },
          "Env":{
            "RUST_BACKTRACE": "1",
            "RUST_LOG": "debug"
          },
          "Program":"prover",
          "Mounts": {
            "%1": "/workspace"
          }
        }
        """

    static let deviceQueryManifest = """
        {
          "RebootOnExit": true,
          "RunConfig": {
            "CPUs": 2,
            "Memory": "2g",
            "GPUs": 1
          },
          "KlibDir": "/build",
          "Klibs": ["gpu_nvidia"],
          "Env":{
            "RUST_BACKTRACE": "1",
            "RUST_LOG": "trace"
          },
          "Program":"deviceQuery",
          "Dirs": ["lib", "nvidia"],
          "Files": ["/lib/x86_64-linux-gnu/libdl.so.2", "/lib/x86_64-linux-gnu/libpthread.so.0", "/lib/x86_64-linux-gnu/librt.so.1"],
          "Mounts": {
            "%1": "/workspace"
          }
        }
        """

    func build(_ sandbox: Sandbox, _ arguments: [String], memoryLimit: Int? = nil) throws -> RunResult {
        try GvltBinary.run(
            ["build", "--backend", "nanos", "--nanos-dir", "release"] + arguments, in: sandbox, memoryLimit: memoryLimit
        )
    }

    func rootTuple(_ image: String) throws -> TFSTuple {
        try NanosImageReader.open(image).root.root
    }

    func testSeedProverManifestBuildsWithTheExpectedRootTuple() throws {
        for name in ["prover.json", "my_prover.json"] {
            let sandbox = try Sandbox()
            let program = name == "prover.json" ? "prover" : "my_prover"
            try prepare(sandbox, program: program)
            try sandbox.write(
                name,
                Data(
                    Self.proverJSON.replacingOccurrences(
                        of: "\"Program\":\"prover\"", with: "\"Program\":\"\(program)\""
                    ).utf8))
            // As the seed runs it: the program argument, then -c.
            let result = try build(sandbox, ["./\(program)", "-c", name])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, "Bootable image file:\(sandbox.path(program + ".img"))\n")
            let root = try rootTuple(sandbox.path(program + ".img"))
            XCTAssertEqual(root.text("program"), "/\(program)")
            XCTAssertEqual(root["arguments"], .vector([.string(program)]))
            XCTAssertEqual(root.text("readonly_rootfs"), "true")
            XCTAssertEqual(root.tuple("mounts")?.text("%1"), "/workspace")
            let env = try XCTUnwrap(root.tuple("environment"))
            XCTAssertEqual(env.text("USER"), "root")
            XCTAssertEqual(env.text("PWD"), "/")
            XCTAssertEqual(env.text("RUST_LOG"), "debug")
            XCTAssertEqual(env.text("RUST_BACKTRACE"), "1")
            XCTAssertEqual(env.text("IMAGE_NAME"), program)
            let children = try XCTUnwrap(root.tuple("children"))
            XCTAssertEqual(children.tuple("workspace")?.tuple("children")?.count, 0)
            XCTAssertNotNil(children.tuple(program)?["extents"])
            // What ops always adds, byte for byte.
            let image = try NanosImageReader.open(sandbox.path(program + ".img"))
            func read(_ path: String) throws -> String {
                var bytes = Data()
                try image.root.read(try XCTUnwrap(image.root.entry(at: path), path), path: path) {
                    bytes.append(contentsOf: $0)
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            XCTAssertEqual(try read("/etc/resolv.conf"), "nameserver  8.8.8.8\n")
            XCTAssertEqual(try read("/etc/passwd"), "root:x:0:0:root:/root:/bin/nobash")
            XCTAssertEqual(try read("/proc/sys/kernel/hostname"), "uniboot")
            // The dynamic program brought its loader and libc, found by reading the ELF.
            XCTAssertNotNil(image.root.entry(at: "/lib64/ld-linux-x86-64.so.2")?["extents"])
            XCTAssertNotNil(image.root.entry(at: "/lib/x86_64-linux-gnu/libc.so.6")?["extents"])
            XCTAssertEqual(image.boot.entry(at: "/kernel")?["filelength"]?.unsigned, 300_000)
            XCTAssertNil(root["klibs"])
            XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch files left behind")
        }
    }

    func testSeedGPUManifestIsAcceptedUnchangedAndItsGPUSetupChecked() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox, program: "deviceQuery")
        try sandbox.write("deviceQuery.manifest", Data(Self.deviceQueryManifest.utf8))
        try sandbox.write("lib/x86_64-linux-gnu/libcuda.so.1", Data("stand-in".utf8))
        try sandbox.write("nvidia/535.113.01/gsp_ga10x.bin", Data("firmware".utf8))
        try sandbox.write("nvidia/535.113.01/gsp_tu10x.bin", Data("firmware".utf8))
        try sandbox.write("release/klibs/gpu_nvidia", Self.placeholderKlib("535.113.01"))
        // Verbatim, KlibDir /build does not exist on this machine: the manifest parses, and the
        // missing klib is the one error.
        let verbatim = try build(sandbox, ["deviceQuery", "-c", "deviceQuery.manifest"])
        XCTAssertEqual(verbatim.status, 1)
        XCTAssertTrue(verbatim.stderr.contains("klib `gpu_nvidia` is not in /build"), verbatim.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("deviceQuery.img")))

        // With KlibDir pointing at the stub release's klibs, it builds.
        try sandbox.write(
            "gpu.manifest",
            Data(Self.deviceQueryManifest.replacingOccurrences(of: "\"/build\"", with: "\"release/klibs\"").utf8))
        let result = try build(sandbox, ["deviceQuery", "-c", "gpu.manifest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = try NanosImageReader.open(sandbox.path("deviceQuery.img"))
        let root = image.root.root
        XCTAssertEqual(root.text("klibs"), "bootfs")
        XCTAssertEqual(root.text("reboot_on_exit"), "t")
        XCTAssertEqual(root.text("program"), "/deviceQuery")
        XCTAssertNotNil(image.boot.entry(at: "/klib/gpu_nvidia"))
        XCTAssertNotNil(image.root.entry(at: "/nvidia/535.113.01/gsp_ga10x.bin"))
        XCTAssertNotNil(image.root.entry(at: "/lib/x86_64-linux-gnu/libcuda.so.1"))
        XCTAssertNotNil(image.root.entry(at: "/lib/x86_64-linux-gnu/librt.so.1"))

        // GPU checks: no firmware, or a read-only root, are refused with the reason.
        try FileManager.default.removeItem(atPath: sandbox.path("nvidia/535.113.01/gsp_ga10x.bin"))
        let noFirmware = try build(sandbox, ["deviceQuery", "-c", "gpu.manifest", "-o", "x.img"])
        XCTAssertEqual(noFirmware.status, 1)
        XCTAssertTrue(noFirmware.stderr.contains("the gpu_nvidia klib is NVIDIA driver 535.113.01"), noFirmware.stderr)
        XCTAssertTrue(noFirmware.stderr.contains("lacks /nvidia/535.113.01/gsp_ga10x.bin"), noFirmware.stderr)
        try sandbox.write("nvidia/535.113.01/gsp_ga10x.bin", Data("firmware".utf8))

        // Firmware of another driver version: the expected paths and what is there are named.
        try FileManager.default.moveItem(
            atPath: sandbox.path("nvidia/535.113.01"), toPath: sandbox.path("nvidia/535.104.05"))
        let otherVersion = try build(sandbox, ["deviceQuery", "-c", "gpu.manifest", "-o", "x.img"])
        XCTAssertEqual(otherVersion.status, 1)
        XCTAssertTrue(
            otherVersion.stderr.contains("/nvidia/535.113.01/gsp_ga10x.bin and /nvidia/535.113.01/gsp_tu10x.bin"),
            otherVersion.stderr)
        XCTAssertTrue(otherVersion.stderr.contains("has firmware for 535.104.05 instead"), otherVersion.stderr)
        try FileManager.default.moveItem(
            atPath: sandbox.path("nvidia/535.104.05"), toPath: sandbox.path("nvidia/535.113.01"))

        // CUDA driver libraries of another version, and a klib that does not say its version.
        try sandbox.write("lib/x86_64-linux-gnu/libcuda.so.550.54.14", Data("stand-in".utf8))
        let libraries = try build(sandbox, ["deviceQuery", "-c", "gpu.manifest", "-o", "x.img"])
        XCTAssertEqual(libraries.status, 1)
        XCTAssertTrue(
            libraries.stderr.contains("driver 535.113.01")
                && libraries.stderr.contains("/lib/x86_64-linux-gnu/libcuda.so.550.54.14"), libraries.stderr)
        try FileManager.default.removeItem(atPath: sandbox.path("lib/x86_64-linux-gnu/libcuda.so.550.54.14"))
        try sandbox.write("release/klibs/gpu_nvidia", Data("a klib without a version\n".utf8))
        let unversioned = try build(sandbox, ["deviceQuery", "-c", "gpu.manifest", "-o", "x.img"])
        XCTAssertEqual(unversioned.status, 1)
        XCTAssertTrue(unversioned.stderr.contains("carries no NVIDIA identification string"), unversioned.stderr)
        try sandbox.write("release/klibs/gpu_nvidia", Self.placeholderKlib("535.113.01"))
        try sandbox.write(
            "ro.manifest",
            Data(
                Self.deviceQueryManifest.replacingOccurrences(of: "\"/build\"", with: "\"release/klibs\"")
                    .replacingOccurrences(
                        of: "\"RebootOnExit\": true,",
                        with: "\"RebootOnExit\": true, \"ManifestPassthrough\": {\"readonly_rootfs\": \"true\"},"
                    ).utf8))
        let readOnly = try build(sandbox, ["deviceQuery", "-c", "ro.manifest", "-o", "x.img"])
        XCTAssertEqual(readOnly.status, 1)
        XCTAssertTrue(readOnly.stderr.contains("/dev/nvidiactl"), readOnly.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
    }

    /// A stand-in gpu_nvidia klib: bytes around the identification string NVIDIA's code logs when it
    /// loads, which is where gvlt reads the driver version from.
    static func placeholderKlib(_ version: String) -> Data {
        Data(
            "\u{7F}ELF placeholder gpu_nvidia klib\u{0}NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  \(version)  Release Build  (test)\u{0}"
                .utf8)
    }

    /// `--accel nvidia` adds the klib and the firmware to a manifest that has neither.
    func testAccelNvidiaAddsTheKlibAndTheFirmwareOfTheKlibsVersion() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox, program: "deviceQuery")
        try sandbox.write("plain.manifest", Data(#"{"Program": "deviceQuery", "RunConfig": {"GPUs": 1}}"#.utf8))
        try sandbox.write("klib/gpu_nvidia", Self.placeholderKlib("535.113.01"))
        try sandbox.write("fw/535.113.01/gsp_ga10x.bin", Data("ga10x".utf8))
        try sandbox.write("fw/535.113.01/gsp_tu10x.bin", Data("tu10x".utf8))
        let result = try build(
            sandbox,
            [
                "deviceQuery", "-c", "plain.manifest", "--accel", "nvidia", "--nvidia-klib", "klib/gpu_nvidia",
                "--nvidia-firmware", "fw"
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = try NanosImageReader.open(sandbox.path("deviceQuery.img"))
        XCTAssertEqual(image.root.root.text("klibs"), "bootfs")
        XCTAssertNotNil(image.boot.entry(at: "/klib/gpu_nvidia"))
        XCTAssertNotNil(image.root.entry(at: "/nvidia/535.113.01/gsp_ga10x.bin"))
        XCTAssertNotNil(image.root.entry(at: "/nvidia/535.113.01/gsp_tu10x.bin"))

        // The klib decides the version: firmware for another one, or another --nvidia-version, is refused.
        try sandbox.write("klib/gpu_nvidia", Self.placeholderKlib("550.54.14"))
        let mismatch = try build(
            sandbox,
            [
                "deviceQuery", "-c", "plain.manifest", "--accel", "nvidia", "--nvidia-klib", "klib/gpu_nvidia",
                "--nvidia-firmware", "fw", "-o", "x.img"
            ])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.stderr.contains("has no gsp_ga10x.bin for driver 550.54.14"), mismatch.stderr)
        let pinned = try build(
            sandbox,
            [
                "deviceQuery", "-c", "plain.manifest", "--accel", "nvidia", "--nvidia-klib", "klib/gpu_nvidia",
                "--nvidia-version", "535.113.01", "-o", "x.img"
            ])
        XCTAssertEqual(pinned.status, 1)
        XCTAssertTrue(
            pinned.stderr.contains("--nvidia-version is 535.113.01, but the klib klib/gpu_nvidia is driver 550.54.14"),
            pinned.stderr)
        let linuxOnly = try build(
            sandbox, ["deviceQuery", "-c", "plain.manifest", "--accel", "nvidia", "--require-gpu", "-o", "x.img"])
        XCTAssertEqual(linuxOnly.status, 1)
        XCTAssertTrue(linuxOnly.stderr.contains("--require-gpu is for Linux VM images"), linuxOnly.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
    }

    /// An external (exec) accelerator's files and env reach a Nanos image; what Nanos cannot hold
    /// (Linux kernel modules) is refused, naming the accelerator.
    func testExternalAcceleratorContributionsReachTheNanosImage() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("plain.manifest", Data(#"{"Program": "prover", "Env": {"A": "1"}}"#.utf8))
        try sandbox.writeExecutable(
            "accel.py",
            """
            #!/usr/bin/env python3
            import json, os, sys
            request = json.loads(sys.stdin.readline())
            def send(m): print(json.dumps(m), flush=True)
            if request["method"] == "describe":
                send({"type": "result", "result": {"name": "cfg", "protocol": "gvlt-plugin/1.0", "role": "accelerator",
                      "capabilities": {"backends": ["nanos"]}}})
            else:
                p = request["params"]
                result = {"files": [{"path": "etc/cfg/app.conf", "text": "klibs in %s\\n" % os.path.basename(p["target"]["klib_dir"])},
                                    {"path": "etc/cfg/current", "type": "symlink", "target": "app.conf"},
                                    {"path": "var/cfg", "type": "dir"}],
                          "env": [{"key": "CFG_MODE", "value": "fast"}]}
                if os.environ.get("WITH_MODULE"): result["kernel_modules"] = ["loop"]
                send({"type": "result", "result": result})
            """)
        var env = try sandbox.pluginsFile([
            #"{"name": "cfg", "kind": "exec", "role": "accelerator", "path": "\#(sandbox.path("accel.py"))"}"#
        ])
        let arguments = [
            "build", "--backend", "nanos", "--nanos-dir", "release", "prover", "-c", "plain.manifest", "--accel", "cfg"
        ]
        let result = try GvltBinary.run(arguments, in: sandbox, environment: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = try NanosImageReader.open(sandbox.path("prover.img"))
        var bytes = Data()
        try image.root.read(try XCTUnwrap(image.root.entry(at: "/etc/cfg/app.conf")), path: "/etc/cfg/app.conf") {
            bytes.append(contentsOf: $0)
        }
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "klibs in klibs\n")
        XCTAssertEqual(image.root.entry(at: "/etc/cfg/current")?.text("linktarget"), "app.conf")
        XCTAssertNotNil(image.root.entry(at: "/var/cfg")?.tuple("children"))
        let environment = try XCTUnwrap(image.root.root.tuple("environment"))
        XCTAssertEqual(environment.text("CFG_MODE"), "fast")
        XCTAssertEqual(environment.text("A"), "1")

        env["WITH_MODULE"] = "1"
        let refused = try GvltBinary.run(arguments + ["-o", "x.img"], in: sandbox, environment: env)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(
            refused.stderr.contains(
                "accelerator `cfg` asks for Linux kernel module loop, and a Nanos image cannot load Linux modules"),
            refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
    }

    func testOpsBuildOptionsArgsImageNameAndNightly() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("prover.json", Data(Self.proverJSON.utf8))
        try sandbox.write("args.json", Data(#"{"Program": "prover", "Args": ["from-manifest"]}"#.utf8))
        // ops build -a replaces Args; -i names the image, which lands in ~/.ops/images without -o.
        let result = try build(
            sandbox, ["prover", "-c", "args.json", "-a", "one", "-a", "two words", "-i", "prover-v1.2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = sandbox.home + "/.ops/images/prover-v1.2"
        XCTAssertEqual(result.stdout, "Bootable image file:\(image)\n")
        let root = try rootTuple(image)
        XCTAssertEqual(root["arguments"], .vector([.string("prover"), .string("one"), .string("two words")]))
        XCTAssertEqual(root.tuple("environment")?.text("IMAGE_NAME"), "prover-v1.2")
        // -o still wins over the ops location; --imagename is -i's long form.
        let named = try build(sandbox, ["prover", "-c", "args.json", "--imagename", "p2", "-o", "here.img"])
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertEqual(try rootTuple(sandbox.path("here.img")).tuple("environment")?.text("IMAGE_NAME"), "p2")
        XCTAssertEqual(
            try rootTuple(sandbox.path("here.img"))["arguments"], .vector([.string("prover"), .string("from-manifest")])
        )

        for (arguments, message) in [
            (["-n"], "--nightly needs the network"), (["-i", "a/b"], "--imagename `a/b` is not an image name"),
            (["-i", "x", "--imagename", "y"], "-i and --imagename both name the image"),
            (["--manifest", "args.json"], "-c and --manifest both name the manifest")
        ] {
            let failed = try build(sandbox, ["prover", "-c", "args.json", "-o", "x.img"] + arguments)
            XCTAssertEqual(failed.status, 1, "\(arguments): \(failed.stderr)")
            XCTAssertTrue(failed.stderr.contains(message), "\(arguments): \(failed.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
        }

        // --nanos-version takes ~/.ops/VERSION, as ops keeps releases; --force overwrites, and only it.
        try FileManager.default.createDirectory(atPath: sandbox.home + "/.ops", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: sandbox.path("release"), toPath: sandbox.home + "/.ops/0.1.53")
        let versioned = try GvltBinary.run(
            ["build", "--backend", "nanos", "prover", "-c", "args.json", "--nanos-version", "0.1.53", "-o", "v.img"],
            in: sandbox)
        XCTAssertEqual(versioned.status, 0, versioned.stderr)
        XCTAssertEqual(
            try NanosImageReader.open(sandbox.path("v.img")).boot.entry(at: "/kernel")?["filelength"]?.unsigned, 300_000
        )
        let again = try build(sandbox, ["prover", "-c", "args.json", "-o", "v.img"])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("exists"), again.stderr)
        XCTAssertEqual(try build(sandbox, ["prover", "-c", "args.json", "-o", "v.img", "--force"]).status, 0)

        // gvlt run for Nanos: a task's resources win over the manifest's RunConfig, flags over both;
        // what a Nanos image fixes at build time is refused.
        try sandbox.write("run.json", Data(#"{"Program": "prover", "RunConfig": {"CPUs": 2, "Memory": "3g"}}"#.utf8))
        try sandbox.write(
            "task.yaml", Data("kind: Task\nversion: v0\nspec:\n  resources: {cpus: 1, memory: 1GiB}\n".utf8))
        func qemu(_ arguments: [String]) throws -> [String] {
            let run = try GvltBinary.run(
                ["run", "here.img", "--print-qemu-command", "--accel", "tcg", "-c", "run.json"] + arguments, in: sandbox
            )
            XCTAssertEqual(run.status, 0, run.stderr)
            return run.stdout.split(separator: " ").map(String.init)
        }
        func value(_ flag: String, _ words: [String]) -> String? { words.firstIndex(of: flag).map { words[$0 + 1] } }
        let manifestOnly = try qemu([])
        XCTAssertEqual(value("-smp", manifestOnly), "2")
        XCTAssertEqual(value("-m", manifestOnly), "3072M")
        let task = try qemu(["-f", "task.yaml"])
        XCTAssertEqual(value("-smp", task), "1")
        XCTAssertEqual(value("-m", task), "1024M")
        XCTAssertEqual(value("-smp", try qemu(["-f", "task.yaml", "-s", "2"])), "2")
        try sandbox.write("cmd.yaml", Data("kind: Task\nversion: v0\nspec:\n  command: [/x]\n".utf8))
        let refused = try GvltBinary.run(["run", "here.img", "-f", "cmd.yaml", "--print-qemu-command"], in: sandbox)
        XCTAssertTrue(refused.stderr.contains("the task's command is for Linux VM images"), refused.stderr)
    }

    /// gvlt linked as `ops` runs the seed Containerfile's line unchanged: the release from
    /// ~/.ops/0.1.51, the image in ~/.ops/images/deviceQuery, ops' line on stdout, and the bytes of
    /// `gvlt build --backend nanos` of the same inputs.
    func testOpsPersonalityRunsTheSeedDeviceQueryLine() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox, program: "deviceQuery")
        let release = sandbox.home + "/.ops/0.1.51"
        try FileManager.default.createDirectory(atPath: sandbox.home + "/.ops", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: sandbox.path("release"), toPath: release)
        try Self.placeholderKlib("535.113.01").write(to: URL(fileURLWithPath: release + "/klibs/gpu_nvidia"))
        try FileManager.default.removeItem(atPath: sandbox.path("release"))
        // The seed's KlibDir is /build, where its Containerfile builds the klib; here it is the release's.
        try sandbox.write(
            "deviceQuery.manifest",
            Data(Self.deviceQueryManifest.replacingOccurrences(of: "\"/build\"", with: "\"\(release)/klibs\"").utf8))
        try sandbox.write("lib/x86_64-linux-gnu/libcuda.so.1", Data("stand-in".utf8))
        try sandbox.write("nvidia/535.113.01/gsp_ga10x.bin", Data("firmware".utf8))
        try sandbox.write("nvidia/535.113.01/gsp_tu10x.bin", Data("firmware".utf8))
        let ops = try GvltBinary.link(named: "ops", in: sandbox)
        func run(_ arguments: [String]) throws -> RunResult {
            try GvltBinary.run(arguments, in: sandbox, executable: ops)
        }

        let line = ["build", "deviceQuery", "--nanos-version", "0.1.51", "-c", "deviceQuery.manifest"]
        let built = try run(line)
        XCTAssertEqual(built.status, 0, built.stderr)
        let image = sandbox.home + "/.ops/images/deviceQuery"
        XCTAssertEqual(built.stdout, "Bootable image file:\(image)\n")
        let gvlt = try GvltBinary.run(
            [
                "build", "--backend", "nanos", "deviceQuery", "--nanos-version", "0.1.51", "-c", "deviceQuery.manifest",
                "-o", "gvlt.img"
            ], in: sandbox)
        XCTAssertEqual(gvlt.status, 0, gvlt.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: image)),
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("gvlt.img"))), "ops build and gvlt build differ")
        XCTAssertNotNil(try NanosImageReader.open(image).boot.entry(at: "/klib/gpu_nvidia"))
        // ops overwrites its image without asking.
        XCTAssertEqual(try run(line).status, 0)

        // ops' -i keeps the base name up to its first dot; -a replaces Args, -e adds to Env.
        let named = try run(line + ["-i", "out/dq.v2.img", "-a", "--device", "-e", "CUDA_VISIBLE_DEVICES=0"])
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertEqual(named.stdout, "Bootable image file:\(sandbox.home)/.ops/images/dq\n")
        let root = try rootTuple(sandbox.home + "/.ops/images/dq")
        XCTAssertEqual(root["arguments"], .vector([.string("deviceQuery"), .string("--device")]))
        XCTAssertEqual(root.tuple("environment")?.text("CUDA_VISIBLE_DEVICES"), "0")
        XCTAssertEqual(root.tuple("environment")?.text("IMAGE_NAME"), "dq")

        let list = try run(["image", "list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let rows = list.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        XCTAssertEqual(rows.first.map { Array($0.prefix(4)) }, ["NAME", "PATH", "SIZE", "CREATEDAT"])
        XCTAssertEqual(rows.dropFirst().map { String($0[0]) }, ["deviceQuery", "dq"], list.stdout)
        XCTAssertEqual(rows.dropFirst().map { String($0[1]) }, [image, sandbox.home + "/.ops/images/dq"])

        // What needs the network or a cloud says so, and writes nothing.
        for (arguments, message) in [
            (["pkg", "load", "eyberg/node:20.5.0", "-a", "hi.js"], "ops pkg works with ops' package registry"),
            (["instance", "create", "dq"], "ops instance manages cloud"),
            (["build", "deviceQuery", "-t", "gcp", "-c", "deviceQuery.manifest"], "-t gcp: building for a cloud"),
            (["build", "deviceQuery", "-n"], "--nightly needs the network"),
            (["run", "deviceQuery", "-p", "8080"], "ops run -p/--port is not available")
        ] {
            let refused = try run(arguments)
            XCTAssertEqual(refused.status, 1, "\(arguments): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: sandbox.home + "/.ops/images")),
            ["deviceQuery", "dq"])
    }

    /// A file's bytes in a TFS volume, or nil when there is none.
    static func fileData(_ volume: TFSVolume, _ path: String) throws -> Data? {
        guard let entry = volume.entry(at: path) else { return nil }
        var data = Data()
        try volume.read(entry, path: path) { data.append(contentsOf: $0) }
        return data
    }

    /// ops copies the host file or directory Args[1] names into the image; DisableArgsCopy stops it.
    func testArgsCopyAndDisableArgsCopy() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("app.js", Data("console.log('hi')\n".utf8))
        try sandbox.write("site/index.html", Data("<p>hi</p>\n".utf8))
        try sandbox.write("copy.json", Data(#"{"Program": "prover", "Args": ["app.js", "--port", "8080"]}"#.utf8))
        let copied = try build(sandbox, ["prover", "-c", "copy.json", "-o", "copy.img"])
        XCTAssertEqual(copied.status, 0, copied.stderr)
        XCTAssertTrue(copied.stderr.contains("Args[1] `app.js` exists on this host"), copied.stderr)
        let image = try NanosImageReader.open(sandbox.path("copy.img"))
        XCTAssertEqual(try Self.fileData(image.root, "/app.js"), Data("console.log('hi')\n".utf8))
        XCTAssertNil(image.root.entry(at: "/8080"))

        let directory = try build(sandbox, ["prover", "-c", "copy.json", "-a", "site", "-o", "dir.img"])
        XCTAssertEqual(directory.status, 0, directory.stderr)
        let withDirectory = try NanosImageReader.open(sandbox.path("dir.img"))
        XCTAssertEqual(try Self.fileData(withDirectory.root, "/site/index.html"), Data("<p>hi</p>\n".utf8))
        XCTAssertNil(withDirectory.root.entry(at: "/app.js"))

        try sandbox.write(
            "nocopy.json", Data(#"{"Program": "prover", "Args": ["app.js"], "DisableArgsCopy": true}"#.utf8))
        let disabled = try build(sandbox, ["prover", "-c", "nocopy.json", "-o", "nocopy.img"])
        XCTAssertEqual(disabled.status, 0, disabled.stderr)
        XCTAssertFalse(disabled.stderr.contains("Args[1]"), disabled.stderr)
        XCTAssertNil(try NanosImageReader.open(sandbox.path("nocopy.img")).root.entry(at: "/app.js"))
        XCTAssertEqual(
            try rootTuple(sandbox.path("nocopy.img"))["arguments"], .vector([.string("prover"), .string("app.js")]))

        // An argument that is no host path, or names the image's root, copies nothing.
        let dot = try build(sandbox, ["prover", "-c", "copy.json", "-a", ".", "-o", "dot.img"])
        XCTAssertEqual(dot.status, 0, dot.stderr)
        XCTAssertTrue(dot.stderr.contains("names no place inside the image; not copied"), dot.stderr)
        XCTAssertNil(try NanosImageReader.open(sandbox.path("dot.img")).root.entry(at: "/app.js"))
    }

    func testTwoBuildsInDifferentPlacesAndTimesGiveTheSameBytes() throws {
        var digests: Set<String> = []
        for index in 0..<2 {
            let sandbox = try Sandbox()
            try prepare(sandbox)
            try sandbox.write("sub/dir/prover.json", Data(Self.proverJSON.utf8))
            try FileManager.default.moveItem(atPath: sandbox.path("prover"), toPath: sandbox.path("sub/dir/prover"))
            if index == 1 { sleep(1) }
            // No PROGRAM argument: the manifest's Program, next to the manifest.
            let result = try build(sandbox, ["-c", "sub/dir/prover.json", "--json"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
            digests.insert(report["sha256"] as! String)
            XCTAssertEqual(report["output"] as? String, sandbox.path("prover.img"))
            XCTAssertEqual(
                TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: sandbox.path("prover.img")))),
                "sha256:" + (report["sha256"] as? String ?? ""))
        }
        XCTAssertEqual(digests.count, 1, "two builds of the same inputs differ")
    }

    /// What ops' parser accepts silently builds the image the canonical spelling builds, byte for byte,
    /// and each leniency is a warning naming its line.
    func testOpsLenientJSONBuildsTheSameImageWithWarnings() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("canonical.json", Data(Self.proverJSON.utf8))
        try sandbox.write(
            "lenient.json",
            Data(
                """
                {
                  "manifestpassthrough": {"readonly_rootfs": "true"},
                  "ENV": {"RUST_BACKTRACE": "0", "RUST_LOG": "debug"},
                  "Env": {"RUST_BACKTRACE": "1"},
                  "program": "elsewhere",
                  "Program": "prover",
                  "MOUNTS": {"%1": "/workspace"}
                }
                trailing words ops never reads
                """.utf8))
        let canonical = try build(sandbox, ["-c", "canonical.json", "-o", "canonical.img"])
        XCTAssertEqual(canonical.status, 0, canonical.stderr)
        XCTAssertFalse(canonical.stderr.contains("warning"), canonical.stderr)
        let lenient = try build(sandbox, ["-c", "lenient.json", "-o", "lenient.img"])
        XCTAssertEqual(lenient.status, 0, lenient.stderr)
        for expected in [
            "lenient.json (line 2, column 3): `manifestpassthrough` is read as `ManifestPassthrough`",
            "lenient.json (line 4, column 3): `Env` is given again (first on line 3); the last one counts, as in ops",
            "lenient.json (line 6, column 3): `Program` is given again (first on line 5)",
            "lenient.json (line 7, column 3): `MOUNTS` is read as `Mounts`",
            "lenient.json (line 9, column 1): the text after the JSON object is ignored"
        ] {
            XCTAssertTrue(lenient.stderr.contains(expected), "expected `\(expected)` in: \(lenient.stderr)")
        }
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("lenient.img"))),
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("canonical.img"))))
    }

    /// ops' own line with gvlt's name: an ELF program means nanos, said once and in the report.
    func testTheBackendIsInferredFromAnELFProgram() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("m.json", Data(Self.proverJSON.utf8))
        let named = try build(sandbox, ["prover", "-c", "m.json", "-o", "named.img"])
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertFalse(named.stderr.contains("backend:"), named.stderr)
        let inferred = try GvltBinary.run(
            ["build", "prover", "-c", "m.json", "--nanos-dir", "release", "-o", "inferred.img", "--json"], in: sandbox)
        XCTAssertEqual(inferred.status, 0, inferred.stderr)
        XCTAssertEqual(
            inferred.stderr.components(separatedBy: "backend: nanos (from an ELF program)\n").count, 2, inferred.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(inferred.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["backend"] as? String, "nanos")
        XCTAssertEqual(report?["backendInferredFrom"] as? String, "an ELF program")
        // --json keeps stdout for the report; progress still goes to stderr.
        XCTAssertTrue(inferred.stderr.contains("writing inferred.img"), inferred.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("inferred.img"))),
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("named.img"))))

        try sandbox.write("script.sh", Data("#!/bin/sh\n".utf8))
        for (arguments, message) in [
            (["script.sh"], "script.sh is not an ELF program, which would mean nanos"),
            (["prover", "--rootfs-dir", "."], "both a program (prover) and --rootfs-dir are given"),
            ([], "no backend chosen"), (["missing"], "program missing does not exist")
        ] {
            let refused = try GvltBinary.run(["build"] + arguments, in: sandbox)
            XCTAssertEqual(refused.status, 1, "\(arguments): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains("--backend nanos or --backend linuxvm") || arguments == ["missing"])
        }
        let overrides = try build(sandbox, ["prover", "-c", "m.json", "--entrypoint", "/x", "-o", "no.img"])
        XCTAssertEqual(overrides.status, 1, overrides.stderr)
        XCTAssertTrue(overrides.stderr.contains("set a container's run config; the nanos backend"), overrides.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("no.img")))
        let container = try GvltBinary.run(["build", "--container", "oci:nowhere"], in: sandbox)
        XCTAssertNotEqual(container.status, 0)
        XCTAssertTrue(container.stderr.hasPrefix("backend: linuxvm (from --container)\n"), container.stderr)
    }

    /// Current Nanos cannot load a klib past 2 MiB (one contiguous allocation); the build says so.
    func testAKlibPastTwoMiBIsWarnedAbout() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("release/klibs/big", Data(count: (2 << 20) + 1))
        try sandbox.write("m.json", Data(#"{"Program": "prover", "Klibs": ["big"]}"#.utf8))
        let result = try build(sandbox, ["-c", "m.json", "-o", "big.img"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("warning: klib big"), result.stderr)
        XCTAssertTrue(result.stderr.contains("is 2048 KiB; Nanos releases since December 2024"), result.stderr)
        try sandbox.write("small.json", Data(#"{"Program": "prover", "Klibs": ["gpu_nvidia"]}"#.utf8))
        let small = try build(sandbox, ["-c", "small.json", "-o", "small.img"])
        XCTAssertFalse(small.stderr.contains("2 MiB"), small.stderr)
    }

    func testBadManifestsAreClearErrorsAndWriteNothing() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        let cases: [(String, String, [String])] = [
            (
                "{\n  \"Program\": \"prover\",\n  \"Envs\": {\"A\": \"b\"}\n}", "unknown key `Envs`",
                ["line 3, column 3", "did you mean `Env`", "ops: json: unknown field \"Envs\""]
            ),
            (
                "{\"Program\": \"prover\", \"Args\": \"--flag\"}", "`Args` must be a list of strings, not a string",
                ["cannot unmarshal string into Go struct field Args of type []string"]
            ),
            ("{\"Program\": \"prover\", \"RebootOnExit\": \"yes\"}", "`RebootOnExit` must be true or false", []),
            ("{\"Program\": \"prover\", \"Force\": 1}", "`Force` must be true or false, not a number", []),
            (
                "{\"Program\": \"prover\", \"RunConfig\": {\"CPUs\": 1.5}}", "`RunConfig.CPUs` must be a whole number",
                []
            ),
            (
                "{\"Program\": \"prover\",\n}",
                "line 2, column 1): invalid character '}' looking for beginning of object key string",
                ["no trailing commas"]
            ),
            (
                "{\"Program\": \"prover\" // the prover\n}", "invalid character '/' after object key:value pair", []
            ),
            ("{\"CloudConfig\": {\"Zones\": \"x\"}}", "unknown key `CloudConfig.Zones`", ["did you mean `Zone`"]),
            (
                "{\"Program\": \"prover\", \"RunConfig\": {\"CPU\": 2}}", "unknown key `RunConfig.CPU`",
                ["did you mean `CPUs`"]
            ),
            (
                "{\"Program\": \"prover\", \"ManifestPassthrough\": {\"readonly_rootfs\": true}}",
                "is the boolean true", ["write \"t\", Nanos' own spelling of true"]
            ),
            ("{\"Env\": {}}", "needs a program", []),
            ("{\"Program\": \"missing-program\"}", "does not exist", []),
            (
                "{\"Program\": \"prover\", \"Dirs\": [\"no-such-dir\"]}", "Dirs entry `no-such-dir` is not a directory",
                []
            ),
            (
                "{\"Program\": \"prover\", \"Files\": [\"no-such-file\"]}", "Files entry `no-such-file` does not exist",
                []
            ),
            (
                "{\"Program\": \"prover\", \"Files\": [\"workspace\"], \"Mounts\": {\"%1\": \"/workspace\"}}",
                "which is a file in the image", []
            ),
            ("{\"Program\": \"prover\", \"Args\": [\"\"]}", "cannot store an empty string", []),
            ("{\"Program\": \"prover\"", "unexpected end of JSON input", [])
        ]
        try sandbox.write("workspace", Data("a file".utf8))
        for (text, message, more) in cases {
            try sandbox.write("bad.json", Data(text.utf8))
            let result = try build(sandbox, ["-c", "bad.json", "-o", "bad.img"])
            XCTAssertEqual(result.status, 1, "\(text): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(text): expected `\(message)` in: \(result.stderr)")
            for detail in more {
                XCTAssertTrue(result.stderr.contains(detail), "\(text): expected `\(detail)` in: \(result.stderr)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("bad.img")), text)
            XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "\(text): scratch files left behind")
            XCTAssertEqual(
                sandbox.listing(sandbox.work).filter {
                    !$0.contains("/") && ($0.hasSuffix(".img") || $0.contains(".gvlt"))
                }, [], text)
        }
    }

    func testMissingKernelSaysWhereItLookedAndHowToGetOne() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("m.json", Data(Self.proverJSON.utf8))
        let none = try GvltBinary.run(["build", "--backend", "nanos", "-c", "m.json"], in: sandbox)
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains(sandbox.home + "/.ops/latest.txt does not exist"), none.stderr)
        XCTAssertTrue(none.stderr.contains("--nanos-dir"), none.stderr)
        // ops' layout: ~/.ops/latest.txt names the version whose directory holds the release.
        try sandbox.write("../home/.ops/latest.txt", Data("0.1.51\n".utf8))
        let missing = try GvltBinary.run(["build", "--backend", "nanos", "-c", "m.json"], in: sandbox)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains(sandbox.home + "/.ops/0.1.51/boot.img does not exist"), missing.stderr)
        try FileManager.default.createDirectory(
            atPath: sandbox.home + "/.ops/0.1.51", withIntermediateDirectories: true)
        for file in ["boot.img", "kernel.img"] {
            try FileManager.default.copyItem(
                atPath: sandbox.path("release/" + file), toPath: sandbox.home + "/.ops/0.1.51/" + file)
        }
        let found = try GvltBinary.run(["build", "--backend", "nanos", "-c", "m.json", "--json"], in: sandbox)
        XCTAssertEqual(found.status, 0, found.stderr)
        XCTAssertEqual(
            try NanosImageReader.open(sandbox.path("prover.img")).root.root.tuple("environment")?.text("NANOS_VERSION"),
            "0.1.51")
    }

    /// --print-manifest and --print-deps need no Nanos release: with no ~/.ops and no --nanos-dir
    /// they print, in Nanos' own syntax with the real inputs' host paths, and name what is missing.
    func testDryRunsNeedNoRelease() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try FileManager.default.removeItem(atPath: sandbox.path("release"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.home + "/.ops"))
        try sandbox.write("data/app.js", Data("1\n".utf8))
        try sandbox.write(
            "m.json",
            Data(
                #"{"Program": "prover", "Args": ["data/app.js"], "Env": {"GREETING": "hello world"}, "Klibs": ["gpu_nvidia"], "Files": ["data/app.js"]}"#
                    .utf8))
        let deps = try GvltBinary.run(["build", "prover", "-c", "m.json", "--print-deps"], in: sandbox)
        XCTAssertEqual(deps.status, 0, deps.stderr)
        XCTAssertTrue(deps.stdout.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6"), deps.stdout)

        let printed = try GvltBinary.run(["build", "prover", "-c", "m.json", "--print-manifest"], in: sandbox)
        XCTAssertEqual(printed.status, 0, printed.stderr)
        let text = printed.stdout
        XCTAssertFalse(text.contains("size:"), "size: is not Nanos syntax: \(text)")
        XCTAssertFalse(text.contains(sandbox.tmp), "a temporary path was printed: \(text)")
        XCTAssertTrue(text.contains("#   /etc/passwd \"root:x:0:0:root:/root:/bin/nobash\""), text)
        XCTAssertTrue(text.contains("#   /kernel (boot filesystem): the Nanos release's kernel.img"), text)
        XCTAssertTrue(text.contains("#   /klib/gpu_nvidia (boot filesystem)"), text)
        XCTAssertTrue(text.contains("GREETING:\"hello world\""), text)
        guard case .tuple(let root) = try NanosManifestSyntax.parse(text) else { return XCTFail(text) }
        XCTAssertEqual(root["arguments"], .vector([.string("prover"), .string("data/app.js")]))
        XCTAssertEqual(root.tuple("environment")?.text("GREETING"), "hello world")
        XCTAssertEqual(root.text("klibs"), "bootfs")
        let children = try XCTUnwrap(root.tuple("children"))
        XCTAssertEqual(children.tuple("prover")?.tuple("contents")?.text("host"), sandbox.path("prover"))
        XCTAssertEqual(
            children.tuple("data")?.tuple("children")?.tuple("app.js")?.tuple("contents")?.text("host"),
            sandbox.path("data/app.js"))
        XCTAssertNil(children.tuple("etc")?.tuple("children")?.tuple("passwd"), "generated files have no host file")
        XCTAssertEqual(
            children.tuple("lib64")?.tuple("children")?.tuple("ld-linux-x86-64.so.2")?.tuple("contents")?.text("host")?
                .hasPrefix("/"), true)
        XCTAssertEqual(sandbox.listing(sandbox.work).filter { $0.hasSuffix(".img") }, [], "a dry run wrote an image")
        // A real build still needs the release, and says so.
        let real = try GvltBinary.run(["build", "prover", "-c", "m.json"], in: sandbox)
        XCTAssertEqual(real.status, 1)
        XCTAssertTrue(real.stderr.contains("no release found"), real.stderr)
    }

    func testProgramChecksAndPrintModes() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write("script.sh", Data("#!/bin/sh\necho hi\n".utf8))
        let script = try build(sandbox, ["script.sh"])
        XCTAssertEqual(script.status, 1)
        XCTAssertTrue(script.stderr.contains("is a script"), script.stderr)

        let deps = try build(sandbox, ["prover", "--print-deps"])
        XCTAssertEqual(deps.status, 0, deps.stderr)
        XCTAssertTrue(deps.stdout.contains("interpreter /lib64/ld-linux-x86-64.so.2"), deps.stdout)
        XCTAssertTrue(deps.stdout.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6"), deps.stdout)
        let manifest = try build(sandbox, ["prover", "--print-manifest"])
        XCTAssertEqual(manifest.status, 0, manifest.stderr)
        XCTAssertTrue(manifest.stdout.contains("program:/prover"), manifest.stdout)
        let printed = try NanosManifestSyntax.parse(manifest.stdout)
        guard case .tuple(let tuple) = printed else { return XCTFail(manifest.stdout) }
        XCTAssertEqual(
            tuple.tuple("boot")?.tuple("children")?.tuple("kernel")?.tuple("contents")?.text("host"),
            sandbox.path("release/kernel.img"))
        XCTAssertEqual(
            tuple.tuple("children")?.tuple("prover")?.tuple("contents")?.text("host"), sandbox.path("prover"))
        XCTAssertEqual(
            sandbox.listing(sandbox.work).filter { !$0.contains("/") && $0.hasSuffix(".img") }, [],
            "print modes write no image")

        let local = try build(sandbox, ["prover", "--local-run", "-o", "local.img"])
        XCTAssertEqual(local.status, 0, local.stderr)
        XCTAssertEqual(try rootTuple(sandbox.path("local.img")).text("debug_exit"), "t")
        let inspect = try GvltBinary.run(["inspect", "local.img"], in: sandbox)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(
            inspect.stdout.contains("boot:       /kernel (300000 bytes)") && inspect.stdout.contains("debug_exit:t"),
            inspect.stdout)
        let extract = try GvltBinary.run(["extract", "local.img", "/prover", "-o", "copy"], in: sandbox)
        XCTAssertEqual(extract.status, 0, extract.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("copy"))),
            try Data(contentsOf: URL(fileURLWithPath: sandbox.path("prover"))))
    }

    /// `gvlt run` for Nanos: the command line ops uses, RunConfig sizing, and the volume round trip
    /// through a real QEMU run (CI has no Nanos kernel: the stub image cannot boot, so the run ends by
    /// its timeout or a power-off, and the volume's files must still come back).
    func testRunBuildsTheOpsCommandLineAndRoundTripsTheVolume() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write(
            "m.json",
            Data(
                Self.proverJSON.replacingOccurrences(
                    of: "\"Program\":\"prover\",",
                    with: "\"Program\":\"prover\", \"RunConfig\": {\"CPUs\": 2, \"Memory\": \"2g\"},"
                ).utf8))
        XCTAssertEqual(try build(sandbox, ["prover", "-c", "m.json", "--local-run"]).status, 0)
        try sandbox.write("ws/sub/a.txt", Data("hello volume\n".utf8))
        try FileManager.default.createSymbolicLink(atPath: sandbox.path("ws/link"), withDestinationPath: "sub/a.txt")

        let line = try GvltBinary.run(
            ["run", "prover.img", "-c", "m.json", "--volume", "ws", "--print-qemu-command", "--shares-dir", "shares"],
            in: sandbox)
        XCTAssertEqual(line.status, 0, line.stderr)
        // The volume image the command attaches is made, in --shares-dir.
        let volumePath = sandbox.path("shares/volume.img")
        let volume = try TFSReader.read(file: try SharedFile.openReadOnly(volumePath), what: volumePath)
        XCTAssertEqual(try Self.fileData(volume, "/sub/a.txt"), Data("hello volume\n".utf8))
        for part in [
            "-machine q35", "virtio-scsi-pci,bus=pci.2,addr=0x0,id=scsi0",
            "file=prover.img,format=raw,if=none,id=hd0,snapshot=on",
            "file=\(sandbox.path("shares/volume.img")),format=raw,if=none,id=hd1",
            "scsi-hd,bus=scsi0.0,drive=hd1,scsi-id=1,lun=0,device_id=persistent-disk-1", "-smp 2", "-m 2048M",
            "isa-debug-exit,iobase=0x501,iosize=0x02", "-no-reboot", "-serial stdio"
        ] {
            XCTAssertTrue(line.stdout.contains(part), "\(part) missing from: \(line.stdout)")
        }
        let overridden = try GvltBinary.run(
            [
                "run", "prover.img", "-c", "m.json", "--smp", "1", "--mem", "1G", "--print-qemu-command",
                "--shares-dir",
                "shares2"
            ], in: sandbox)
        XCTAssertTrue(overridden.stdout.contains("-smp 1") && overridden.stdout.contains("-m 1024M"), overridden.stdout)
        let linuxOnly = try GvltBinary.run(["run", "prover.img", "--input", "m.json:m.json"], in: sandbox)
        XCTAssertEqual(linuxOnly.status, 1)
        XCTAssertTrue(linuxOnly.stderr.contains("--input is for Linux VM images"), linuxOnly.stderr)

        let run = try GvltBinary.run(
            ["run", "prover.img", "--volume", "ws", "--output-dir", "results", "--timeout", "8", "--accel", "tcg"],
            in: sandbox, timeout: 120)
        XCTAssertTrue(run.status == 124 || run.status == 125, "status \(run.status): \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("gvlt run: "), run.stderr)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("results/sub/a.txt"), encoding: .utf8), "hello volume\n")
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(atPath: sandbox.path("results/link")), "sub/a.txt")
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "the volume and scratch files must go")
    }

    /// BaseVolumeSz is the whole image's minimum size; the root partition runs to the end of the disk,
    /// which is how the kernel sizes the root filesystem. By default the root keeps free space.
    func testBaseVolumeSizeAndDefaultFreeSpace() throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        try sandbox.write(
            "m.json",
            Data(
                Self.proverJSON.replacingOccurrences(
                    of: "\"Program\":\"prover\",",
                    with: "\"Program\":\"prover\", \"BaseVolumeSz\": \"64m\","
                ).utf8))
        XCTAssertEqual(try build(sandbox, ["prover", "-c", "m.json", "-o", "big.img"]).status, 0)
        let big = try NanosImageReader.open(sandbox.path("big.img"))
        XCTAssertEqual(big.file.size, 64 << 20)
        XCTAssertEqual(Int64(big.partitions[1].firstSector + big.partitions[1].sectorCount) * 512, big.file.size)

        try sandbox.write("d.json", Data(Self.proverJSON.utf8))
        XCTAssertEqual(try build(sandbox, ["prover", "-c", "d.json", "-o", "small.img"]).status, 0)
        let small = try NanosImageReader.open(sandbox.path("small.img"))
        XCTAssertLessThan(small.file.size, 64 << 20)
        // Free: the two log regions (sectors 1025-3072) and at least 8 MiB after the data.
        var end: UInt64 = 0
        func walk(_ tuple: TFSTuple) {
            for (_, value) in tuple.tuple("children")?.sortedPairs ?? [] {
                guard case .tuple(let entry) = value else { continue }
                for (_, extent) in entry.tuple("extents")?.sortedPairs ?? [] {
                    if case .tuple(let e) = extent {
                        end = max(end, (e["offset"]?.unsigned ?? 0) + (e["length"]?.unsigned ?? 0))
                    }
                    if case .tuple(let e) = extent { XCTAssertGreaterThanOrEqual(e["offset"]?.unsigned ?? 0, 3073) }
                }
                walk(entry)
            }
        }
        walk(small.root.root)
        XCTAssertGreaterThanOrEqual(small.root.length - Int64(end) * 512, 8 << 20)

        try sandbox.write("bad.json", Data("{\"Program\": \"prover\", \"BaseVolumeSz\": \"lots\"}".utf8))
        let bad = try build(sandbox, ["prover", "-c", "bad.json", "-o", "bad.img"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("BaseVolumeSz: `lots` is not a size"), bad.stderr)

        // Past what an MBR entry can count: refused before any byte is written, nothing left behind.
        try sandbox.write("huge.json", Data("{\"Program\": \"prover\", \"BaseVolumeSz\": \"3t\"}".utf8))
        let huge = try build(
            sandbox, ["prover", "-c", "huge.json", "-o", "huge.img"], memoryLimit: GvltBinary.hostileMemoryLimit)
        XCTAssertEqual(huge.status, 1, huge.stderr)
        XCTAssertTrue(huge.stderr.contains("huge.json"), huge.stderr)
        XCTAssertTrue(
            huge.stderr.contains("BaseVolumeSz: `3t` is larger than the 2047 GiB an MBR partition can hold"),
            huge.stderr)
        XCTAssertFalse(huge.stderr.contains("Fatal error"), huge.stderr)
        XCTAssertFalse(sandbox.listing(sandbox.work).contains { $0.hasPrefix("huge.img") })
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }
}
