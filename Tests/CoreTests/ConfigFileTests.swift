import Core
import Foundation
import XCTest

/// Manifests, task files, build configs and plugins files are read with a bound: a huge file, an
/// endless device or a directory gives an error naming it, without reading it all.
final class ConfigFileTests: XCTestCase {
    func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "gvlt-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func assertRefused(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ConfigFile.read(path, what: "manifest \(path)", hint: "pass another")) { error in
            XCTAssertTrue("\(error)".contains("manifest \(path) \(fragment)"), "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains("pass another"), "\(error)", file: file, line: line)
        }
    }

    func testSmallFilesReadWhole() throws {
        let dir = try scratch()
        try Data("{\"Program\": \"p\"}".utf8).write(to: URL(fileURLWithPath: dir + "/m.json"))
        XCTAssertEqual(try ConfigFile.text(dir + "/m.json", what: "m", hint: ""), "{\"Program\": \"p\"}")
        // Exactly at the bound is still a file gvlt reads.
        let edge = dir + "/edge.json"
        XCTAssertTrue(FileManager.default.createFile(atPath: edge, contents: Data(count: ConfigFile.sizeLimit)))
        XCTAssertEqual(try ConfigFile.read(edge, what: "m", hint: "").count, ConfigFile.sizeLimit)
    }

    func testHugeEndlessMissingAndDirectoryInputsAreRefusedByName() throws {
        let dir = try scratch()
        // 200 GB, sparse: refused after the first 4 MiB.
        let huge = dir + "/huge.json"
        XCTAssertTrue(FileManager.default.createFile(atPath: huge, contents: Data("{".utf8)))
        XCTAssertEqual(truncate(huge, 200 << 30), 0)
        assertRefused(huge, "is larger than 4 MiB")
        assertRefused("/dev/zero", "is larger than 4 MiB")
        assertRefused(dir, "is a directory, not a file")
        assertRefused(dir + "/absent.json", "does not exist or cannot be read")
        XCTAssertThrowsError(try ConfigFile.text("/dev/urandom", what: "task file t", hint: "")) { error in
            XCTAssertTrue("\(error)".contains("task file t is"), "\(error)")
        }
    }
}
