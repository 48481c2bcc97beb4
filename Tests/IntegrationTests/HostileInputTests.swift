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
        let result = try GvltBinary.run(
            ["export", "--container", source, "-o", "out.tar"], in: sandbox, memoryLimit: GvltBinary.hostileMemoryLimit)
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

    func testWhiteoutsWithNothingAfterThePrefix() throws {
        for (name, hidden) in [(".wh.", ""), (".wh..", "."), (".wh...", "..")] {
            try assertRefused(["layer 2/2", "entry 'etc/\(name)' is a whiteout of `\(hidden)`, which names no entry"]) {
                try self.image(
                    $0,
                    [LayerFixture([.dir("etc"), .file("etc/passwd", "x")]), LayerFixture([.file("etc/\(name)", "")])])
            }
        }
    }

    /// libarchive would hand over each of these names cut at the NUL ("etc/passwd"), a different file
    /// from the one the archive names.
    func testNULInsideALengthDelimitedNameIsRefused() throws {
        let cases: [(body: String, pax: Bool, gzip: Bool, record: String, entry: String)] = [
            (
                "i = tarfile.TarInfo('x'); i.pax_headers = {'path': 'etc/passwd\\x00.d/evil'}; i.size = 1; tar.addfile(i, io.BytesIO(b'x'))",
                true, false, "PAX path", "etc/passwd"
            ),
            (
                "i = tarfile.TarInfo('x'); i.pax_headers = {'path': 'etc/passwd\\x00.d/evil'}; i.size = 1; tar.addfile(i, io.BytesIO(b'x'))",
                true, true, "PAX path", "etc/passwd"
            ),
            (
                "i = tarfile.TarInfo('l'); i.type = tarfile.SYMTYPE; i.pax_headers = {'linkpath': 'etc/passwd\\x00x'}; tar.addfile(i)",
                true, false, "PAX linkpath", "l"
            ),
            (
                "i = tarfile.TarInfo('etc/passwd\\x00' + 'd' * 120); i.size = 1; tar.addfile(i, io.BytesIO(b'x'))",
                false, false, "GNU long name", "etc/passwd"
            )
        ]
        for (body, pax, gzip, record, entry) in cases {
            try assertRefused([
                "layer 1/1", "entry '\(entry)': its \(record) holds a NUL byte after 10 bytes ('etc/passwd' and more)"
            ]) {
                var layer = LayerFixture([], compression: gzip ? .gzip : .none)
                layer.rawBlob = try PythonTar.make(body, pax: pax, gzip: gzip)
                try self.image($0, [layer])
            }
        }
    }

    /// 80 GNU long-name blocks of 900 kB each before one entry. libarchive stops such a chain itself
    /// (after 32), before gvlt's own 64 MiB bound on the header bytes it keeps (`TarHeaderAuditTests`);
    /// either way it is refused within the memory bound.
    func testSpecialHeadersChainedWithoutEndAreRefused() throws {
        try assertRefused(["layer 1/1", "special headers"]) {
            var layer = LayerFixture([], compression: .gzip)
            layer.rawBlob = try PythonTar.make(
                """
                for n in range(80):
                    block = tarfile.TarInfo._create_gnu_long_header('n' * 900000, tarfile.GNUTYPE_LONGNAME, 'utf-8', 'strict')
                    tar.fileobj.write(block); tar.offset += len(block)
                i = tarfile.TarInfo('f'); i.size = 1; tar.addfile(i, io.BytesIO(b'x'))
                """, gzip: true)
            try self.image($0, [layer])
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

    /// The blob folder as a link to a copy elsewhere: the blobs would be read from outside the layout.
    func testBlobFolderThatIsASymlinkIsRefused() throws {
        try assertRefused(["img: blobs/sha256 is a symlink, which is refused inside an image layout"]) { sandbox in
            try self.image(sandbox, [LayerFixture([.file("a", "x")])])
            let fm = FileManager.default
            try fm.moveItem(atPath: sandbox.path("img/blobs/sha256"), toPath: sandbox.path("elsewhere"))
            try fm.createSymbolicLink(atPath: sandbox.path("img/blobs/sha256"), withDestinationPath: "../../elsewhere")
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

    func testIndexNestedPastTheParsersDepthGivesItsPosition() throws {
        try assertRefused(["malformed index.json in", "at line 1, column", "Too many nested arrays or dictionaries"]) {
            sandbox in
            try self.image(sandbox, [LayerFixture([.file("a", "x")])])
            try Data(("{\"manifests\": " + String(repeating: "[", count: 100_000)).utf8).write(
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

    /// A one-image layout's manifest wrapped in `levels` image indexes, each listing the level below
    /// `fanOut` times; returns the outermost index's descriptor.
    func nestedIndex(_ layout: OCILayoutBuilder, levels: Int, fanOut: Int) throws -> [String: Any] {
        var level = try layout.image([LayerFixture([.file("a", "x")])], tag: nil)
        for _ in 0..<levels {
            let index = try layout.putBlob(
                try layout.json([
                    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": Array(repeating: level, count: fanOut)
                ]))
            level = ["mediaType": "application/vnd.oci.image.index.v1+json", "digest": index.digest, "size": index.size]
        }
        return level
    }

    /// Three levels of 1000 entries each would be 10^9 manifests from 450 KB; the walk stops early.
    func testIndexesThatFanOutAreRefused() throws {
        let started = Date()
        try assertRefused(["img: its image indexes list more than 4096 manifests in all"]) { sandbox in
            let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
            let level = try self.nestedIndex(layout, levels: 2, fanOut: 1000)
            try layout.writeIndex(Array(repeating: level, count: 1000))
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
    }

    func testIndexesNestedTooDeeplyAreRefused() throws {
        try assertRefused(["img: image indexes nest too deeply"]) { sandbox in
            let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
            let level = try self.nestedIndex(layout, levels: 5, fanOut: 1)
            try layout.writeIndex([level])
        }
    }

    /// Runs `python3 -c script OUT` and returns OUT's bytes and what the script printed.
    func python(_ script: String) throws -> (Data, String) {
        let path = NSTemporaryDirectory() + "gvlt-py-\(UUID().uuidString)"
        defer { unlink(path) }
        let process = Process(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        process.standardOutput = output
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return (
            try Data(contentsOf: URL(fileURLWithPath: path)), printed.trimmingCharacters(in: .whitespacesAndNewlines)
        )
    }

    /// A small tar followed by 24 gzip members of 16 MiB of zeros each: 384 MiB from about 400 KB.
    /// It prints the diff_id, so the bytes are a valid layer when a bound lets them through.
    static let gzipBomb = """
        import gzip, hashlib, io, sys, tarfile
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo('a'); data = b'small'; info.size = len(data); tar.addfile(info, io.BytesIO(data))
        plain = buf.getvalue(); zeros = bytes(16 << 20)
        member = gzip.compress(zeros, 9, mtime=0)
        digest = hashlib.sha256(plain)
        for _ in range(24): digest.update(zeros)
        open(sys.argv[1], 'wb').write(gzip.compress(plain, 9, mtime=0) + member * 24)
        print('sha256:' + digest.hexdigest())
        """

    func bombImage(_ sandbox: Sandbox, _ blob: Data, diffID: String) throws {
        var layer = LayerFixture([], compression: .gzip)
        layer.rawBlob = blob
        layer.diffIDOverride = diffID
        try image(sandbox, [layer])
    }

    func testLayerThatInflatesAThousandTimesIsStoppedWhileRead() throws {
        let (blob, diffID) = try python(Self.gzipBomb)
        XCTAssertLessThan(blob.count, 1 << 20)
        try assertRefused(["layer 1/1", "expands more than 100×", "a decompression bomb", "--max-expanded-size"]) {
            try self.bombImage($0, blob, diffID: diffID)
        }
        // Raised by the user, only the total applies: under it the layer is read whole, over it not.
        let sandbox = try Sandbox()
        try bombImage(sandbox, blob, diffID: diffID)
        let allowed = try GvltBinary.run(
            ["export", "--container", "oci:img", "--max-expanded-size", "1g", "-o", "out.tar"], in: sandbox)
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertEqual(try TarListing.of(sandbox.path("out.tar")).filter { $0.contains("a") }.count, 1)
        let capped = try GvltBinary.run(
            ["export", "--container", "oci:img", "--max-expanded-size", "100m", "-o", "capped.tar"], in: sandbox)
        XCTAssertEqual(capped.status, 1, capped.stderr)
        XCTAssertTrue(
            capped.stderr.contains("the image's layers expand to more than 100.0 MiB (--max-expanded-size)"),
            capped.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("capped.tar")))
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
        let bad = try GvltBinary.run(
            ["export", "--container", "oci:img", "--max-expanded-size", "lots", "-o", "x.tar"], in: sandbox)
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--max-expanded-size `lots` is not a size"), bad.stderr)
    }

    /// GNU tar stores a 1 TiB file of holes in a few KB; its logical size counts toward the bound.
    func testSparseEntryClaimingATerabyteIsRefused() throws {
        let (blob, _) = try python(
            """
            import os, subprocess, sys, tempfile
            d = tempfile.mkdtemp()
            f = os.path.join(d, 'holes')
            with open(f, 'wb') as out: out.truncate(1 << 40)
            subprocess.run(['tar', '--sparse', '--format=gnu', '-cf', sys.argv[1], '-C', d, 'holes'], check=True)
            os.unlink(f); os.rmdir(d)
            """)
        XCTAssertLessThan(blob.count, 1 << 20)
        try assertRefused(["sparse entry 'holes'", "expand to more than", "4× their stored size plus 1 GiB"]) {
            var layer = LayerFixture([], compression: .none)
            layer.rawBlob = blob
            try self.image($0, [layer])
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
        result = try GvltBinary.run(["export", "--container", "ocj:./img/X", "-o", "out.tar"], in: sandbox)
        XCTAssertTrue(
            result.stderr.contains("neither TRANSPORT:REF nor an image reference")
                && result.stderr.contains("oci:DIR[:TAG]"),
            result.stderr)
        // A local file without its transport is not sent to Docker Hub as an image name.
        try sandbox.write("image.tar", Data("not pulled".utf8))
        result = try GvltBinary.run(["export", "--container", "image.tar", "-o", "out.tar"], in: sandbox)
        XCTAssertTrue(
            result.stderr.contains("names a file or directory") && result.stderr.contains("docker-archive:image.tar"),
            result.stderr)
        try FileManager.default.removeItem(atPath: sandbox.path("image.tar"))
        result = try GvltBinary.run(
            ["export", "--container", "docker://busybox", "-o", "out.tar", "--offline"], in: sandbox)
        XCTAssertTrue(
            result.stderr.contains("--offline: docker.io/library/busybox:latest is not in the cache"), result.stderr)
        result = try GvltBinary.run(["export", "-o", "out.tar"], in: sandbox)
        XCTAssertTrue(result.stderr.contains("no source given"), result.stderr)
        XCTAssertEqual(sandbox.listing(sandbox.work), [])
    }
}
