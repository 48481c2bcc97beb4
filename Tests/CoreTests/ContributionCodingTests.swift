@testable import Core
import Foundation
import XCTest

/// What an external accelerator answers is checked part by part before a backend sees it, and what
/// a plugin backend gets reads back the same.
final class ContributionCodingTests: XCTestCase {
    var scratch: String!

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "gvlt-contribution-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: scratch) }

    func decode(_ text: String) throws -> AcceleratorContribution {
        try ContributionCoding.decode(
            try JSONValue.parse(Data(text.utf8), what: "test"), location: "plugin `p` (contribute)", scratch: scratch,
            mtime: Timestamp(seconds: 7))
    }

    func testEveryPartIsReadAndRoundTrips() throws {
        let source = scratch + "/fw.bin"
        try Data("firmware".utf8).write(to: URL(fileURLWithPath: source))
        let contribution = try decode(
            """
            {"files": [{"path": "/lib/firmware/x/fw.bin", "source": "\(source)", "mode": 292},
                       {"path": "etc/x.conf", "text": "a=1\\n", "uid": 5, "gid": 6},
                       {"path": "etc/x-link", "type": "symlink", "target": "x.conf"},
                       {"path": "var/x", "type": "dir", "mode": 448}],
             "kernel_modules": ["virtio_balloon", "nvidia-uvm"], "kernel_cmdline": ["iommu=pt", "quiet"],
             "klibs": ["gpu_x"], "env": [{"key": "X_HOME", "value": "/opt/x"}], "resources": {"gpus": 2, "kind": "x"}}
            """)
        XCTAssertEqual(contribution.files.map(\.path), ["lib/firmware/x/fw.bin", "etc/x.conf", "etc/x-link", "var/x"])
        XCTAssertEqual(contribution.files.map(\.metadata.permissions), [0o444, 0o644, 0o777, 0o700])
        XCTAssertEqual(contribution.files[1].metadata.uid, 5)
        XCTAssertEqual(contribution.files.map(\.metadata.mtime), Array(repeating: Timestamp(seconds: 7), count: 4))
        guard case .regularFile(.hostFile(let written, let size, _)) = contribution.files[1].kind else {
            return XCTFail("text file not on the host")
        }
        XCTAssertEqual(try String(contentsOfFile: written, encoding: .utf8), "a=1\n")
        XCTAssertEqual(size, 4)
        XCTAssertEqual(contribution.linux.kernelModules, ["virtio_balloon", "nvidia-uvm"])
        XCTAssertEqual(contribution.linux.kernelCommandLine, ["iommu=pt", "quiet"])
        XCTAssertEqual(contribution.env.map(\.key), ["X_HOME"])
        XCTAssertEqual(contribution.resources, ["gpus": "2", "kind": "x"])

        // What a plugin backend gets decodes to the same contribution.
        var encoded = try ContributionCoding.encode(contribution, accelerator: "p")
        encoded["accelerator"] = nil
        let again = try decode(String(decoding: try JSONSerialization.data(withJSONObject: encoded), as: UTF8.self))
        XCTAssertEqual(again.files.map(\.path), contribution.files.map(\.path))
        XCTAssertEqual(again.files.map(\.metadata), contribution.files.map(\.metadata))
        XCTAssertEqual(again.linux.kernelModules, contribution.linux.kernelModules)
        XCTAssertEqual(again.linux.kernelCommandLine, contribution.linux.kernelCommandLine)
        XCTAssertEqual(again.nanos.klibs, contribution.nanos.klibs)
        XCTAssertEqual(again.resources, contribution.resources)
    }

    func testEachBadPartIsNamed() {
        let cases: [(String, String)] = [
            (
                #"{"files": [{"path": "a/../../etc/passwd", "text": ""}]}"#,
                "files[0].path: `a/../../etc/passwd` is not a path inside the image"
            ),
            (#"{"files": [{"path": "/", "text": ""}]}"#, "files[0].path: `/` is not a path inside the image"),
            (
                #"{"files": [{"path": "x", "source": "/no/such/file"}]}"#,
                "files[0].source: /no/such/file is not a readable regular file"
            ),
            (#"{"files": [{"path": "x", "source": "relative"}]}"#, "must be an absolute host path"),
            (#"{"files": [{"path": "x"}]}"#, "a file needs exactly one of `source` (a host path) and `text`"),
            (#"{"files": [{"path": "x", "type": "symlink"}]}"#, "files[0]: a symlink needs a `target`"),
            (#"{"files": [{"path": "x", "type": "fifo"}]}"#, "files[0].type: `fifo` is not one of file, dir, symlink"),
            (
                #"{"files": [{"path": "x", "text": "", "mode": 99999}]}"#,
                "files[0].mode: 99999 is not a permission mode"
            ),
            (#"{"files": [{"path": "x", "text": "", "owner": 1}]}"#, "files[0]: unknown key `owner`"),
            (#"{"kernel_modules": ["../evil.ko"]}"#, "kernel_modules: `../evil.ko` is not a module name"),
            (#"{"kernel_cmdline": ["a b"]}"#, "kernel_cmdline: `a b` is not one command-line word"),
            (#"{"env": [{"key": "A=B", "value": "x"}]}"#, "env[0].key: `A=B` is not an environment variable name"),
            (#"{"env": [{"key": "A"}]}"#, "env[0]: missing required key `value`"),
            (#"{"resources": {"gpus": true}}"#, "resources: values must be strings or numbers, found boolean"),
            (#"{"kernel_module": ["x"]}"#, "unknown key `kernel_module`")
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try decode(text), text) { error in
                XCTAssertTrue("\(error)".contains("plugin `p` (contribute)"), "\(error)")
                XCTAssertTrue("\(error)".contains(message), "`\(message)` not in: \(error)")
            }
        }
    }

    func testAddedFilesFollowLinkedParentsInsideTheImage() throws {
        let tree = FileTree()
        try tree.setDirectory(["usr", "lib"], metadata: FileMetadata(permissions: 0o755))
        try tree.setLeaf(["lib"], kind: .symlink(target: "usr/lib"), metadata: FileMetadata(permissions: 0o777))
        try tree.setLeaf(
            ["opt"], kind: .symlink(target: "/srv/../usr/./lib"), metadata: FileMetadata(permissions: 0o777))
        try tree.add(
            FileEntry(
                path: "lib/modules/6.1/extra/x.ko", kind: .regularFile(.empty),
                metadata: FileMetadata(permissions: 0o644)))
        try tree.add(FileEntry(path: "opt/y", kind: .directory, metadata: FileMetadata(permissions: 0o700)))
        let paths = Set(tree.entries().map(\.path))
        XCTAssertTrue(paths.contains("usr/lib/modules/6.1/extra/x.ko"), "\(paths)")
        XCTAssertTrue(paths.contains("usr/lib/y"), "\(paths)")
        try tree.setLeaf(["loop"], kind: .symlink(target: "loop"), metadata: FileMetadata(permissions: 0o777))
        XCTAssertThrowsError(
            try tree.add(
                FileEntry(path: "loop/x", kind: .regularFile(.empty), metadata: FileMetadata(permissions: 0o644)))
        ) { error in
            XCTAssertTrue("\(error)".contains("too many levels of symbolic links"), "\(error)")
        }
        try tree.setLeaf(["file"], kind: .regularFile(.empty), metadata: FileMetadata(permissions: 0o644))
        XCTAssertThrowsError(
            try tree.add(
                FileEntry(path: "file/x", kind: .regularFile(.empty), metadata: FileMetadata(permissions: 0o644)))
        ) { error in
            XCTAssertTrue("\(error)".contains("cannot add /file/x to the image: /file is not a directory"), "\(error)")
        }
    }
}
