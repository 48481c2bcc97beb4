import Core
import Foundation
import TestSupport
import XCTest

/// External plugins that take part in real images: accelerators (exec in Python, dylib in C) whose
/// contributions reach a builtin backend's image, read back from the image and seen by the booted
/// guest; and the qcow2 example backend, built on the host's kernel, initramfs and guest root, booted
/// with `gvlt run`.
final class PluginImageTests: XCTestCase {
    typealias Images = LinuxVMImageTests
    static let examples = Images.repository + "/examples/plugins"

    /// A static program that prints what the accelerators should have changed in the guest.
    static let probe: Result<String, Error> = Result {
        let work = Images.work + "/plugin-probe"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try Data(
            """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <unistd.h>
            #include <sys/stat.h>
            static void show(const char *label, const char *path, const char *prefix) {
                FILE *f = fopen(path, "r"); char line[1024];
                if (!f) { printf("%s: (missing)\\n", label); return; }
                while (fgets(line, sizeof line, f)) if (!prefix || strncmp(line, prefix, strlen(prefix)) == 0) printf("%s: %s", label, line);
                fclose(f);
            }
            int main(void) {
                show("cmdline", "/proc/cmdline", NULL);
                show("meminfo", "/proc/meminfo", "HugePages_Total");
                show("note", "/etc/accel/note.txt", NULL);
                show("data", "/opt/accel/data.bin", NULL);
                show("mount", "/proc/mounts", NULL);
                const char *keys[] = {"GVLT_HUGEPAGES", "ACCEL_NOTE", "DYLIB_ACCEL"};
                for (int i = 0; i < 3; i++) printf("env %s=%s\\n", keys[i], getenv(keys[i]) ? getenv(keys[i]) : "-");
                struct stat st;
                printf("module loop loaded: %s\\n", stat("/sys/module/loop", &st) == 0 ? "yes" : "no");
                char target[256] = ""; ssize_t n = readlink("/etc/accel/link", target, sizeof target - 1);
                printf("link: %s\\n", n > 0 ? target : "-");
                FILE *out = fopen("/mnt/gevulot/output/probe.txt", "w");
                if (out) { fprintf(out, "probed\\n"); fclose(out); }
                return 0;
            }
            """.utf8
        ).write(to: URL(fileURLWithPath: work + "/probe.c"))
        try Images.shell(["gcc", "-static", "-O2", "-o", work + "/probe", work + "/probe.c"])
        return work + "/probe"
    }

    /// A merged-/usr root (`lib -> usr/lib`, as in Debian images) holding the probe.
    func makeRoot(_ sandbox: Sandbox) throws {
        let probe = try Self.probe.get()
        try FileManager.default.createDirectory(atPath: sandbox.path("root/usr/bin"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sandbox.path("root/usr/lib"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: sandbox.path("root/lib"), withDestinationPath: "usr/lib")
        try FileManager.default.copyItem(atPath: probe, toPath: sandbox.path("root/usr/bin/probe"))
    }

    /// An exec accelerator contributing each kind of file, a module from the kernel's tree, and env.
    func filesAccelerator(_ sandbox: Sandbox) throws -> String {
        try sandbox.writeExecutable(
            "files-accel.py",
            """
            #!/usr/bin/env python3
            import json, os, sys
            assert os.environ.get("GVLT_PLUGIN_COOKIE"), "run by gvlt only"
            request = json.loads(sys.stdin.readline())
            def send(m): print(json.dumps(m), flush=True)
            if request["method"] == "describe":
                send({"type": "result", "result": {"name": "files-accel", "protocol": "gvlt-plugin/1.0", "role": "accelerator",
                      "capabilities": {"backends": ["linuxvm", "nanos"]}}})
                sys.exit(0)
            p = request["params"]
            data = os.path.join(p["scratch"], "data.bin")
            open(data, "w").write("bytes from the host for %s on %s\\n" % (p["backend"], p["target"]["kernel"]["release"]))
            send({"type": "progress", "message": "adding files"})
            send({"type": "result", "result": {
                "files": [{"path": "etc/accel/note.txt", "text": "noted\\n", "mode": 416, "uid": 1000, "gid": 1000},
                          {"path": "/opt/accel/data.bin", "source": data},
                          {"path": "etc/accel/link", "type": "symlink", "target": "note.txt"},
                          {"path": "var/accel", "type": "dir", "mode": 448}],
                "kernel_modules": ["loop"], "env": [{"key": "ACCEL_NOTE", "value": "from exec"}], "resources": {"scratch_mb": 1}}})
            """)
        return
            #"{"name": "files-accel", "kind": "exec", "role": "accelerator", "path": "\#(sandbox.path("files-accel.py"))", "protocol": "gvlt-plugin/1.0"}"#
    }

    /// A dylib accelerator in C: the same protocol through dlopen and libffi.
    func dylibAccelerator(_ sandbox: Sandbox) throws -> String {
        try sandbox.write(
            "dylib_accel.c",
            Data(
                #"""
                #include <stdlib.h>
                #include <string.h>
                char *dylib_accel_call(const char *request) {
                    const char *answer = strstr(request, "\"describe\"")
                        ? "{\"type\": \"result\", \"result\": {\"name\": \"dylib-accel\", \"protocol\": \"gvlt-plugin/1.0\", \"role\": \"accelerator\", \"capabilities\": {\"backends\": [\"linuxvm\"]}}}\n"
                        : "{\"type\": \"result\", \"result\": {\"env\": [{\"key\": \"DYLIB_ACCEL\", \"value\": \"yes\"}], \"kernel_cmdline\": [\"gvlt.dylib=1\"]}}\n";
                    return strdup(answer);
                }
                void dylib_accel_free(char *answer) { free(answer); }
                """#.utf8))
        _ = try HostCommand.run(
            "/usr/bin/cc",
            ["-shared", "-fPIC", "-O2", "-o", sandbox.path("libdylib_accel.so"), sandbox.path("dylib_accel.c")])
        return
            #"{"name": "dylib-accel", "kind": "dylib", "role": "accelerator", "path": "\#(sandbox.path("libdylib_accel.so"))", "protocol": "gvlt-plugin/1.0", "symbols": {"call": "char *dylib_accel_call(const char *)", "free": "void dylib_accel_free(char *)"}}"#
    }

    var hugepagesEntry: String {
        #"{"name": "hugepages", "kind": "exec", "role": "accelerator", "path": "\#(Self.examples)/hugepages/gvlt-hugepages", "protocol": "gvlt-plugin/1.0"}"#
    }

    func build(_ arguments: [String], in sandbox: Sandbox, environment: [String: String]) throws -> RunResult {
        let (initBinary, _) = try Images.built.get()
        return try GvltBinary.run(
            ["build", "--rootfs-dir", "root", "--init-binary", initBinary, "--cache-dir", Images.kernelCache]
                + arguments,
            in: sandbox, environment: environment, timeout: 600)
    }

    func testExternalAcceleratorsContributionsReachTheLinuxVMImageAndTheGuest() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let env = try sandbox.pluginsFile([hugepagesEntry, try filesAccelerator(sandbox), try dylibAccelerator(sandbox)]
        )
        let result = try build(
            [
                "--backend", "linuxvm", "--accel", "hugepages", "--accel", "files-accel", "--accel", "dylib-accel",
                "--option", "hugepages=16", "-o", "accel.img"
            ], in: sandbox, environment: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("files-accel: adding files"), result.stderr)
        XCTAssertTrue(
            result.stdout.contains(
                "Run resources (files-accel): scratch_mb=1\nRun resources (hugepages): hugepage_bytes=33554432"),
            result.stdout)
        let image = sandbox.path("accel.img")

        // The image itself, read with unsquashfs and mtools rather than gvlt.
        let listing = try HostCommand.run(
            "/usr/bin/unsquashfs", ["-o", String(try NvidiaImageTests.rootOffset(image)), "-lln", image]
        ).output
        let release = try XCTUnwrap(
            listing.split(separator: "\n").lazy.compactMap { line -> String? in
                guard let range = line.range(of: "usr/lib/modules/") else { return nil }
                return line[range.upperBound...].split(separator: "/").first.map(String.init)
            }.first, listing)
        func line(_ path: String) -> String {
            listing.split(separator: "\n").first {
                $0.hasSuffix("squashfs-root/" + path) || $0.contains("squashfs-root/" + path + " -> ")
            }.map(String.init) ?? "(absent: \(path))"
        }
        XCTAssertTrue(line("etc/accel/note.txt").hasPrefix("-rw-r----- 1000/1000"), line("etc/accel/note.txt"))
        XCTAssertTrue(line("var/accel").hasPrefix("drwx------ 0/0"), line("var/accel"))
        XCTAssertTrue(line("etc/accel/link").contains("etc/accel/link -> note.txt"), line("etc/accel/link"))
        // lib is usr/lib in this image: the module went through the link, where the guest looks.
        XCTAssertTrue(
            line("usr/lib/modules/\(release)/kernel/drivers/block/loop.ko").hasPrefix("-rw-r--r-- 0/0"),
            line("usr/lib/modules/\(release)/kernel/drivers/block/loop.ko"))
        XCTAssertTrue(line("lib").contains("lib -> usr/lib"), line("lib"))
        let root = try NvidiaImageTests.extract(
            ["etc/gvlt/config.yaml", "opt/accel/data.bin"], from: image, into: sandbox.path("root-out"))
        let config = try String(contentsOfFile: root + "/etc/gvlt/config.yaml", encoding: .utf8)
        for expected in ["kernel-modules: [\"loop\"]", "GVLT_HUGEPAGES", "\"16\"", "ACCEL_NOTE", "DYLIB_ACCEL"] {
            XCTAssertTrue(config.contains(expected), "\(expected) not in the baked config:\n\(config)")
        }
        XCTAssertEqual(
            try String(contentsOfFile: root + "/opt/accel/data.bin", encoding: .utf8),
            "bytes from the host for linuxvm on \(release)\n")
        let bootOffset = 4096
        let syslinux = try HostCommand.run(
            "/usr/bin/mtype", ["-i", "\(image)@@\(bootOffset)", "::/syslinux.cfg"],
            environment: ["MTOOLS_SKIP_CHECK": "1"]
        ).output
        XCTAssertTrue(
            syslinux.contains(
                "APPEND console=ttyS0 panic=-1 quiet gvlt.dylib=1 default_hugepagesz=2M hugepagesz=2M hugepages=16"),
            syslinux)

        // And the guest sees it all.
        let run = try GvltBinary.run(
            ["run", image, "--accel", "tcg", "--command", "/usr/bin/probe", "--output-dir", "out"], in: sandbox,
            timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        for expected in [
            "meminfo: HugePages_Total:      16", "note: noted", "data: bytes from the host for linuxvm",
            "env GVLT_HUGEPAGES=16", "env ACCEL_NOTE=from exec", "env DYLIB_ACCEL=yes", "module loop loaded: yes",
            "link: note.txt", "gvlt.dylib=1"
        ] {
            XCTAssertTrue(run.stdout.contains(expected), "\(expected) not printed by the guest:\n\(run.stdout)")
        }
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("out/probe.txt"), encoding: .utf8), "probed\n")
    }

    func testQcow2PluginBuildsAReproducibleDiskThatBoots() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let qcow2 =
            #"{"name": "qcow2", "kind": "exec", "role": "backend", "path": "\#(Self.examples)/qcow2/gvlt-qcow2", "protocol": "gvlt-plugin/1.1"}"#
        let env = try sandbox.pluginsFile([qcow2, hugepagesEntry])
        var digests = Set<String>()
        for output in ["a.qcow2", "b.qcow2"] {
            let json = output == "b.qcow2"
            let result = try build(
                ["--backend", "qcow2", "--accel", "hugepages", "--option", "hugepages=8", "-o", output]
                    + (json ? ["--json"] : []),
                in: sandbox, environment: env)
            XCTAssertEqual(result.status, 0, result.stderr)
            if json {
                let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                XCTAssertEqual(
                    (report?["resources"] as? [String: [String: String]])?["hugepages"], ["hugepage_bytes": "16777216"],
                    result.stdout)
                XCTAssertEqual(report?["sha256"] as? String, try SHA256Hex.of(file: sandbox.path(output)))
            } else {
                // The plugin's progress lines reach the host's display.
                XCTAssertTrue(result.stderr.contains("qcow2: converting to qcow2 (zlib)"), result.stderr)
            }
            digests.insert(try SHA256Hex.of(file: sandbox.path(output)))
        }
        XCTAssertEqual(digests.count, 1, "the same inputs gave different qcow2 bytes")
        let info = try HostCommand.run("/usr/bin/qemu-img", ["info", "--output=json", sandbox.path("a.qcow2")]).output
        let details = try JSONSerialization.jsonObject(with: Data(info.utf8)) as! [String: Any]
        XCTAssertEqual(details["format"] as? String, "qcow2", info)
        XCTAssertEqual(
            ((details["format-specific"] as? [String: Any])?["data"] as? [String: Any])?["compression-type"] as? String,
            "zlib", info)

        // gvlt inspect goes to the plugin's inspect role: the builtin Linux VM inspector is only
        // `possible` about a qcow2 file, the plugin's recognize is certain.
        let inspect = try GvltBinary.run(["inspect", sandbox.path("a.qcow2")], in: sandbox, environment: env)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for expected in [
            "compression zlib", "partition 1: type 0x0c (boot)", "partition 2: type 0x83",
            "boot files: initrd.img ldlinux.c32 ldlinux.sys syslinux.cfg vmlinuz", "hugepages=8"
        ] {
            XCTAssertTrue(inspect.stdout.contains(expected), "\(expected) not in:\n\(inspect.stdout)")
        }
        let inspectJSON = try GvltBinary.run(
            ["inspect", "--json", sandbox.path("a.qcow2")], in: sandbox, environment: env)
        XCTAssertEqual(inspectJSON.status, 0, inspectJSON.stderr)
        let inspected = try JSONSerialization.jsonObject(with: Data(inspectJSON.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(inspected?["virtual_size"] as? Int, details["virtual-size"] as? Int, inspectJSON.stdout)
        XCTAssertEqual((inspected?["partitions"] as? [Any])?.count, 2, inspectJSON.stdout)
        XCTAssertTrue((inspected?["command_line"] as? String ?? "").contains("hugepages=8"), inspectJSON.stdout)
        // A plugin that cannot answer recognize is skipped with a warning; the builtins still answer.
        let broken =
            #"{"name": "broken", "kind": "exec", "role": "backend", "path": "/nonexistent/gvlt-broken"}"#
        let withBroken = try sandbox.pluginsFile([qcow2, broken])
        let stillInspects = try GvltBinary.run(
            ["inspect", sandbox.path("a.qcow2")], in: sandbox, environment: withBroken)
        XCTAssertEqual(stillInspects.status, 0, stillInspects.stderr)
        XCTAssertTrue(stillInspects.stdout.contains("partition 2: type 0x83"), stillInspects.stdout)
        XCTAssertTrue(
            stillInspects.stderr.contains("warning: skipping plugin `broken` for inspect"), stillInspects.stderr)

        let printed = try GvltBinary.run(
            ["run", sandbox.path("a.qcow2"), "--accel", "tcg", "--print-qemu-command"], in: sandbox, environment: env)
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("file=\(sandbox.path("a.qcow2"))"), printed.stdout)
        let run = try GvltBinary.run(
            ["run", sandbox.path("a.qcow2"), "--accel", "tcg", "--command", "/usr/bin/probe", "--output-dir", "out"],
            in: sandbox, environment: env, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        XCTAssertTrue(run.stderr.contains("is a qcow2 disk"), run.stderr)
        // The plugin's run role chose the disk; the host's Firestarter runner booted it.
        XCTAssertTrue(run.stderr.contains("qcow2: booting the qcow2 disk as it is"), run.stderr)
        XCTAssertTrue(run.stdout.contains("meminfo: HugePages_Total:       8"), run.stdout)
        XCTAssertTrue(run.stdout.contains("env GVLT_HUGEPAGES=8"), run.stdout)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("out/probe.txt"), encoding: .utf8), "probed\n")

        // A bad option is the plugin's error, named, with nothing written.
        let bad = try build(
            ["--backend", "qcow2", "--option", "qcow2-compression=lzma", "-o", "c.qcow2"], in: sandbox, environment: env
        )
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(
            bad.stderr.contains(
                "plugin `qcow2` (build) failed: ValueError: qcow2-compression must be zlib, zstd or none"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("c.qcow2")))
    }

    func testAcceleratorMisuseAndBadContributionsAreClearErrors() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        try sandbox.writeExecutable(
            "bad-accel.py",
            """
            #!/usr/bin/env python3
            import json, sys
            request = json.loads(sys.stdin.readline())
            if request["method"] == "describe":
                print(json.dumps({"type": "result", "result": {"name": "bad-accel", "protocol": "gvlt-plugin/1.0", "role": "accelerator",
                      "capabilities": {"backends": ["linuxvm"]}}}))
            else:
                print(json.dumps({"type": "result", "result": {"files": [{"path": "../escape", "text": "x"}]}}))
            """)
        let env = try sandbox.pluginsFile([
            hugepagesEntry,
            #"{"name": "bad-accel", "kind": "exec", "role": "accelerator", "path": "\#(sandbox.path("bad-accel.py"))"}"#
        ])
        let cases: [([String], String)] = [
            (
                ["--backend", "linuxvm", "--accel", "bad-accel"],
                "plugin `bad-accel` (contribute).files[0].path: `../escape` is not a path inside the image"
            ),
            (
                ["--backend", "linuxvm", "--accel", "hugepages", "--option", "hugepages=lots"],
                "plugin `hugepages` (contribute) failed: ValueError: option hugepages must be a whole number"
            ),
            (
                ["--backend", "nanos", "--accel", "hugepages"],
                "accelerator `hugepages` does not support the nanos backend"
            ),
            (["--backend", "linuxvm", "--accel", "hugepage"], "did you mean `hugepages`?"),
            (["--backend", "linuxvm", "--option", "novalue"], "--option `novalue` is not KEY=VALUE")
        ]
        for (arguments, message) in cases {
            let result = try build(arguments + ["-o", "x.img"], in: sandbox, environment: env)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
        }
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch left behind")
    }

    func testPluginsListAndDescribeShowOriginsAndWhatPluginsReport() throws {
        let sandbox = try Sandbox()
        let env = try sandbox.pluginsFile([hugepagesEntry])
        let list = try GvltBinary.run(["plugins", "list", "--json"], in: sandbox, environment: env)
        XCTAssertEqual(list.status, 0, list.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [String: Any]
        let plugins = try XCTUnwrap(report["plugins"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: plugins.map { ($0["name"] as! String, $0) })
        XCTAssertEqual(byName["hugepages"]?["origin"] as? String, sandbox.path("plugins.json"))
        XCTAssertEqual(byName["hugepages"]?["role"] as? String, "accelerator")
        XCTAssertEqual(byName["linuxvm"]?["kind"] as? String, "builtin")
        XCTAssertTrue(
            (report["files"] as? [[String: Any]])?.contains {
                $0["path"] as? String == sandbox.path("plugins.json") && $0["found"] as? Bool == true
            } == true, list.stdout)

        let describe = try GvltBinary.run(["plugins", "describe", "hugepages"], in: sandbox, environment: env)
        XCTAssertEqual(describe.status, 0, describe.stderr)
        XCTAssertTrue(
            describe.stdout.contains("hugepages (integer, default 64): how many pages to reserve"), describe.stdout)
        XCTAssertTrue(describe.stdout.contains("from \(sandbox.path("plugins.json"))"), describe.stdout)
        let linuxvm = try GvltBinary.run(["plugins", "describe", "linuxvm"], in: sandbox, environment: env)
        XCTAssertTrue(linuxvm.stdout.contains("guest-root:") && linuxvm.stdout.contains("initramfs:"), linuxvm.stdout)
        let unknown = try GvltBinary.run(["plugins", "describe", "hugepage"], in: sandbox, environment: env)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(
            unknown.stderr.contains("no plugin named `hugepage`")
                && unknown.stderr.contains("did you mean `hugepages`?"), unknown.stderr)
    }
}
