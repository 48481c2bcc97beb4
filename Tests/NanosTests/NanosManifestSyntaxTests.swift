import Nanos
import XCTest

/// `--print-manifest`'s syntax: what needs quotes gets them, what cannot be written is refused, and
/// the text reads back to the same tuple by Nanos' grammar.
final class NanosManifestSyntaxTests: XCTestCase {
    func testRoundTripWithQuotingAndComments() throws {
        let value = TFSValue.tuple(
            TFSTuple([
                ("program", .string("/bin/prover")),
                ("arguments", .vector([.string("prover"), .string("two words"), .string("(x)"), .string("#tag")])),
                ("environment", .tuple(TFSTuple([("A:B", .string("")), ("PATH", .string("/usr/bin:/bin"))]))),
                (
                    "children",
                    .tuple(
                        TFSTuple([
                            (
                                "a file",
                                .tuple(TFSTuple([("contents", .tuple(TFSTuple([("host", .string("/tmp/a file"))])))]))
                            )
                        ]))
                ),
                ("empty", .tuple(TFSTuple()))
            ]))
        let text = try NanosManifestSyntax.write(value, what: "test")
        XCTAssertTrue(text.contains("program:/bin/prover"), text)
        XCTAssertTrue(text.contains("[prover \"two words\" \"(x)\" \"#tag\"]"), text)
        XCTAssertTrue(text.contains("\"A:B\":\"\""), text)
        XCTAssertTrue(text.contains("PATH:/usr/bin:/bin"), text)
        XCTAssertEqual(try NanosManifestSyntax.parse("# a comment\n" + text + "\n# after\n"), value)
    }

    func testWhatTheSyntaxCannotSayIsRefused() {
        XCTAssertThrowsError(
            try NanosManifestSyntax.write(.tuple(TFSTuple([("x", .string("say \"hi\""))])), what: "test")
        ) { error in
            XCTAssertTrue("\(error)".contains("double quote"), "\(error)")
        }
        for bad in ["(a:b", "(a b)", "[a", "(a:b) c", "(:b)"] {
            XCTAssertThrowsError(try NanosManifestSyntax.parse(bad), bad)
        }
    }
}
