import Core
import Foundation
import XCTest

@testable import Nanos

/// ops reads configs with Go's encoding/json; these are its rules, each checked against what Go does.
final class OpsConfigDecoderTests: XCTestCase {
    func manifest(_ text: String) throws -> OpsManifest { try OpsManifest(data: Data(text.utf8), path: "m.json") }

    func syntaxError(_ text: String) -> GoJSON.SyntaxError? {
        do {
            _ = try GoJSON.parse(Data(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    /// Go's wording, so that a message can be searched for and matches what ops prints.
    func testSyntaxErrorsInGosWordsAndPlaces() {
        let cases: [(String, String, Int, Int)] = [
            ("{\"a\": 1,\n}", "invalid character '}' looking for beginning of object key string", 2, 1),
            ("[1,]", "invalid character ']' looking for beginning of value", 1, 4),
            ("{\"a\": 1 // why\n}", "invalid character '/' after object key:value pair", 1, 9),
            ("{// why\n}", "invalid character '/' looking for beginning of object key string", 1, 2),
            ("{\"a\" 1}", "invalid character '1' after object key", 1, 6),
            ("{\"a\", \"b\"}", "invalid character ',' after object key", 1, 5),
            ("{\"a\": `x`}", "invalid character '`' looking for beginning of value", 1, 7),
            ("[1 2]", "invalid character '2' after array element", 1, 4),
            ("\"a\u{1}\"", "invalid character '\\x01' in string literal", 1, 3),
            ("\"\\q\"", "invalid character 'q' in string escape code", 1, 3),
            ("\"\\u12g4\"", "invalid character 'g' in \\u hexadecimal character escape", 1, 6),
            ("tru", "unexpected end of JSON input", 1, 4),
            ("trUe", "invalid character 'U' in literal true (expecting 'u')", 1, 3),
            ("-x", "invalid character 'x' in numeric literal", 1, 2),
            ("1.x", "invalid character 'x' after decimal point in numeric literal", 1, 3),
            ("1ex", "invalid character 'x' in exponent of numeric literal", 1, 3),
            ("{\"a\": \"b", "unexpected end of JSON input", 1, 9),
            ("", "unexpected end of JSON input", 1, 1),
            ("\u{FEFF}{}", "invalid character '\\xef' looking for beginning of value", 1, 1)
        ]
        for (text, message, line, column) in cases {
            XCTAssertEqual(
                syntaxError(text), GoJSON.SyntaxError(message: message, line: line, column: column),
                text.debugDescription)
        }
    }

    func testNestingIsBoundedAsInGoWithoutUsingTheStack() throws {
        let deepest = String(repeating: "[", count: 10000) + String(repeating: "]", count: 10000)
        XCTAssertNil(syntaxError(deepest))
        let tooDeep = String(repeating: "[", count: 10001) + String(repeating: "]", count: 10001)
        XCTAssertEqual(syntaxError(tooDeep)?.message, "exceeded max depth")
    }

    func testStringsDecodeAsGoDecodesThem() throws {
        let document = try GoJSON.parse(
            Data(#"["a\"\\\/\b\f\n\r\t", "\u00e9\ud83d\ude00", "\ud800x", "\udc00"]"#.utf8) + Data())
        XCTAssertEqual(
            document.value,
            .array([.string("a\"\\/\u{8}\u{c}\n\r\t"), .string("é😀"), .string("\u{FFFD}x"), .string("\u{FFFD}")]))
        // Invalid UTF-8 becomes U+FFFD, as Go's decoder makes it.
        let invalid = try GoJSON.parse(Data([0x22, 0x61, 0xFF, 0x62, 0x22]))
        XCTAssertEqual(invalid.value, .string("a\u{FFFD}b"))
    }

    func testOnlyTheFirstValueIsReadAndTheRestIsNoted() throws {
        let read = try manifest("{\"Program\": \"prover\"}\n\n  {\"Program\": \"other\"} garbage")
        XCTAssertEqual(read.program, "prover")
        XCTAssertEqual(
            read.notes,
            [
                "manifest m.json (line 3, column 3): the text after the JSON object is ignored, as ops ignores it; remove it"
            ])
        XCTAssertEqual(try manifest("{\"Program\": \"prover\"}\n  \n").notes, [])
    }

    func testKeysFoldCaseAndTheLastOneWins() throws {
        let read = try manifest(
            """
            {"Program": "first",
             "program": "second",
             "ENV": {"A": "1"},
             "\u{212A}libs": ["gpu_nvidia"]}
            """)
        XCTAssertEqual(read.program, "second")
        XCTAssertEqual(read.env.map { "\($0.0)=\($0.1)" }, ["A=1"])
        XCTAssertEqual(read.klibs, ["gpu_nvidia"], "the Kelvin sign folds to k, as in Go")
        XCTAssertEqual(
            read.notes,
            [
                "manifest m.json (line 2, column 2): `program` is read as `Program` because ops ignores case in keys; write `Program`",
                "manifest m.json (line 2, column 2): `Program` is given again (first on line 1); the last one counts, as in ops",
                "manifest m.json (line 3, column 2): `ENV` is read as `Env` because ops ignores case in keys; write `Env`",
                "manifest m.json (line 4, column 2): `\u{212A}libs` is read as `Klibs` because ops ignores case in keys; write `Klibs`"
            ])
    }

    /// Go fills maps and structs it already has: a second Env adds to the first, a second RunConfig
    /// sets only the fields it names. null empties a list or a map and leaves a string alone.
    func testDuplicatesMergeMapsAndStructsAndNullIsGoNull() throws {
        let read = try manifest(
            """
            {"Program": "prover", "Env": {"A": "1", "B": "2"}, "Env": {"B": "3", "C": null},
             "RunConfig": {"CPUs": 2}, "RunConfig": {"Memory": "1g"},
             "Args": ["x"], "Args": null, "Program": null, "Dirs": ["d"], "Dirs": ["e"]}
            """)
        XCTAssertEqual(read.env.map { "\($0.0)=\($0.1)" }, ["A=1", "B=3", "C="])
        XCTAssertEqual(read.run.cpus, 2)
        XCTAssertEqual(read.run.memory, "1g")
        XCTAssertEqual(read.args, [])
        XCTAssertEqual(read.program, "prover")
        XCTAssertEqual(read.dirs, ["e"])
        XCTAssertEqual(read.notes.count, 5, read.notes.joined(separator: "\n"))
    }

    func testTypesAreGosTypes() {
        for (text, message) in [
            ("{\"RunConfig\": {\"CPUs\": 1e2}}", "`RunConfig.CPUs` must be a whole number, not 1e2"),
            ("{\"Force\": \"yes\"}", "`Force` must be true or false, not a string"),
            (
                "{\"CloudConfig\": {\"Tags\": [{\"key\": 1}]}}",
                "`CloudConfig.Tags[0].key` must be a string, not a number"
            ),
            ("{\"Env\": {\"A\": 1}}", "`Env.A` must be a string, not a number"),
            ("[]", "expected a JSON object at the top, found a array")
        ] {
            XCTAssertThrowsError(try manifest(text), text) { error in
                XCTAssertTrue("\(error)".contains(message), "\(text): \(error)")
            }
        }
    }
}
