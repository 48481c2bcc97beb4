@testable import Core
import Foundation
import XCTest

final class ModelTests: XCTestCase {
    let file = FileMetadata(permissions: 0o644)

    func testTreePathRefusesEscapesAndNormalizes() {
        XCTAssertEqual(try TreePath.components("./usr//bin/./x/").get(), ["usr", "bin", "x"])
        XCTAssertEqual(try TreePath.components("./").get(), [])
        XCTAssertEqual(TreePath.components("/etc/passwd"), .failure(.absolute))
        XCTAssertEqual(TreePath.components("a/../../b"), .failure(.parentReference))
        XCTAssertEqual(TreePath.components("a/.."), .failure(.parentReference))
        XCTAssertEqual(TreePath.components(""), .failure(.empty))
        // Bytes, not Characters: a combining mark after `/` does not glue it to the next component.
        XCTAssertEqual(TreePath.components("../\u{301}x"), .failure(.parentReference))
        XCTAssertEqual(TreePath.components("/\u{301}etc"), .failure(.absolute))
        XCTAssertEqual(try TreePath.components("a/\u{301}b").get(), ["a", "\u{301}b"])
        XCTAssertEqual(TreePath.components(String(repeating: "x", count: 256)), .failure(.tooLong))
    }

    func testDigestGrammar() {
        XCTAssertNoThrow(try ContentDigest("sha256:" + String(repeating: "a", count: 64), context: "t"))
        for bad in [
            "sha256:../../etc", "sha256:" + String(repeating: "A", count: 64), "sha256:abc", "nocolon",
            "sha256:" + String(repeating: "a", count: 63) + "/"
        ] {
            XCTAssertThrowsError(try ContentDigest(bad, context: "t"), bad) {
                XCTAssertTrue($0 is HostileInputError, "\($0)")
            }
        }
        XCTAssertThrowsError(try ContentDigest("sha512:" + String(repeating: "a", count: 128), context: "t")) {
            XCTAssertTrue($0 is UnsupportedError)
        }
    }

    func testHardLinksSurviveReplacementOfTheirFirstName() throws {
        let tree = FileTree()
        let inode = try tree.setLeaf(["a"], kind: .regularFile(.empty), metadata: file)
        try tree.link(["b"], to: inode)
        try tree.link(["c"], to: inode)
        XCTAssertEqual(
            tree.entries().map { "\($0.path):\($0.kind.name)" }, [":dir", "a:file", "b:hardlink", "c:hardlink"])
        try tree.remove(["a"])
        let entries = tree.entries()
        XCTAssertEqual(entries.map { "\($0.path):\($0.kind.name)" }, [":dir", "b:file", "c:hardlink"])
        guard case .hardlink(let target) = entries[2].kind else { return XCTFail() }
        XCTAssertEqual(target, "b")
    }

    func testDirectoryOverDirectoryMergesAndFileOverDirectoryReplaces() throws {
        let tree = FileTree()
        try tree.setDirectory(["d"], metadata: FileMetadata(permissions: 0o700))
        try tree.setLeaf(["d", "x"], kind: .fifo, metadata: file)
        try tree.setDirectory(["d"], metadata: FileMetadata(permissions: 0o755, uid: 7))
        XCTAssertEqual(tree.entries().map(\.path), ["", "d", "d/x"])
        XCTAssertEqual(tree.entries()[1].metadata.uid, 7)
        try tree.setLeaf(["d"], kind: .symlink(target: "/x"), metadata: file)
        XCTAssertEqual(tree.entries().map(\.path), ["", "d"])
    }

    func testLookupsNeverFollowSymlinks() throws {
        let tree = FileTree()
        try tree.setLeaf(["link"], kind: .symlink(target: "/"), metadata: file)
        XCTAssertThrowsError(try tree.setLeaf(["link", "x"], kind: .fifo, metadata: file)) { error in
            XCTAssertEqual(error as? FileTree.LookupProblem, .throughSymlink(prefix: "link", target: "/"))
        }
        try tree.setLeaf(["f"], kind: .regularFile(.empty), metadata: file)
        XCTAssertThrowsError(try tree.node(at: ["f", "y"])) {
            XCTAssertEqual($0 as? FileTree.LookupProblem, .notADirectory(prefix: "f"))
        }
    }

    func testEntriesAreInByteOrder() throws {
        let tree = FileTree()
        for name in ["b", "B", "a-b", "a", "é"] { try tree.setLeaf([name], kind: .fifo, metadata: file) }
        XCTAssertEqual(tree.entries().map(\.path), ["", "B", "a", "a-b", "b", "é"])
    }

    func testRunSpecFromImageConfig() {
        let spec = RunSpec(
            entrypoint: ["/bin/prover", "--fast"], cmd: ["input.json"], env: ["A=1=2", "EMPTY="], workingDir: "",
            user: "prover")
        XCTAssertEqual(spec.command, "/bin/prover")
        XCTAssertEqual(spec.args, ["--fast", "input.json"])
        XCTAssertEqual(spec.env, [.init(key: "A", value: "1=2"), .init(key: "EMPTY", value: "")])
        XCTAssertNil(spec.workingDir)
        XCTAssertEqual(spec.user, "prover")
    }

    func testSuggestions() {
        XCTAssertEqual(Suggestions.closest(to: "Env", in: ["ENV", "Args"]), "ENV")
        XCTAssertNil(Suggestions.closest(to: "completely-different", in: ["ENV", "Args"]))
    }
}
