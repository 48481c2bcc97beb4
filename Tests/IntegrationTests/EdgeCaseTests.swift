import Foundation
import TestSupport
import XCTest

/// Inputs found in review: byte-level path tricks, overlay corner cases, out-of-range header fields,
/// inputs that could block or exhaust memory.
final class EdgeCaseTests: XCTestCase {
    func h(_ text: String) -> String { TarListing.hash(text) }

    func image(_ sandbox: Sandbox, _ layers: [LayerFixture], at name: String = "img") throws {
        let layout = try OCILayoutBuilder(directory: sandbox.path(name))
        try layout.writeIndex([try layout.image(layers)])
    }

    func export(_ sandbox: Sandbox, _ source: String = "oci:img") throws -> RunResult {
        try GvltBinary.run(["export", "--container", source, "-o", "out.tar", "--force"], in: sandbox, timeout: 30)
    }

    func assertRefused(
        _ sandbox: Sandbox, _ fragments: [String], source: String = "oci:img",
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let result = try export(sandbox, source)
        XCTAssertEqual(result.status, 1, "expected a clean refusal: \(result.stderr)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(
                result.stderr.contains(fragment), "stderr lacks `\(fragment)`: \(result.stderr)", file: file, line: line
            )
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out.tar")), file: file, line: line)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], file: file, line: line)
    }

    /// A `/` followed by a combining mark is one Swift Character but two path components to the kernel.
    func testCombiningMarksDoNotHideSeparators() throws {
        for (members, fragment) in [
            ([TarMember.file("../\u{301}x", "x")], "`..` components are refused"),
            ([TarMember.file("/\u{301}etc/passwd", "x")], "absolute member names are refused"),
            ([TarMember.symlink("l", "/etc"), .file("l/\u{301}x", "x")], "parent 'l' is a symlink")
        ] {
            let sandbox = try Sandbox()
            try image(sandbox, [LayerFixture(members)])
            try assertRefused(sandbox, [fragment])
        }
    }

    /// Names are bytes: the composed and decomposed spellings of "café" are two files, and a whiteout
    /// removes only the spelling it names. (Swift's `==` on String would call them equal, so the
    /// listings are compared as bytes.)
    func testCanonicallyEquivalentNamesStayDistinctAndWhiteoutsMatchBytes() throws {
        let nfc = "caf\u{e9}", nfd = "cafe\u{301}"
        func bytes(_ lines: [String]) -> [[UInt8]] { lines.map { Array($0.utf8) } }

        // Through a layer, in GNU headers and in PAX path records (which libarchive would normalize: gvlt
        // takes the records' own bytes).
        for pax in [false, true] {
            let sandbox = try Sandbox()
            var base = LayerFixture([], compression: .none)
            base.rawBlob = try PythonTar.make(
                """
                for name, data in [('caf\\u00e9', b'composed'), ('cafe\\u0301', b'decomposed'), ('\\u0301x', b'mark')]:
                    i = tarfile.TarInfo(name); i.size = len(data); tar.addfile(i, io.BytesIO(data))
                """, pax: pax)
            var top = LayerFixture([], compression: .none)
            top.rawBlob = try PythonTar.make(
                """
                for name in ['.wh.cafe\\u0301', '.wh.\\u0301x']:
                    i = tarfile.TarInfo(name); tar.addfile(i, io.BytesIO(b''))
                """, pax: pax)
            try image(sandbox, [base, top])
            let result = try export(sandbox)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(
                bytes(try TarListing.of(sandbox.path("out.tar"))),
                bytes([". dir 0755 0:0", "\(nfc) file 0644 0:0 sha256=\(h("composed"))"]), "pax: \(pax)")
        }

        // Through a directory, both spellings survive into the tar.
        let dir = try Sandbox()
        try dir.write("root/\(nfc)", Data("composed".utf8))
        try dir.write("root/\(nfd)", Data("decomposed".utf8))
        for name in ["root", "root/\(nfc)", "root/\(nfd)"] { chmod(dir.path(name), name == "root" ? 0o755 : 0o644) }
        let exported = try GvltBinary.run(["export", "--rootfs-dir", "root", "-o", "out.tar"], in: dir)
        XCTAssertEqual(exported.status, 0, exported.stderr)
        XCTAssertEqual(
            bytes(try TarListing.of(dir.path("out.tar"))),
            bytes([
                ". dir 0755 0:0", "\(nfd) file 0644 0:0 sha256=\(h("decomposed"))",
                "\(nfc) file 0644 0:0 sha256=\(h("composed"))"
            ]))
    }

    /// GNU tar's sparse dialects (old GNU headers with extension blocks, PAX 0.0, 0.1 and 1.0 with its
    /// map in the data), followed by entries whose names come from PAX records and GNU long names: the
    /// header audit must stay in step with libarchive across each, compressed or not.
    func testSparseDialectsAreReadExactlyAndTheNamesAfterThemToo() throws {
        let longName = String(repeating: "l", count: 120)
        var content = Data(count: 3 << 20)
        for (offset, text) in [(0, "head"), (1 << 20, "middle"), ((3 << 20) - 4, "tail")] {
            content.replaceSubrange(offset..<offset + text.utf8.count, with: Data(text.utf8))
        }
        // 40 data regions: more than an old GNU header's 4, so extension blocks follow it.
        for region in 0..<40 { content[(region + 2) * 65536 + 7] = UInt8(region + 1) }
        let expected = [
            ". dir 0755 0:0", "caf\u{e9} file 0644 0:0 sha256=\(h("after"))",
            "holes file 0644 0:0 sha256=\(TarBuilder.sha256(content).dropFirst(7).prefix(16))",
            "\(longName) file 0644 0:0 sha256=\(h("long"))"
        ]
        for (format, version) in [("gnu", ""), ("posix", "0.0"), ("posix", "0.1"), ("posix", "1.0")] {
            let sandbox = try Sandbox()
            let made = Process()
            made.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            made.arguments = [
                "python3", "-c",
                """
                import gzip, os, subprocess, sys
                src, out, fmt, version, long_name = sys.argv[1:]
                os.makedirs(src)
                with open(os.path.join(src, 'holes'), 'wb') as f:
                    for offset, text in [(0, b'head'), (1 << 20, b'middle'), ((3 << 20) - 4, b'tail')]:
                        f.seek(offset); f.write(text)
                    for region in range(40):
                        f.seek((region + 2) * 65536 + 7); f.write(bytes([region + 1]))
                    f.truncate(3 << 20)
                for name, text in [('caf\\u00e9', b'after'), (long_name, b'long')]:
                    with open(os.path.join(src, name), 'wb') as f: f.write(text)
                extra = ['--sparse-version=' + version] if version else []
                subprocess.run(['tar', '--sparse', '--format=' + fmt, '--owner=0', '--group=0', '--mode=0644'] + extra
                    + ['-cf', out, '-C', src, 'holes', 'caf\\u00e9', long_name], check=True)
                """, sandbox.path("src"), sandbox.path("layer.tar"), format, version, longName
            ]
            try made.run()
            made.waitUntilExit()
            XCTAssertEqual(made.terminationStatus, 0)
            let plain = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("layer.tar")))
            for compression in [Compression.none, .gzip] {
                let run = try Sandbox()
                var layer = LayerFixture([], compression: compression)
                layer.rawBlob = compression == .none ? plain : try PythonTar.gzip(plain)
                layer.diffIDOverride = TarBuilder.sha256(plain)
                try image(run, [layer])
                let result = try export(run)
                XCTAssertEqual(result.status, 0, "\(format) \(version) \(compression): \(result.stderr)")
                XCTAssertEqual(
                    try TarListing.of(run.path("out.tar")), expected,
                    "\(format) \(version) \(compression)")
            }
        }
    }

    func testDirectoryReplacingALowerSymlinkWithOpaqueMarker() throws {
        // `RUN rm /var/run && mkdir /var/run` over a base with var/run -> /run, as docker's diff records it.
        let sandbox = try Sandbox()
        try image(
            sandbox,
            [
                LayerFixture([.dir("var"), .symlink("var/run", "/run")]),
                LayerFixture([.dir("var/run"), .opaque("var/run"), .file("var/run/pid", "1")])
            ])
        let result = try export(sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(
            try TarListing.of(sandbox.path("out.tar")),
            [". dir 0755 0:0", "var dir 0755 0:0", "var/run dir 0755 0:0", "var/run/pid file 0644 0:0 sha256=\(h("1"))"]
        )
    }

    func testChildrenOfAWhiteoutNameAreRefused() throws {
        let sandbox = try Sandbox()
        try image(
            sandbox, [LayerFixture([.dir("foo"), .file("foo/a", "a")]), LayerFixture([.file(".wh.foo/bar", "x")])])
        try assertRefused(sandbox, ["entry '.wh.foo/bar'", "a whiteout cannot have children"])
    }

    func testOutOfRangeHeaderFieldsAreErrorsNotCrashesOrTruncation() throws {
        for (body, fragment) in [
            (
                "i = tarfile.TarInfo('dev/x'); i.type = tarfile.CHRTYPE; i.devmajor = 2**32 + 5; tar.addfile(i)",
                "device major 4294967301 does not fit"
            ),
            (
                "i = tarfile.TarInfo('root-by-overflow'); i.uid = 2**32; i.size = 1; tar.addfile(i, io.BytesIO(b'x'))",
                "uid 4294967296 does not fit"
            )
        ] {
            let sandbox = try Sandbox()
            var layer = LayerFixture([], compression: .none)
            layer.rawBlob = try PythonTar.make(body)
            try image(sandbox, [layer])
            try assertRefused(sandbox, ["layer 1/1", fragment])
        }
    }

    func testOverlongNamesAndLinkTargetsAreRefused() throws {
        let deep = Array(repeating: "d", count: 3000).joined(separator: "/")
        for (members, fragment) in [
            ([TarMember.file(deep + "/x", "x")], "longer than 4096 bytes"),
            ([TarMember.file(String(repeating: "n", count: 300), "x")], "components longer than 255 bytes"),
            ([TarMember.symlink("l", String(repeating: "t", count: 5000))], "link target is longer than 4096 bytes")
        ] {
            let sandbox = try Sandbox()
            try image(sandbox, [LayerFixture(members)])
            try assertRefused(sandbox, [fragment])
        }
    }

    func testEmptyLayerBlobIsNamed() throws {
        let sandbox = try Sandbox()
        var layer = LayerFixture([], compression: .none)
        layer.rawBlob = Data()
        try image(sandbox, [layer])
        try assertRefused(sandbox, ["layer 1/1", "the blob is empty"])
    }

    func testLayoutFilesThatCouldBlockOrExhaustMemoryAreRefused() throws {
        let sandbox = try Sandbox()
        try image(sandbox, [LayerFixture([.file("a", "x")])])
        try FileManager.default.removeItem(atPath: sandbox.path("img/index.json"))
        symlink("/dev/zero", sandbox.path("img/index.json"))
        try assertRefused(sandbox, ["index.json", "is a symlink"])

        let fifo = try Sandbox()
        let layout = try OCILayoutBuilder(directory: fifo.path("img"))
        var layer = LayerFixture([.file("a", "x")])
        layer.skipWritingBlob = true
        let descriptor = try layout.image([layer])
        try layout.writeIndex([descriptor])
        // Put a FIFO where the layer blob should be: opening it must not wait for a writer.
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(
                    contentsOf: URL(
                        fileURLWithPath:
                            fifo.path("img/blobs/sha256/\((descriptor["digest"] as! String).dropFirst(7))"))))
            as! [String: Any]
        let blob = ((manifest["layers"] as! [[String: Any]])[0]["digest"] as! String).dropFirst(7)
        mkfifo(fifo.path("img/blobs/sha256/\(blob)"), 0o644)
        let result = try export(fifo)
        XCTAssertNotEqual(result.status, -1, "gvlt hung on a FIFO blob")
        XCTAssertTrue(result.stderr.contains("is not a regular file"), result.stderr)
    }

    func testDockerArchiveLaterMemberWins() throws {
        let sandbox = try Sandbox()
        let real = try DockerArchiveBuilder.legacy([[.file("which", "real")]])
        // Prepend a bogus manifest.json; the archive's own, later one must win, as extraction would.
        let bogus = try TarBuilder.tar([TarMember("manifest.json", .file(Data("[]".utf8)))])
        var combined = bogus.prefix(bogus.count - 1024)  // drop the end-of-archive marker
        combined.append(real)
        try sandbox.write("img.tar", Data(combined))
        let result = try export(sandbox, "docker-archive:img.tar")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try TarListing.of(sandbox.path("out.tar")).last, "which file 0644 0:0 sha256=\(h("real"))")
    }

    func testSocketsAndTheirHardLinksAreLeftOutWithAWarning() throws {
        let sandbox = try Sandbox()
        try FileManager.default.createDirectory(atPath: sandbox.path("root"), withIntermediateDirectories: true)
        chmod(sandbox.path("root"), 0o755)
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        make.arguments = [
            "python3", "-c",
            "import os, socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.link(sys.argv[1], sys.argv[2])",
            sandbox.path("root/sock"), sandbox.path("root/sock2")
        ]
        try make.run()
        make.waitUntilExit()
        XCTAssertEqual(make.terminationStatus, 0)
        let result = try GvltBinary.run(["export", "--rootfs-dir", "root", "-o", "out.tar", "--json"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("sock is a socket; tar cannot hold sockets"), result.stderr)
        XCTAssertEqual(try TarListing.of(sandbox.path("out.tar")), [". dir 0755 0:0"])
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(report["skippedSockets"] as? [String], ["sock", "sock2"])
    }
}
