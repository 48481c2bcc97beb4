import Foundation
import TestSupport
import XCTest

/// `gvlt backends`, `build`, `doctor` and the registry as the CLI sees it.
final class CommandTests: XCTestCase {
    func testBackendsListsBuiltinsAndReportsExternalKindsAsUnsupported() throws {
        let sandbox = try Sandbox()
        try sandbox.write(
            "extra.json",
            Data(
                """
                {"schema": 1, "plugins": [
                  {"name": "firecracker", "kind": "exec", "role": "backend", "path": "/opt/fc-plugin", "protocol": "gvlt-plugin/1"}
                ]}
                """.utf8))
        let result = try GvltBinary.run(
            ["backends", "--json"], in: sandbox, environment: ["GVLT_PLUGINS": sandbox.path("extra.json")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [[String: Any]]
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as! String, $0) })
        XCTAssertEqual(Set(byName.keys), ["linuxvm", "nanos", "nvidia", "firecracker"])
        XCTAssertEqual(byName["linuxvm"]?["kind"] as? String, "builtin")
        XCTAssertEqual(byName["nvidia"]?["role"] as? String, "accelerator")
        XCTAssertTrue(
            (byName["linuxvm"]?["origin"] as? String ?? "").hasSuffix("plugins.json"),
            "the shipped plugins.json lists linuxvm")
        XCTAssertEqual((byName["nanos"]?["capabilities"] as? [String: Any])?["inputs"] as? [String], ["elf-program"])
        XCTAssertTrue((byName["firecracker"]?["status"] as? String ?? "").contains("available (exec plugin"))

        // Its program is not there: the error names the plugin and where its entry is.
        let build = try GvltBinary.run(
            ["build", "--backend", "firecracker", "--rootfs-dir", ".", "-o", "x.img"], in: sandbox,
            environment: ["GVLT_PLUGINS": sandbox.path("extra.json")])
        XCTAssertEqual(build.status, 1)
        XCTAssertTrue(
            build.stderr.contains("cannot start plugin `firecracker` (/opt/fc-plugin)")
                && build.stderr.contains(sandbox.path("extra.json")), build.stderr)
    }

    func testMalformedPluginsFileNamesLineAndKey() throws {
        let sandbox = try Sandbox()
        try sandbox.write(
            "plugins.json", Data("{\n  \"schema\": 1,\n  \"plugins\": [\n    {\"name\": \"x\",, }\n  ]\n}\n".utf8))
        var result = try GvltBinary.run(["backends"], in: sandbox)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("plugins.json is not valid JSON at line 4"), result.stderr)

        try sandbox.write(
            "plugins.json",
            Data(#"{"schema": 1, "plugins": [{"name": "x", "kind": "exec", "rol": "backend", "path": "/x"}]}"#.utf8))
        result = try GvltBinary.run(["backends"], in: sandbox)
        XCTAssertTrue(
            result.stderr.contains("plugins[0]: unknown key `rol`") && result.stderr.contains("did you mean `role`?"),
            result.stderr)
    }

    func testBuildDispatchesToTheBackendAndWritesNothingWhenItFails() throws {
        let sandbox = try Sandbox()
        try FileManager.default.createDirectory(atPath: sandbox.path("root/bin"), withIntermediateDirectories: true)
        // The backend is reached and refuses a bad option before doing any work.
        let result = try GvltBinary.run(
            ["build", "--backend", "linuxvm", "--rootfs-dir", "root", "--root-fs", "btrfs", "-o", "vm.img"], in: sandbox
        )
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("--root-fs `btrfs` is not squashfs or ext4"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("vm.img")))
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])

        let typo = try GvltBinary.run(["build", "--backend", "linuxv", "--rootfs-dir", "root"], in: sandbox)
        XCTAssertTrue(
            typo.stderr.contains("unknown backend `linuxv`") && typo.stderr.contains("did you mean `linuxvm`?"),
            typo.stderr)

        // Accelerator options are checked before the kernel is resolved or anything is downloaded.
        let accel = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--rootfs-dir", "root", "--accel", "nvidia",
                "--nvidia-modules", "bogus", "-o", "vm.img"
            ], in: sandbox, timeout: 20)
        XCTAssertEqual(accel.status, 1)
        XCTAssertTrue(accel.stderr.contains("--nvidia-modules `bogus` is not a module source"), accel.stderr)
        XCTAssertFalse(accel.stderr.contains("resolving the kernel"), accel.stderr)

        let nanos = try GvltBinary.run(["build", "--backend", "nanos", "./prog", "-o", "n.img"], in: sandbox)
        XCTAssertTrue(nanos.stderr.contains("program ./prog does not exist"), nanos.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("n.img")))
    }

    func testBuildConfigFileMirrorsFlagsAndRejectsUnknownKeys() throws {
        let sandbox = try Sandbox()
        try FileManager.default.createDirectory(atPath: sandbox.path("cfg/root"), withIntermediateDirectories: true)
        try sandbox.write(
            "cfg/build.yaml", Data("backend: linuxvm\nrootfs-dir: root\noutput: vm.img\noptions: {root-fs: zfs}\n".utf8)
        )
        var result = try GvltBinary.run(["build", "--config", "cfg/build.yaml"], in: sandbox)
        // The config's relative rootfs-dir resolved against the file; the backend was reached with its options.
        XCTAssertTrue(result.stderr.contains("--root-fs `zfs` is not squashfs or ext4"), result.stderr)

        // Flags win over the file.
        result = try GvltBinary.run(["build", "--config", "cfg/build.yaml", "--backend", "nanos"], in: sandbox)
        XCTAssertTrue(result.stderr.contains("the nanos backend takes a program"), result.stderr)

        try sandbox.write("cfg/bad.yaml", Data("backend: linuxvm\nrootfs_dir: root\n".utf8))
        result = try GvltBinary.run(["build", "--config", "cfg/bad.yaml"], in: sandbox)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(
            result.stderr.contains("unknown key `rootfs_dir`") && result.stderr.contains("did you mean `rootfs-dir`?"),
            result.stderr)
    }

    func testDoctorReportsToolsWithAptPackagesAndProbesKVM() throws {
        let sandbox = try Sandbox()
        let started = Date()
        let result = try GvltBinary.run(["doctor", "--json"], in: sandbox, environment: ["PATH": "/usr/bin:/bin"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "a hanging KVM must not hang doctor")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertNotNil(report["kvmWorks"] as? Bool)
        let libraries = report["libraries"] as? [String: String] ?? [:]
        XCTAssertTrue(libraries["libarchive"]?.hasPrefix("libarchive 3.") == true, "\(libraries)")
        XCTAssertEqual(libraries["libelf"], "ELF version 1")
        XCTAssertEqual(libraries["libffi"], "call interfaces work (default ABI)")
        let kvm = report["kvm"] as? String ?? ""
        XCTAssertFalse(kvm.isEmpty)
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64"),
            FileManager.default.fileExists(atPath: "/dev/kvm"),
            !kvm.contains("KVM_") && !kvm.contains("cannot open")
        {
            XCTAssertTrue(kvm.contains("QEMU"), "with qemu installed the verdict must come from booting it: \(kvm)")
        }
        let checks = report["checks"] as! [[String: Any]]
        let linuxvm = checks.first { ($0["feature"] as? String) == "linuxvm images" }!
        let missing = (linuxvm["missing"] as? [String] ?? []) + (linuxvm["found"] as? [String] ?? [])
        XCTAssertTrue(missing.contains { $0.contains("syslinux") }, "\(linuxvm)")
        for item in linuxvm["missing"] as? [String] ?? [] {
            XCTAssertTrue(item.contains("apt-get install "), item)
        }

        // Which of its own files gvlt uses, and why.
        let installed = report["gvlt"] as? [String: Any] ?? [:]
        XCTAssertEqual(installed["pluginProtocol"] as? String, "gvlt-plugin/1.1")
        XCTAssertTrue((installed["version"] as? String)?.isEmpty == false, "\(installed)")
        let cache = installed["cache"] as? [String: Any] ?? [:]
        XCTAssertEqual(cache["path"] as? String, sandbox.home + "/.cache/gvlt")
        XCTAssertEqual(cache["origin"] as? String, "$XDG_CACHE_HOME/gvlt")
        let files = installed["pluginsFiles"] as? [[String: Any]] ?? []
        XCTAssertEqual(files.first?["origin"] as? String, "the repository (build folder)", "\(files)")
        XCTAssertTrue((files.first?["path"] as? String)?.hasSuffix("/plugins.json") == true, "\(files)")
        let initBinary = try sandbox.writeExecutable("my-init", "gvlt-init version 9.8.7\n")
        let withInit = try GvltBinary.run(["doctor"], in: sandbox, environment: ["GVLT_INIT": initBinary])
        XCTAssertTrue(
            withInit.stdout.contains("guest init: \(initBinary) ($GVLT_INIT), version 9.8.7"), withInit.stdout)
        XCTAssertTrue(
            withInit.stdout.contains("cache: \(sandbox.home)/.cache/gvlt ($XDG_CACHE_HOME/gvlt)"), withInit.stdout)
        XCTAssertTrue(withInit.stdout.hasPrefix("gvlt "), withInit.stdout)

        // What the .deb asks for is what doctor checks.
        let relationships = try GvltBinary.run(["doctor", "--debian-relationships"], in: sandbox)
        XCTAssertEqual(relationships.status, 0, relationships.stderr)
        let lines = relationships.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, relationships.stdout)
        XCTAssertTrue(
            lines[0].hasPrefix(
                "Depends: qemu-system-x86, squashfs-tools-ng | squashfs-tools, e2fsprogs, dosfstools, mtools, syslinux, syslinux-common"
            ), lines[0])
        XCTAssertFalse(lines[0].contains("apt"), lines[0])
        for optional in ["skopeo", "podman | buildah", "gcc", "make", "git"] {
            XCTAssertTrue(lines[1].hasPrefix("Recommends: ") && lines[1].contains(optional), lines[1])
        }

        let bare = try GvltBinary.run(["doctor", "--strict"], in: sandbox, environment: ["PATH": "/nonexistent"])
        XCTAssertEqual(bare.status, 1)
        XCTAssertTrue(bare.stdout.contains("missing skopeo: apt-get install skopeo"), bare.stdout)
    }

    func testVersionNamesTheReleaseAndTheCommit() throws {
        let sandbox = try Sandbox()
        let result = try GvltBinary.run(["--version"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let manifest = try String(contentsOfFile: LinuxVMImageTests.repository + "/Package.swift", encoding: .utf8)
        let version = manifest.split(separator: "\n").first { $0.hasPrefix("let gvltVersion = ") }!
            .split(separator: "\"")[1]
        XCTAssertTrue(result.stdout.hasPrefix("gvlt \(version) (commit "), result.stdout)
    }

    func testHelpIsExampleDriven() throws {
        let sandbox = try Sandbox()
        for command in ["export", "build", "backends", "doctor"] {
            let result = try GvltBinary.run([command, "--help"], in: sandbox)
            XCTAssertEqual(result.status, 0)
            XCTAssertTrue(
                result.stdout.contains("Examples:") && result.stdout.contains("gvlt \(command)"),
                "\(command): \(result.stdout)")
        }
        let export = try GvltBinary.run(["export", "--help"], in: sandbox)
        let flattened = export.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(flattened.contains("default: the Containerfile's directory"), export.stdout)
        let completion = try GvltBinary.run(["--generate-completion-script", "bash"], in: sandbox)
        XCTAssertTrue(completion.stdout.contains("_gvlt"), completion.stdout)
    }

    func testInterruptRemovesTheTemporaryOutput() throws {
        let sandbox = try Sandbox()
        // A large sparse file takes long enough to write that the interrupt lands mid-export.
        try FileManager.default.createDirectory(atPath: sandbox.path("root"), withIntermediateDirectories: true)
        let big = sandbox.path("root/big")
        XCTAssertTrue(FileManager.default.createFile(atPath: big, contents: nil))
        truncate(big, 8 << 30)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: GvltBinary.path)
        process.arguments = ["export", "--rootfs-dir", "root", "-o", "out.tar", "--quiet"]
        process.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = sandbox.tmp
        process.environment = environment
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var sawTemporary = false
        while Date() < deadline && process.isRunning {
            if GvltBinary.holdsUnnamedFile(pid: process.processIdentifier, in: sandbox.work) {
                sawTemporary = true
                break
            }
            usleep(10_000)
        }
        XCTAssertTrue(sawTemporary, "gvlt never started writing the (unnamed) output")
        XCTAssertEqual(sandbox.listing(sandbox.work), ["root", "root/big"], "the output has a name before it is whole")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 128 + SIGINT)
        XCTAssertEqual(sandbox.listing(sandbox.work), ["root", "root/big"])
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }

    /// Help is written as paragraphs that swift-argument-parser wraps: a prose line shorter than half
    /// the 80 columns must end its paragraph (hard line breaks re-wrapped give alternating long and
    /// short lines). Example lines are indented and exempt.
    func testHelpIsWrappedAsParagraphs() throws {
        let sandbox = try Sandbox()
        for command in ["", "build", "run", "export", "inspect", "extract", "backends", "plugins", "doctor"] {
            let result = try GvltBinary.run(
                (command.isEmpty ? [] : [command]) + ["--help"], in: sandbox, environment: ["COLUMNS": "80"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let text = result.stdout.components(separatedBy: "\nUSAGE:").first ?? ""
            let lines = text.components(separatedBy: "\n")
            for (index, line) in lines.enumerated() where !line.isEmpty && !line.hasPrefix(" ") {
                let next = index + 1 < lines.count ? lines[index + 1] : ""
                let endsParagraph = next.isEmpty || next.hasPrefix(" ") || line.hasSuffix(":")
                XCTAssertTrue(
                    line.count >= 40 || endsParagraph,
                    "gvlt \(command) --help: `\(line)` is short and its paragraph goes on:\n\(text)")
            }
        }
        let top = try GvltBinary.run(["--help"], in: sandbox)
        XCTAssertTrue(top.stdout.contains("gvlt build ./prover -c manifest.json"), top.stdout)
        XCTAssertTrue(top.stdout.contains("gvlt build --containerfile"), top.stdout)
    }
}
