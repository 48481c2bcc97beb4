import Core
import Foundation
import TestSupport
import XCTest

/// `exec` backend plugins end to end: the Python example (examples/plugins/tar-rootfs) through
/// `gvlt build`, and plugins that break the protocol in each way the host must survive.
final class PluginTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let example = repository + "/examples/plugins/tar-rootfs/gvlt-tar-rootfs"

    func makeRoot(_ sandbox: Sandbox) throws {
        try sandbox.write("root/usr/bin/prover", Data("#!/bin/sh\necho prove\n".utf8))
        try FileManager.default.createSymbolicLink(
            atPath: sandbox.path("root/usr/bin/alias"), withDestinationPath: "prover")
    }

    func testPythonTarRootfsPluginBuildsAReproducibleExportWithProgress() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let digest = TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: Self.example))).dropFirst(7)
        let env = try sandbox.pluginsFile([
            #"{"name": "tar-rootfs", "kind": "exec", "role": "backend", "path": "\#(Self.example)", "protocol": "gvlt-plugin/1.0", "sha256": "\#(digest)"}"#
        ])
        let listed = try GvltBinary.run(["backends"], in: sandbox, environment: env)
        XCTAssertTrue(
            listed.stdout.contains("tar-rootfs") && listed.stdout.contains("available (exec plugin"), listed.stdout)

        var digests: Set<String> = []
        for output in ["a.tar.gz", "b.tar.gz"] {
            let build = try GvltBinary.run(
                ["build", "--backend", "tar-rootfs", "--rootfs-dir", "root", "-o", output], in: sandbox,
                environment: env)
            XCTAssertEqual(build.status, 0, build.stderr)
            // The plugin's progress and log lines reach the host's display.
            XCTAssertTrue(build.stderr.contains("tar-rootfs: writing"), build.stderr)
            digests.insert(TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: sandbox.path(output)))))
        }
        XCTAssertEqual(digests.count, 1, "the same tree gave different exports")
        // Read back with GNU tar, not gvlt.
        let listing = try HostCommand.run("/usr/bin/tar", ["-tvzf", sandbox.path("a.tar.gz")]).output
        XCTAssertTrue(listing.contains("usr/bin/prover") && listing.contains("usr/bin/alias -> prover"), listing)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch left behind")

        // Its file changed since the entry was written: refused before it runs.
        let tampered = try sandbox.pluginsFile([
            #"{"name": "tar-rootfs", "kind": "exec", "role": "backend", "path": "\#(Self.example)", "sha256": "\#(String(repeating: "0", count: 64))"}"#
        ])
        let refused = try GvltBinary.run(
            ["build", "--backend", "tar-rootfs", "--rootfs-dir", "root", "-o", "c.tar.gz"], in: sandbox,
            environment: tampered)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(
            refused.stderr.contains("not the \(String(repeating: "0", count: 64)) its entry declares"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("c.tar.gz")))

        // Run by hand (no host cookie), the plugin refuses.
        let byHand = try HostCommand.run(Self.example, [], check: false)
        XCTAssertEqual(byHand.status, 2)
        XCTAssertTrue(byHand.output.contains("is a gvlt plugin"), byHand.output)
    }

    /// The C example loaded in-process and called through libffi, and each way a dylib entry can be wrong.
    func testCDylibPluginIsCalledThroughLibffi() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let library = sandbox.path("librootfs_tar.so")
        _ = try HostCommand.run(
            "/usr/bin/cc",
            [
                "-shared", "-fPIC", "-O2", "-o", library,
                Self.repository + "/examples/plugins/rootfs-tar-c/rootfs_tar.c"
            ])
        func entry(path: String = library, call: String = "char *rootfs_tar_call(const char *)") -> String {
            #"{"name": "rootfs-tar", "kind": "dylib", "role": "backend", "path": "\#(path)", "protocol": "gvlt-plugin/1.0", "symbols": {"call": "\#(call)", "free": "void rootfs_tar_free(char *)"}}"#
        }
        let env = try sandbox.pluginsFile([entry()])
        let build = try GvltBinary.run(
            ["build", "--backend", "rootfs-tar", "--rootfs-dir", "root", "-o", "root.tar"], in: sandbox,
            environment: env)
        XCTAssertEqual(build.status, 0, build.stderr)
        XCTAssertTrue(build.stderr.contains("rootfs-tar: copied"), build.stderr)
        let listing = try HostCommand.run("/usr/bin/tar", ["-tvf", sandbox.path("root.tar")]).output
        XCTAssertTrue(listing.contains("usr/bin/prover") && listing.contains("usr/bin/alias -> prover"), listing)

        for (broken, message) in [
            (entry(call: "char *no_such_function(const char *)"), "has no symbol `no_such_function`"),
            (
                entry(call: "char *rootfs_tar_call(const char *, int)"),
                "taking 2 arguments; gvlt-plugin calls it with one string"
            ),
            (entry(path: sandbox.path("root/usr/bin/prover")), "cannot load " + sandbox.path("root/usr/bin/prover"))
        ] {
            let result = try GvltBinary.run(
                ["build", "--backend", "rootfs-tar", "--rootfs-dir", "root", "-o", "x.tar"], in: sandbox,
                environment: try sandbox.pluginsFile([broken]))
            XCTAssertEqual(result.status, 1, message)
            XCTAssertTrue(result.stderr.contains(message), "\(message): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.tar")))
        }
    }

    /// A plugin that describes itself properly, then does `build` as given.
    func brokenPlugin(_ sandbox: Sandbox, name: String, protocolVersion: String = "gvlt-plugin/1.0", build: String)
        throws -> String
    {
        let path = sandbox.path("\(name).py")
        try sandbox.writeExecutable(
            "\(name).py",
            """
            #!/usr/bin/env python3
            import json, os, sys, time
            request = json.loads(sys.stdin.readline())
            def send(m): print(json.dumps(m), flush=True)
            if request["method"] == "describe":
                send({"type": "result", "result": {"name": "\(name)", "protocol": "\(protocolVersion)", "role": "backend",
                      "capabilities": {"inputs": ["rootfs-tree"]}}})
                sys.exit(0)
            params = request["params"]
            \(build)
            """)
        return
            #"{"name": "\#(name)", "kind": "exec", "role": "backend", "path": "\#(path)", "options": {"timeout": 3}}"#
    }

    /// A plugin's run and inspect answers are checked: the disk it names must be the image or lie in
    /// the host's scratch directory, and inspect must give text.
    func testPluginImageRolesAnswersAreChecked() throws {
        let sandbox = try Sandbox()
        try sandbox.write("disk.img", Data("not a Firestarter disk".utf8))
        try sandbox.writeExecutable(
            "roles.py",
            """
            #!/usr/bin/env python3
            import json, sys
            def send(m): print(json.dumps(m), flush=True)
            for line in sys.stdin:
                request = json.loads(line)
                method, params = request["method"], request["params"]
                if method == "describe":
                    send({"type": "result", "result": {"name": "roles", "protocol": "gvlt-plugin/1.1", "role": "backend",
                          "roles": ["inspect", "run"]}})
                elif method == "recognize":
                    send({"type": "result", "result": {"recognition": "certain" if params["image"].endswith("disk.img") else "no"}})
                elif method == "run":
                    send({"type": "result", "result": {"disk": "/etc/passwd"}})
                elif method == "inspect":
                    send({"type": "result", "result": {"report": {}}})
            """)
        let env = try sandbox.pluginsFile([
            #"{"name": "roles", "kind": "exec", "role": "backend", "path": "\#(sandbox.path("roles.py"))"}"#
        ])
        let run = try GvltBinary.run(
            ["run", sandbox.path("disk.img"), "--accel", "tcg"], in: sandbox, environment: env)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(
            run.stderr.contains(
                "plugin `roles`'s run result names /etc/passwd, outside the image and the scratch directory"),
            run.stderr)
        let inspect = try GvltBinary.run(["inspect", sandbox.path("disk.img")], in: sandbox, environment: env)
        XCTAssertEqual(inspect.status, 1, inspect.stderr)
        XCTAssertTrue(inspect.stderr.contains("plugin `roles`'s inspect result has no `text`"), inspect.stderr)
    }

    func testBrokenPluginsGiveClearErrorsAndWriteNothing() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let cases: [(String, String, String, [String])] = [
            (
                "newer", "gvlt-plugin/1.5", "pass",
                ["speaks gvlt-plugin/1.5, newer than this gvlt's gvlt-plugin/1.1", "upgrade gvlt"]
            ),
            ("major", "gvlt-plugin/2.0", "pass", ["the major versions differ"]),
            (
                "crash", "gvlt-plugin/1.0", "sys.stderr.write('segfault-ish trouble\\n'); os._exit(3)",
                ["plugin `crash` (build) exited with status 3 without a result", "segfault-ish trouble"]
            ),
            (
                "hang", "gvlt-plugin/1.0", "import subprocess; subprocess.Popen(['sleep', '42.5']); time.sleep(60)",
                ["plugin `hang` (build) did not finish within 3 s and was killed"]
            ),
            (
                "garbage", "gvlt-plugin/1.0", "print('hello from a confused plugin', flush=True)",
                ["wrote a line that is not a gvlt-plugin message: hello from a confused plugin"]
            ),
            (
                "outside", "gvlt-plugin/1.0",
                "p = os.path.join(params['scratch'], 'elsewhere'); open(p, 'w').write('x'); send({'type': 'result', 'result': {'artifacts': [{'path': p}]}})",
                ["claims an artifact outside its output directory:", "/elsewhere"]
            ),
            (
                "missing", "gvlt-plugin/1.0",
                "send({'type': 'result', 'result': {'artifacts': [{'path': os.path.join(params['output_dir'], 'nothing')}]}})",
                ["claims an artifact that does not exist"]
            ),
            (
                "failing", "gvlt-plugin/1.0", "send({'type': 'error', 'message': 'the disk format is not supported'})",
                ["plugin `failing` (build) failed: the disk format is not supported"]
            ),
            // Output is bounded: a flood on stderr or an endless line is killed, with the tail shown.
            (
                "flood", "gvlt-plugin/1.0",
                "[sys.stderr.write('noise %d\\n' % i + 'y' * (1 << 20)) for i in range(80)]; sys.stderr.flush(); time.sleep(60)",
                ["plugin `flood` (build) wrote more than 64 MiB on stderr and was killed", "its stderr:"]
            ),
            (
                "longline", "gvlt-plugin/1.0", "sys.stdout.write('z' * (80 << 20)); sys.stdout.flush(); time.sleep(60)",
                ["plugin `longline` (build) wrote a stdout line longer than 64 MiB and was killed"]
            ),
            // A child left holding the plugin's stdout must not keep gvlt waiting for EOF.
            (
                "linger", "gvlt-plugin/1.0",
                "import subprocess; subprocess.Popen(['sleep', '41.5']); send({'type': 'error', 'message': 'gave up early'})",
                ["plugin `linger` (build) failed: gave up early"]
            )
        ]
        for (name, version, build, messages) in cases {
            let started = Date()
            let env = try sandbox.pluginsFile([
                try brokenPlugin(sandbox, name: name, protocolVersion: version, build: build)
            ])
            let result = try GvltBinary.run(
                ["build", "--backend", name, "--rootfs-dir", "root", "-o", "out.img"], in: sandbox,
                environment: env, timeout: 60, memoryLimit: GvltBinary.hostileMemoryLimit)
            XCTAssertEqual(result.status, 1, "\(name): \(result.stderr)")
            for message in messages { XCTAssertTrue(result.stderr.contains(message), "\(name): \(result.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out.img")), name)
            XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "\(name): scratch left behind")
            XCTAssertLessThan(Date().timeIntervalSince(started), 30, "\(name): gvlt waited on the plugin's output")
        }
        // The plugins ran in their own process groups: what they started died with them.
        for leftover in ["sleep 41.5", "sleep 42.5"] {
            let pgrep = Process()
            pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
            pgrep.arguments = ["-f", "^\(leftover)$"]
            pgrep.standardOutput = FileHandle.nullDevice
            try pgrep.run()
            pgrep.waitUntilExit()
            XCTAssertEqual(pgrep.terminationStatus, 1, "a plugin's child `\(leftover)` outlived it")
        }
        let directory = try sandbox.pluginsFile([
            #"{"name": "folder", "kind": "exec", "role": "backend", "path": "\#(sandbox.path("root"))"}"#
        ])
        let folder = try GvltBinary.run(
            ["build", "--backend", "folder", "--rootfs-dir", "root", "-o", "out.img"], in: sandbox,
            environment: directory)
        XCTAssertEqual(folder.status, 1, folder.stderr)
        XCTAssertTrue(
            folder.stderr.contains(
                "cannot start plugin `folder`: \(sandbox.path("root")) is a directory, not a program"),
            folder.stderr)
    }

    /// `"stream": true`: describe and build go to one process; a plugin that cannot stream, or hangs,
    /// gives the same clear errors as a one-shot one.
    func testStreamingPluginAnswersARunsRequestsFromOneProcess() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        try sandbox.writeExecutable(
            "pidlog.py",
            """
            #!/usr/bin/env python3
            import json, os, sys, time
            def send(m): print(json.dumps(m), flush=True)
            for line in sys.stdin:
                request = json.loads(line)
                open(os.environ["PIDLOG"], "a").write("%s %d\\n" % (request["method"], os.getpid()))
                if request["method"] == "describe":
                    send({"type": "result", "result": {"name": "pidlog", "protocol": "gvlt-plugin/1.0", "role": "backend",
                          "capabilities": {"inputs": ["rootfs-tree"]}}})
                    if os.environ.get("MODE") == "one-shot": sys.exit(0)
                    continue
                if os.environ.get("MODE") == "hang": time.sleep(60)
                p = request["params"]
                out = os.path.join(p["output_dir"], p["output_name"])
                open(out, "w").write("built\\n")
                send({"type": "progress", "message": "wrote it"})
                send({"type": "result", "result": {"artifacts": [{"path": out}]}})
            """)
        func entry(stream: Bool) -> String {
            #"{"name": "pidlog", "kind": "exec", "role": "backend", "path": "\#(sandbox.path("pidlog.py"))", "stream": \#(stream), "options": {"timeout": 3}}"#
        }
        for stream in [true, false] {
            let log = sandbox.path("pids-\(stream)")
            var env = try sandbox.pluginsFile([entry(stream: stream)])
            env["PIDLOG"] = log
            let build = try GvltBinary.run(
                ["build", "--backend", "pidlog", "--rootfs-dir", "root", "-o", "out-\(stream).img"], in: sandbox,
                environment: env)
            XCTAssertEqual(build.status, 0, build.stderr)
            XCTAssertTrue(build.stderr.contains("pidlog: wrote it"), build.stderr)
            XCTAssertEqual(try String(contentsOfFile: sandbox.path("out-\(stream).img"), encoding: .utf8), "built\n")
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
                $0.split(separator: " ")
            }
            XCTAssertEqual(lines.map { String($0[0]) }, ["describe", "build"])
            XCTAssertEqual(Set(lines.map { $0[1] }).count, stream ? 1 : 2, "stream \(stream): \(lines)")
        }
        for (mode, message) in [
            ("one-shot", "plugin `pidlog` (build) exited with status 0 without a result"),
            ("hang", "plugin `pidlog` (build) did not finish within 3 s and was killed")
        ] {
            var env = try sandbox.pluginsFile([entry(stream: true)])
            env["PIDLOG"] = sandbox.path("pids-\(mode)")
            env["MODE"] = mode
            let result = try GvltBinary.run(
                ["build", "--backend", "pidlog", "--rootfs-dir", "root", "-o", "x.img"], in: sandbox, environment: env,
                timeout: 60)
            XCTAssertEqual(result.status, 1, "\(mode): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(mode): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
        }
        XCTAssertThrowsError(
            try PluginsFile.parse(
                Data(
                    #"{"schema": 1, "plugins": [{"name": "x", "kind": "dylib", "role": "backend", "path": "/x.so", "stream": true, "symbols": {"call": "char *c(const char *)", "free": "void f(char *)"}}]}"#
                        .utf8), origin: "p.json")
        ) { error in
            XCTAssertTrue(
                "\(error)".contains("p.json: plugins[0].stream: only exec plugins stream requests"), "\(error)")
        }
    }

    /// describe's `input: file-listing`: the plugin gets the tree's metadata as JSON lines instead of a tar.
    func testFileListingInputGivesTheTreeWithoutContents() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        try sandbox.writeExecutable(
            "sbom.py",
            """
            #!/usr/bin/env python3
            import json, os, sys
            request = json.loads(sys.stdin.readline())
            def send(m): print(json.dumps(m), flush=True)
            if request["method"] == "describe":
                send({"type": "result", "result": {"name": "sbom", "protocol": "gvlt-plugin/1.0", "role": "backend",
                      "input": os.environ.get("INPUT", "file-listing"), "capabilities": {"inputs": ["rootfs-tree"], "outputs": ["json"]}}})
                sys.exit(0)
            p = request["params"]
            assert "root_tar" not in p, "a tar was written too"
            entries = [json.loads(line) for line in open(p["root_listing"])]
            out = os.path.join(p["output_dir"], p["output_name"])
            json.dump(entries, open(out, "w"), sort_keys=True)
            send({"type": "result", "result": {"artifacts": [{"path": out, "size": os.path.getsize(out) + int(os.environ.get("SIZE_OFF", "0"))}]}})
            """)
        var env = try sandbox.pluginsFile([
            #"{"name": "sbom", "kind": "exec", "role": "backend", "path": "\#(sandbox.path("sbom.py"))"}"#
        ])
        let build = try GvltBinary.run(
            ["build", "--backend", "sbom", "--rootfs-dir", "root", "-o", "sbom.json"], in: sandbox, environment: env)
        XCTAssertEqual(build.status, 0, build.stderr)
        let entries =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sandbox.path("sbom.json"))))
            as! [[String: Any]]
        let byPath = Dictionary(uniqueKeysWithValues: entries.map { ($0["path"] as! String, $0) })
        XCTAssertEqual(byPath["usr/bin/prover"]?["type"] as? String, "file")
        XCTAssertEqual(byPath["usr/bin/prover"]?["size"] as? Int, 21)
        XCTAssertEqual(byPath["usr/bin/alias"]?["type"] as? String, "symlink")
        XCTAssertEqual(byPath["usr/bin/alias"]?["target"] as? String, "prover")
        XCTAssertEqual(byPath["usr/bin"]?["type"] as? String, "dir")

        for (key, value, message) in [
            ("SIZE_OFF", "5", "bytes, not the"),
            ("INPUT", "rootfs-zip", "asks for the input `rootfs-zip`, which gvlt does not provide")
        ] {
            env[key] = value
            let result = try GvltBinary.run(
                ["build", "--backend", "sbom", "--rootfs-dir", "root", "-o", "x.json"], in: sandbox, environment: env)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains(message), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.json")))
            env[key] = nil
        }
    }
}
