@testable import Core
import Foundation
import XCTest

final class PluginRegistryTests: XCTestCase {
    func parse(_ text: String) throws -> [PluginEntry] {
        try PluginsFile.parse(Data(text.utf8), origin: "plugins.json")
    }

    func assertError(_ text: String, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            let description = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(
                    description.contains(fragment), "`\(fragment)` not in: \(description)", file: file, line: line)
            }
        }
    }

    func testParsesEveryField() throws {
        let entries = try parse(
            """
            {"schema": 1, "plugins": [
              {"name": "linuxvm", "kind": "builtin", "role": "backend"},
              {"name": "fc", "kind": "exec", "role": "backend", "command": ["/opt/fc", "--plugin"], "protocol": "gvlt-plugin/1",
               "sha256": "\(String(repeating: "ab", count: 32))", "options": {"vcpus": 2}, "description": "Firecracker"},
              {"name": "tpu", "kind": "dylib", "role": "accelerator", "path": "/opt/libtpu.so", "symbols": {"call": "char *tpu_call(const char *)", "free": "void tpu_free(char *)"}}
            ]}
            """)
        XCTAssertEqual(entries.map(\.name), ["linuxvm", "fc", "tpu"])
        XCTAssertEqual(entries[1].command, ["/opt/fc", "--plugin"])
        XCTAssertEqual(entries[1].options?["vcpus"], .number(2))
        XCTAssertEqual(entries[2].role, .accelerator)
        XCTAssertEqual(entries[2].kind, .dylib)
    }

    func testMalformedFilesGiveLineOrKey() {
        assertError(
            "{\n  \"schema\": 1,\n  \"plugins\": [\n    {\"name\": \"x\" \"kind\": \"exec\"}\n  ]\n}",
            contains: ["not valid JSON at line 4"])
        assertError(#"{"plugins": []}"#, contains: ["missing required key `schema`"])
        assertError(#"{"schema": 2, "plugins": []}"#, contains: ["schema 2 is not supported", "upgrade gvlt"])
        assertError(#"{"schema": 1, "plugin": []}"#, contains: ["unknown key `plugin`", "did you mean `plugins`?"])
        assertError(
            #"{"schema": 1, "plugins": [{"name": 3, "kind": "exec", "role": "backend"}]}"#,
            contains: ["plugins[0].name: expected a string, found number"])
        assertError(
            #"{"schema": 1, "plugins": [{"name": "x", "kind": "exce", "role": "backend", "path": "/x"}]}"#,
            contains: ["plugins[0].kind: `exce` is not one of builtin, exec, dylib", "did you mean `exec`?"])
        assertError(
            #"{"schema": 1, "plugins": [{"name": "x", "kind": "exec", "role": "backend"}]}"#,
            contains: ["plugins[0]: an exec plugin needs `path` or `command`"])
        assertError(
            #"{"schema": 1, "plugins": [{"name": "x", "kind": "builtin", "role": "backend"}, {"name": "x", "kind": "builtin", "role": "backend"}]}"#,
            contains: ["plugins[1].name: `x` is listed twice"])
        assertError(
            #"{"schema": 1, "plugins": [{"name": "x", "kind": "dylib", "role": "backend", "path": "/x", "sha256": "nothex", "symbols": {"call": "char *c(const char *)", "free": "void f(char *)"}}]}"#,
            contains: ["plugins[0].sha256: expected 64 hex digits"])
    }
}
