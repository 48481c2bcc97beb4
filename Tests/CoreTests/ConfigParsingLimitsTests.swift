import Core
import Foundation
import XCTest

/// YAML and JSON configs that would crash or exhaust a parser: deep nesting, alias bombs. Each is an
/// error naming the file; what is within the bounds still parses.
final class ConfigParsingLimitsTests: XCTestCase {
    func assertRefused(_ text: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSONValue.parseYAML(text, what: "task file t.yaml"), file: file, line: line) {
            for fragment in ["task file t.yaml"] + fragments {
                XCTAssertTrue("\($0)".contains(fragment), "\($0)", file: file, line: line)
            }
        }
    }

    func testBillionLaughsIsCountedNotExpanded() {
        var lines = [#"a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#]
        for i in 1..<9 {
            lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ",") + "]")
        }
        let started = Date()
        assertRefused(lines.joined(separator: "\n"), ["expands to more than 100000 values"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testNestingIsBoundedBeforeTheParserRecurses() {
        // 100 000 levels overflowed the stack in libyaml's composer before the bound.
        assertRefused(
            "a: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
            ["opens more than 16384 `[`/`{` collections (line 1)"])
        assertRefused("a:\n" + String(repeating: " ", count: 2000) + "b: 1\n", ["line 2 is indented more than 1024"])
        // Within the bounds, deep documents parse (on the parser's own large stack).
        let deep = "a: " + String(repeating: "[", count: 16_000) + String(repeating: "]", count: 16_000)
        XCTAssertNoThrow(try JSONValue.parseYAML(deep, what: "t"))
    }

    func testJSONSyntaxErrorsGiveLineAndColumn() {
        let deep = Data(("{\n\"a\": " + String(repeating: "[", count: 100_000)).utf8)
        XCTAssertThrowsError(try JSONValue.parse(deep, what: "plugins file p.json")) {
            XCTAssertTrue("\($0)".contains("plugins file p.json is not valid JSON at line 2, column"), "\($0)")
            XCTAssertTrue("\($0)".contains("Too many nested arrays or dictionaries"), "\($0)")
        }
        XCTAssertThrowsError(try JSONValue.parse(Data("{\"a\": 1,\n  \"b\": }".utf8), what: "m.json")) {
            XCTAssertTrue("\($0)".contains("m.json is not valid JSON at line 2, column 8"), "\($0)")
        }
    }
}
