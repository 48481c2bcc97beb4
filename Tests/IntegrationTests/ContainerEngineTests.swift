import Foundation
import TestSupport
import XCTest

/// `--containerfile` (podman build) and `containers-storage:` (skopeo) round trips with the real tools.
/// CI installs podman and skopeo (scripts/setup); set GVLT_TESTS_WITHOUT_PODMAN=1 to skip on a host
/// that cannot run them.
final class ContainerEngineTests: XCTestCase {
    override func setUpWithError() throws {
        if ProcessInfo.processInfo.environment["GVLT_TESTS_WITHOUT_PODMAN"] == "1" {
            throw XCTSkip("GVLT_TESTS_WITHOUT_PODMAN=1")
        }
        for tool in ["podman", "skopeo"] {
            XCTAssertTrue(
                FileManager.default.isExecutableFile(atPath: "/usr/bin/\(tool)"),
                "\(tool) is not installed: run scripts/setup")
        }
    }

    func makeContext(_ sandbox: Sandbox) throws {
        try sandbox.write(
            "ctx/Containerfile",
            Data(
                """
                FROM scratch
                COPY hello.txt /hello.txt
                COPY --chown=1234:5678 data/ /data/
                ADD tree.tar /opt/
                ENV GREETING=hi
                WORKDIR /data
                ENTRYPOINT ["/hello"]
                CMD ["a", "b"]
                """.utf8))
        try sandbox.write("ctx/hello.txt", Data("hello\n".utf8))
        try sandbox.write("ctx/data/x", Data("x".utf8))
        // ADD of a local tar is extracted by the builder: special modes and links survive into the layer.
        // (A hard link header carries its inode's mode, as real tars do; extraction applies it.)
        try sandbox.write(
            "ctx/tree.tar",
            try TarBuilder.tar([
                .dir("bin"), .file("bin/su", "su", mode: 0o4755), .symlink("bin/sh", "/bin/busybox"),
                TarMember("bin/su2", .hardlink("bin/su"), mode: 0o4755)
            ]))
    }

    func expected(_ h: (String) -> String) -> [String] {
        [
            ". dir 0755 0:0",
            "data dir 0755 1234:5678",
            "data/x file 0644 1234:5678 sha256=\(h("x"))",
            "hello.txt file 0644 0:0 sha256=\(h("hello\n"))",
            "opt dir 0755 0:0",
            "opt/bin dir 0755 0:0",
            "opt/bin/sh symlink 0777 0:0 -> /bin/busybox",
            "opt/bin/su file 4755 0:0 sha256=\(h("su"))",
            "opt/bin/su2 hardlink 4755 0:0 -> opt/bin/su"
        ]
    }

    func testContainerfileRoundTrip() throws {
        let sandbox = try Sandbox()
        try makeContext(sandbox)
        // The default context is the Containerfile's directory.
        let result = try GvltBinary.run(
            ["export", "--containerfile", "ctx/Containerfile", "-o", "out.tar", "--json"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try TarListing.of(sandbox.path("out.tar")).map(stripDirectoryTimes), expected(TarListing.hash))
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let runSpec = report["runSpec"] as! [String: Any]
        XCTAssertEqual(runSpec["command"] as? String, "/hello")
        XCTAssertEqual(runSpec["args"] as? [String], ["a", "b"])
        XCTAssertEqual(runSpec["working-dir"] as? String, "/data")
        XCTAssertTrue(
            (runSpec["env"] as? [[String: String]] ?? []).contains { $0["key"] == "GREETING" && $0["value"] == "hi" })
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }

    func testContainersStorageThroughSkopeo() throws {
        let sandbox = try Sandbox()
        try makeContext(sandbox)
        let tag = "localhost/gvlt-test-\(UUID().uuidString.lowercased().prefix(8)):latest"
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/usr/bin/podman")
        build.arguments = ["build", "-q", "-t", tag, sandbox.path("ctx")]
        build.standardOutput = FileHandle.nullDevice
        try build.run()
        build.waitUntilExit()
        XCTAssertEqual(build.terminationStatus, 0)
        defer {
            let rmi = Process()
            rmi.executableURL = URL(fileURLWithPath: "/usr/bin/podman")
            rmi.arguments = ["rmi", "-f", tag]
            rmi.standardOutput = FileHandle.nullDevice
            rmi.standardError = FileHandle.nullDevice
            try? rmi.run()
            rmi.waitUntilExit()
        }
        let result = try GvltBinary.run(
            ["export", "--container", "containers-storage:\(tag)", "-o", "out.tar"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try TarListing.of(sandbox.path("out.tar")).map(stripDirectoryTimes), expected(TarListing.hash))

        let missing = try GvltBinary.run(
            [
                "export", "--container", "containers-storage:localhost/no-such-image-\(UUID().uuidString.lowercased())",
                "-o", "out2.tar"
            ], in: sandbox)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("skopeo") && missing.stderr.contains("failed"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out2.tar")))
    }

    func testMissingToolNamesTheAptPackage() throws {
        let sandbox = try Sandbox()
        try makeContext(sandbox)
        let result = try GvltBinary.run(
            ["export", "--containerfile", "ctx/Containerfile", "-o", "out.tar"], in: sandbox,
            environment: ["PATH": "/nonexistent"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(
            result.stderr.contains("`--containerfile` builds needs `podman`")
                && result.stderr.contains("apt-get install podman"),
            result.stderr)
    }

    /// Listings carry no times; kept as a seam in case a builder's mode on `.` differs.
    func stripDirectoryTimes(_ line: String) -> String { line }
}
