import Foundation
import TestSupport
import XCTest

/// `gvlt export` of generated images: each test asserts the exact exported tree, read back by an
/// independent tar reader (Python's tarfile).
final class ExportTreeTests: XCTestCase {
    func h(_ text: String) -> String { TarListing.hash(text) }

    func export(_ source: [String], in sandbox: Sandbox, extra: [String] = []) throws -> [String] {
        let result = try GvltBinary.run(["export"] + source + ["-o", "out.tar", "--force"] + extra, in: sandbox)
        XCTAssertEqual(result.status, 0, "gvlt export failed: \(result.stderr)")
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch files left behind")
        return try TarListing.of(sandbox.path("out.tar"))
    }

    func testLayersReplaceWhiteoutAndOpaqueWhiteoutAfterSibling() throws {
        let sandbox = try Sandbox()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        let base = LayerFixture(
            [
                .dir("etc"), .file("etc/passwd", "root:v1"),
                .dir("opt"), .file("opt/a", "a"), .file("opt/b", "b"), .dir("opt/sub"), .file("opt/sub/c", "c"),
                .symlink("link-to-passwd", "etc/passwd"),
                .dir("keep"), .file("keep/file", "keep"),
                .dir("gone"), .file("gone/old", "old"),
                .dir("bin"), .file("bin/app", "app", mode: 0o755)
            ], compression: .gzip)
        let middle = LayerFixture(
            [
                .file("etc/passwd", "root:v2"),
                .whiteout("link-to-passwd"),
                .file("opt/new", "new"),
                .opaque("opt"),
                .whiteout("gone/old")
            ], compression: .zstd)
        let top = LayerFixture(
            [
                .file("keep/added", "added"),
                .whiteout("gone")
            ], compression: .none)
        try layout.writeIndex([try layout.image([base, middle, top])])

        let listing = try export(["--container", "oci:img:latest"], in: sandbox)
        XCTAssertEqual(
            listing,
            [
                ". dir 0755 0:0",
                "bin dir 0755 0:0",
                "bin/app file 0755 0:0 sha256=\(h("app"))",
                "etc dir 0755 0:0",
                "etc/passwd file 0644 0:0 sha256=\(h("root:v2"))",
                "keep dir 0755 0:0",
                "keep/added file 0644 0:0 sha256=\(h("added"))",
                "keep/file file 0644 0:0 sha256=\(h("keep"))",
                "opt dir 0755 0:0",
                "opt/new file 0644 0:0 sha256=\(h("new"))"
            ])
    }

    func testMetadataDevicesLinksAndHardlinkInodeSemantics() throws {
        let sandbox = try Sandbox()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        let base = LayerFixture(
            [
                .dir("dev"),
                TarMember("dev/null", .characterDevice(1, 3), mode: 0o666),
                TarMember("dev/sda", .blockDevice(8, 0), mode: 0o660, gid: 6),
                .dir("run"), TarMember("run/ctl", .fifo, mode: 0o600),
                .dir("tmp", mode: 0o1777),
                .dir("usr"), .dir("usr/bin"), .dir("usr/lib"),
                .file("usr/bin/sudo", "sudo", mode: 0o4755),
                .file("usr/bin/wall", "wall", mode: 0o2755, gid: 5),
                TarMember(
                    "usr/bin/ping", .file(Data("ping".utf8)), mode: 0o755, xattrs: ["user.comment": Array("hi".utf8)]),
                .hardlink("usr/bin/sudoedit", "usr/bin/sudo"),
                .symlink("usr/bin/abs", "/usr/bin/sudo"),
                .symlink("usr/lib/rel", "../bin/sudo"),
                .dir("home"), .dir("home/user", mode: 0o700, uid: 1000, gid: 1001),
                .file("home/user/data", "d", mode: 0o600, uid: 1000, gid: 1001)
            ], compression: .gzip)
        // A second name for sudo, then sudo replaced: the old inode keeps both other names.
        let update = LayerFixture(
            [
                .hardlink("usr/bin/sudo-link2", "usr/bin/sudo"),
                .file("usr/bin/sudo", "sudo2", mode: 0o4755)
            ], compression: .gzip)
        try layout.writeIndex([try layout.image([base, update])])

        let listing = try export(["--container", "oci:img"], in: sandbox)
        XCTAssertEqual(
            listing,
            [
                ". dir 0755 0:0",
                "dev dir 0755 0:0",
                "dev/null chardev 0666 0:0 dev=1,3",
                "dev/sda blockdev 0660 0:6 dev=8,0",
                "home dir 0755 0:0",
                "home/user dir 0700 1000:1001",
                "home/user/data file 0600 1000:1001 sha256=\(h("d"))",
                "run dir 0755 0:0",
                "run/ctl fifo 0600 0:0",
                "tmp dir 1777 0:0",
                "usr dir 0755 0:0",
                "usr/bin dir 0755 0:0",
                "usr/bin/abs symlink 0777 0:0 -> /usr/bin/sudo",
                "usr/bin/ping file 0755 0:0 sha256=\(h("ping")) xattr:user.comment=6869",
                "usr/bin/sudo file 4755 0:0 sha256=\(h("sudo2"))",
                "usr/bin/sudo-link2 file 4755 0:0 sha256=\(h("sudo"))",
                "usr/bin/sudoedit hardlink 4755 0:0 -> usr/bin/sudo-link2",
                "usr/bin/wall file 2755 0:5 sha256=\(h("wall"))",
                "usr/lib dir 0755 0:0",
                "usr/lib/rel symlink 0777 0:0 -> ../bin/sudo"
            ])
    }

    func testRunSpecAndSummaryInJSONReport() throws {
        let sandbox = try Sandbox()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([try layout.image([LayerFixture([.dir("bin"), .file("bin/app", "x", mode: 0o755)])])])
        let result = try GvltBinary.run(["export", "--container", "oci:img", "-o", "out.tar", "--json"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let runSpec = report["runSpec"] as! [String: Any]
        XCTAssertEqual(runSpec["command"] as? String, "/bin/app")
        XCTAssertEqual(runSpec["args"] as? [String], ["--serve"])
        XCTAssertEqual(runSpec["working-dir"] as? String, "/work")
        XCTAssertEqual(runSpec["user"] as? String, "1000:1000")
        XCTAssertEqual(
            (runSpec["env"] as? [[String: String]])?.map { "\($0["key"]!)=\($0["value"]!)" }, ["PATH=/bin", "A=1"])
        XCTAssertEqual(report["entries"] as? Int, 3)
        let data = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("out.tar")))
        XCTAssertEqual(report["sha256"] as? String, TarBuilder.sha256(data))
        XCTAssertEqual(report["bytes"] as? Int, data.count)
    }

    func testMultiPlatformIndexPicksLinuxAmd64OrTheRequestedPlatform() throws {
        for nested in [false, true] {
            let sandbox = try Sandbox()
            let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
            let arm = try layout.image(
                [LayerFixture([.file("arch", "arm64")])], architecture: "arm64", tag: nil, platformInIndex: true)
            let amd = try layout.image(
                [LayerFixture([.file("arch", "amd64")])], architecture: "amd64", tag: nil, platformInIndex: true)
            let attestation = try layout.image(
                [LayerFixture([.file("sbom", "{}")])], architecture: "unknown", os: "unknown", tag: nil,
                platformInIndex: true)
            var manifests = [arm, attestation, amd]
            if nested {
                let child = try layout.json([
                    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
                ])
                let (digest, size) = try layout.putBlob(child)
                manifests = [
                    [
                        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
                        "annotations": ["org.opencontainers.image.ref.name": "multi"]
                    ]
                ]
            }
            try layout.writeIndex(manifests)
            XCTAssertEqual(
                try export(["--container", "oci:img"], in: sandbox).last, "arch file 0644 0:0 sha256=\(h("amd64"))")
            XCTAssertEqual(
                try export(["--container", "oci:img", "--platform", "linux/arm64"], in: sandbox).last,
                "arch file 0644 0:0 sha256=\(h("arm64"))")
        }
    }

    func testSingleManifestIsCheckedAgainstItsConfigPlatform() throws {
        let sandbox = try Sandbox()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([try layout.image([LayerFixture([.file("arch", "arm64")])], architecture: "arm64")])
        let refused = try GvltBinary.run(["export", "--container", "oci:img", "-o", "out.tar"], in: sandbox)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(
            refused.stderr.contains("the image is linux/arm64, not linux/amd64")
                && refused.stderr.contains("--platform linux/arm64"),
            refused.stderr)
        XCTAssertEqual(
            try export(["--container", "oci:img", "--platform", "linux/arm64"], in: sandbox).last,
            "arch file 0644 0:0 sha256=\(h("arm64"))")
    }

    func testDockerV2MediaTypesAndMislabelledCompression() throws {
        let sandbox = try Sandbox()
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        var first = LayerFixture([.dir("etc"), .file("etc/os-release", "one")], compression: .gzip)
        first.mediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        // Labelled gzip but stored as zstd: the bytes decide, with a warning.
        var second = LayerFixture([.file("etc/os-release", "two")], compression: .zstd)
        second.mediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        try layout.writeIndex([
            try layout.image([first, second], manifestMediaType: "application/vnd.docker.distribution.manifest.v2+json")
        ])
        let result = try GvltBinary.run(["export", "--container", "oci:img", "-o", "out.tar"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("media type says gzip but the bytes are zstd"), result.stderr)
        XCTAssertEqual(
            try TarListing.of(sandbox.path("out.tar")).last, "etc/os-release file 0644 0:0 sha256=\(h("two"))")

        var unknown = LayerFixture([.file("x", "x")], compression: .gzip)
        unknown.mediaType = "application/vnd.example.layer+squashfs"
        let other = try OCILayoutBuilder(directory: sandbox.path("img2"))
        try other.writeIndex([try other.image([unknown])])
        let refused = try GvltBinary.run(["export", "--container", "oci:img2", "-o", "out2.tar"], in: sandbox)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(
            refused.stderr.contains("application/vnd.example.layer+squashfs, which is not a layer type gvlt reads"),
            refused.stderr)
    }

    func testDockerArchiveLegacyOCIFormAndCompressedArchive() throws {
        let layers: [[TarMember]] = [
            [.dir("etc"), .file("etc/hostname", "one"), .file("etc/gone", "x")],
            [.file("etc/hostname", "two"), .whiteout("etc/gone")]
        ]
        let expected = [". dir 0755 0:0", "etc dir 0755 0:0", "etc/hostname file 0644 0:0 sha256=\(h("two"))"]
        let sandbox = try Sandbox()
        try sandbox.write("legacy.tar", try DockerArchiveBuilder.legacy(layers))
        XCTAssertEqual(try export(["--container", "docker-archive:legacy.tar"], in: sandbox), expected)
        XCTAssertEqual(try export(["--container", "docker-archive:legacy.tar:example:latest"], in: sandbox), expected)

        let layout = try OCILayoutBuilder(directory: sandbox.root + "/layout")
        let descriptor = try layout.image(layers.map { LayerFixture($0, compression: .none) })
        try layout.writeIndex([descriptor])
        let ociForm = try DockerArchiveBuilder.ociForm(layout: layout, manifestDescriptor: descriptor)
        try sandbox.write("new.tar", ociForm)
        XCTAssertEqual(try export(["--container", "docker-archive:new.tar"], in: sandbox), expected)
        XCTAssertEqual(try export(["--container", "oci-archive:new.tar"], in: sandbox), expected)

        // `docker save | gzip`: members are reached through a decompressed scratch copy.
        let members = try layout.members()
        try sandbox.write("layout.tar.gz", try TarBuilder.tar(members, compression: .gzip))
        XCTAssertEqual(try export(["--container", "oci-archive:layout.tar.gz"], in: sandbox), expected)
    }

    func testSameTreeFromGzipZstdAndPlainLayersGivesIdenticalBytes() throws {
        let sandbox = try Sandbox()
        var digests: Set<String> = []
        for compression in [Compression.gzip, .zstd, .none] {
            let layout = try OCILayoutBuilder(directory: sandbox.path("img-\(compression)"))
            try layout.writeIndex([
                try layout.image([
                    LayerFixture(
                        [.dir("a"), .file("a/one", String(repeating: "1", count: 100_000)), .symlink("a/l", "one")],
                        compression: compression),
                    LayerFixture([.file("a/two", "2"), .hardlink("a/three", "a/one")], compression: compression)
                ])
            ])
            for _ in 0..<2 {
                _ = try export(["--container", "oci:img-\(compression)"], in: sandbox)
                digests.insert(TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: sandbox.path("out.tar")))))
            }
        }
        XCTAssertEqual(
            digests.count, 1, "export must be byte-for-byte reproducible and independent of layer compression")
    }

    func testMultiMegabyteContentSurvivesTheBufferedDirectWriter() throws {
        let sandbox = try Sandbox()
        let random = FileHandle(forReadingAtPath: "/dev/urandom")!
        let sizes = [5 << 20, (3 << 20) + 123, 1 << 20, 4093]
        var expected = [". dir 0755 0:0"]
        for (index, size) in sizes.enumerated() {
            let data = random.readData(ofLength: size)
            try sandbox.write("root/f\(index)", data)
            chmod(sandbox.path("root/f\(index)"), 0o644)
            expected.append("f\(index) file 0644 0:0 sha256=\(TarBuilder.sha256(data).dropFirst(7).prefix(16))")
        }
        chmod(sandbox.path("root"), 0o755)
        XCTAssertEqual(try export(["--rootfs-dir", "root"], in: sandbox), expected)
    }

    func testRootfsDirectoryKeepsSymlinksHardlinksModesAndOwners() throws {
        let sandbox = try Sandbox()
        let root = sandbox.path("rootfs")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        try Data("tool".utf8).write(to: URL(fileURLWithPath: root + "/bin/tool"))
        chmod(root + "/bin/tool", 0o4755)
        link(root + "/bin/tool", root + "/bin/tool-alias")
        symlink("/etc/shadow", root + "/bin/outside")  // must be recorded, never followed
        symlink("tool", root + "/bin/rel")
        mkfifo(root + "/data/pipe", 0o640)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: root + "/data/owned"))
        chmod(root + "/data/owned", 0o600)
        let asRoot = geteuid() == 0
        if asRoot { chown(root + "/data/owned", 1234, 5678) }
        for path in ["", "/bin", "/data"] { chmod(root + path, 0o755) }

        let listing = try export(["--rootfs-dir", "rootfs"], in: sandbox)
        XCTAssertEqual(
            listing,
            [
                ". dir 0755 0:0",
                "bin dir 0755 0:0",
                "bin/outside symlink 0777 0:0 -> /etc/shadow",
                "bin/rel symlink 0777 0:0 -> tool",
                "bin/tool file 4755 0:0 sha256=\(h("tool"))",
                "bin/tool-alias hardlink 4755 0:0 -> bin/tool",
                "data dir 0755 0:0",
                "data/owned file 0600 \(asRoot ? "1234:5678" : "0:0") sha256=\(h("secret"))",
                "data/pipe fifo 0640 0:0"
            ])
    }
}
