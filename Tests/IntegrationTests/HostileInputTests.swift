import Foundation
import TestSupport
import XCTest

/// Each hostile input must give a non-zero exit, a clear message naming the problem, no output, no
/// temp files, and nothing written outside the sandbox.
final class HostileInputTests: XCTestCase {
    let marker = "gvlt-escape-" + UUID().uuidString

    /// Builds a one-image layout in the sandbox via `prepare`, exports it, and checks the refusal.
    func assertRefused(
        _ expected: [String], source: String = "oci:img", file: StaticString = #filePath, line: UInt = #line,
        prepare: (Sandbox) throws -> Void
    ) throws {
        let sandbox = try Sandbox()
        try prepare(sandbox)
        let before = sandbox.listing(sandbox.root)
        let result = try GvltBinary.run(["export", "--container", source, "-o", "out.tar"], in: sandbox)
        XCTAssertNotEqual(result.status, 0, "hostile input was accepted", file: file, line: line)
        XCTAssertTrue(
            result.stderr.split(separator: "\n").contains { $0.hasPrefix("error: ") },
            "no error line: \(result.stderr)",
            file: file, line: line)
        for fragment in expected {
            XCTAssertTrue(
                result.stderr.contains(fragment), "stderr lacks `\(fragment)`: \(result.stderr)", file: file, line: line
            )
        }
        XCTAssertEqual(sandbox.listing(sandbox.root), before, "the run left files behind", file: file, line: line)
        for place in [sandbox.root + "/" + marker, sandbox.work + "/" + marker, "/tmp/" + marker, "/" + marker] {
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: place), "\(place) was created", file: file, line: line)
        }
    }

    func image(_ sandbox: Sandbox, _ layers: [LayerFixture]) throws {
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([try layout.image(layers)])
    }

    func testParentReferenceMemberName() throws {
        try assertRefused(["layer 1/1 sha256:", "entry '../../\(marker)'", "`..` components are refused"]) {
            try self.image($0, [LayerFixture([.file("../../\(self.marker)", "x")])])
        }
    }

    func testAbsoluteMemberName() throws {
        try assertRefused(["entry '/tmp/\(marker)'", "absolute member names are refused"]) {
            try self.image($0, [LayerFixture([.file("/tmp/\(self.marker)", "x")])])
        }
    }

    func testWriteThroughSymlink() throws {
        try assertRefused([
            "entry 'evil/\(marker)'", "parent 'evil' is a symlink (-> /tmp)", "writing through a symlink is refused"
        ]) {
            try self.image($0, [LayerFixture([.symlink("evil", "/tmp"), .file("evil/\(self.marker)", "x")])])
        }
    }

    func testWriteThroughSymlinkFromALowerLayer() throws {
        try assertRefused(["layer 2/2", "parent 'evil' is a symlink"]) {
            try self.image(
                $0, [LayerFixture([.symlink("evil", "/tmp")]), LayerFixture([.file("evil/\(self.marker)", "x")])])
        }
    }

    func testTwoHopSymlinkChainEscape() throws {
        try assertRefused(["entry 'a/\(marker)'", "parent 'a' is a symlink (-> b)"]) {
            try self.image(
                $0, [LayerFixture([.symlink("b", "../../../tmp"), .symlink("a", "b"), .file("a/\(self.marker)", "x")])])
        }
    }

    func testSymlinkNamedDot() throws {
        try assertRefused(["entry '.' is a symlink", "the image root must be a directory"]) {
            try self.image($0, [LayerFixture([.symlink(".", "/tmp"), .file(self.marker, "x")])])
        }
    }

    func testHardlinkToMissingTarget() throws {
        try assertRefused(["hard link 'etc/shadow' -> 'etc/missing'", "does not exist in the image"]) {
            try self.image($0, [LayerFixture([.dir("etc"), .hardlink("etc/shadow", "etc/missing")])])
        }
    }

    func testHardlinkToOutsideTarget() throws {
        try assertRefused(["hard link 'stolen' -> '../../etc/passwd'", "`..` components are refused"]) {
            try self.image($0, [LayerFixture([.hardlink("stolen", "../../etc/passwd")])])
        }
    }

    func testTruncatedGzipLayer() throws {
        try assertRefused(["layer 1/1", "truncated"]) { sandbox in
            let full = try TarBuilder.tar([.file("big", String(repeating: "data ", count: 20_000))], compression: .gzip)
            var layer = LayerFixture([], compression: .gzip)
            layer.rawBlob = full.prefix(full.count / 2)  // the digest is computed over the truncated bytes
            try self.image(sandbox, [layer])
        }
    }

    func testBlobContentDoesNotMatchDigest() throws {
        try assertRefused(["layer 1/1", "content does not match its digest"]) { sandbox in
            var layer = LayerFixture([.file("a", "original")], compression: .none)
            layer.tamper = { _ in try! TarBuilder.tar([.file("a", "replaced")]) }
            try self.image(sandbox, [layer])
        }
    }

    func testDiffIDMismatch() throws {
        try assertRefused(["layer 1/1", "does not match rootfs.diff_ids"]) { sandbox in
            var layer = LayerFixture([.file("a", "x")], compression: .gzip)
            layer.diffIDOverride = "sha256:" + String(repeating: "0", count: 64)
            try self.image(sandbox, [layer])
        }
    }

    func testMissingBlob() throws {
        try assertRefused(["blob sha256:", "is missing"]) { sandbox in
            var layer = LayerFixture([.file("a", "x")], compression: .gzip)
            layer.skipWritingBlob = true
            try self.image(sandbox, [layer])
        }
    }

    func testDigestContainingParentReference() throws {
        try assertRefused(["`sha256:../../../\(marker)` is not a valid sha256 digest"]) { sandbox in
            var layer = LayerFixture([.file("a", "x")], compression: .gzip)
            layer.digestOverride = "sha256:../../../\(self.marker)"
            try self.image(sandbox, [layer])
        }
    }

    func testMalformedIndexJSON() throws {
        try assertRefused(["malformed index.json"]) { sandbox in
            try self.image(sandbox, [LayerFixture([.file("a", "x")])])
            try Data(#"{"schemaVersion": 2, "manifests": [ {"digest": 5 ]"#.utf8).write(
                to: URL(fileURLWithPath: sandbox.path("img/index.json")))
        }
    }

    func testNoLinuxAmd64Manifest() throws {
        try assertRefused(["no linux/amd64 manifest; available: linux/arm64, linux/s390x"]) { sandbox in
            let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
            try layout.writeIndex([
                try layout.image(
                    [LayerFixture([.file("a", "arm")])], architecture: "arm64", tag: nil, platformInIndex: true),
                try layout.image(
                    [LayerFixture([.file("a", "s390x")])], architecture: "s390x", tag: nil, platformInIndex: true)
            ])
        }
    }

    func testMalformedTarHeaderIsAnErrorNotASkip() throws {
        try assertRefused(["layer 1/1"]) { sandbox in
            var tar = try TarBuilder.tar([.file("a", "x"), .file("b", "y")])
            tar[1024 + 148] ^= 0x01  // break the second header's checksum
            var layer = LayerFixture([], compression: .none)
            layer.rawBlob = tar
            try self.image(sandbox, [layer])
        }
    }

    func testDockerArchiveMemberLinkingOutsideTheArchive() throws {
        try assertRefused(["links outside the archive"], source: "docker-archive:evil.tar") { sandbox in
            let config = try JSONSerialization.data(withJSONObject: [
                "architecture": "amd64", "os": "linux",
                "rootfs": ["type": "layers", "diff_ids": ["sha256:" + String(repeating: "a", count: 64)]]
            ])
            let manifest = try JSONSerialization.data(withJSONObject: [["Config": "c.json", "Layers": ["x/layer.tar"]]])
            try sandbox.write(
                "evil.tar",
                try TarBuilder.tar([
                    TarMember("c.json", .file(config)), .dir("x"), .symlink("x/layer.tar", "../../../etc/passwd"),
                    TarMember("manifest.json", .file(manifest))
                ]))
        }
    }

    func testOutputIsNotOverwrittenWithoutForce() throws {
        let sandbox = try Sandbox()
        try image(sandbox, [LayerFixture([.file("a", "x")])])
        try sandbox.write("out.tar", Data("keep me".utf8))
        let result = try GvltBinary.run(["export", "--container", "oci:img", "-o", "out.tar"], in: sandbox)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("already exists") && result.stderr.contains("--force"), result.stderr)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("out.tar"), encoding: .utf8), "keep me")
    }

    func testMissingSourceAndUnknownTransportNameTheFix() throws {
        let sandbox = try Sandbox()
        var result = try GvltBinary.run(["export", "--container", "oci:nowhere", "-o", "out.tar"], in: sandbox)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("nowhere is not a directory"), result.stderr)
        result = try GvltBinary.run(["export", "--container", "docker://busybox", "-o", "out.tar"], in: sandbox)
        XCTAssertTrue(
            result.stderr.contains("unknown transport `docker`") && result.stderr.contains("oci:DIR[:TAG]"),
            result.stderr)
        result = try GvltBinary.run(["export", "-o", "out.tar"], in: sandbox)
        XCTAssertTrue(result.stderr.contains("no source given"), result.stderr)
        XCTAssertEqual(sandbox.listing(sandbox.work), [])
    }
}
