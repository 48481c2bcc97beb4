import Foundation
import XCTest

@testable import Nanos

/// Every ops config collected from public repositories (`Tests/Fixtures/ops-corpus`) gets ops' own
/// verdict: accepted where ops' parser accepts it, refused with ops' error where it refuses it.
final class OpsCorpusTests: XCTestCase {
    static let corpus =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/Tests/Fixtures/ops-corpus"

    /// Where gvlt refuses what ops' parser takes, because ops' build would fail later or build what gvlt
    /// does not: file → the reason. Empty is the goal.
    static let exceptions: [String: String] = [
        "ops/231-ops-documentation_hetzner.md_block1.json":
            "\"Uefi\": true asks for a UEFI image, which gvlt does not build (refused by name, not ignored)"
    ]

    func testEveryConfigGetsOpsVerdict() throws {
        let rows = try String(contentsOfFile: Self.corpus + "/ops-verdicts.tsv", encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        XCTAssertEqual(rows.count, 277)
        var differences: [String] = []
        var notes = 0
        for row in rows {
            let file = String(row[0]), verdict = String(row[3])
            let data = try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/" + file))
            var outcome: String
            do {
                let manifest = try OpsManifest(data: data, path: file)
                notes += manifest.notes.count
                if file.hasPrefix("ops/002-R_") {
                    XCTAssertEqual(manifest.files.isEmpty, false, "`files` is ops' Files")
                    XCTAssertEqual(manifest.notes.count, 1)
                    XCTAssertTrue(
                        manifest.notes.first?.contains("(line 2, column 5): `files` is read as `Files`") == true)
                }
                if file.hasPrefix("ops/272-") {
                    XCTAssertTrue(manifest.notes.first?.contains("the text after the JSON object is ignored") == true)
                }
                outcome = "accept"
            } catch {
                outcome = "reject: \(error)"
            }
            if let reason = Self.exceptions[file] {
                XCTAssertNotEqual(
                    verdict == "accept", outcome == "accept",
                    "\(file) is listed as an exception (\(reason)) but agrees now")
                continue
            }
            if verdict == "accept" {
                if outcome != "accept" { differences.append("\(file): ops accepts, gvlt says \(outcome)") }
            } else {
                // ops' message, without Go's "json: " prefix on unknown fields, must be in gvlt's error.
                let expected = String(verdict.dropFirst("reject: ".count))
                if outcome == "accept" || !outcome.contains(expected) {
                    differences.append("\(file): ops says \(verdict), gvlt says \(outcome)")
                }
            }
        }
        XCTAssertEqual(differences, [], differences.joined(separator: "\n"))
        XCTAssertEqual(notes, 9, "case-folded keys and trailing text in the corpus, each noted once")
    }
}
