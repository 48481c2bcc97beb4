@testable import Core
import Foundation
import XCTest

final class HostCommandTests: XCTestCase {
    /// Builds run host tools from two threads at once (the boot partition's tools while the root
    /// compresses). Every command's output must come back whole, and nothing may crash: tearing down
    /// Foundation's `readabilityHandler` read sources from several threads corrupts libdispatch's
    /// event loop on Linux, which is why the output is read with plain blocking reads.
    func testCommandsOnSeveralThreadsAtOnceKeepTheirOutput() throws {
        let threads = 4, runs = 1000
        let failures = NSLock()
        var problems: [String] = []
        let joins = (0..<threads).map { thread in
            startThread(stackSize: 1 << 20) {
                for run in 0..<runs {
                    let result = try HostCommand.run(
                        "/bin/sh", ["-c", "echo out \(thread).\(run); echo err \(thread).\(run) >&2; exit \(run % 3)"],
                        check: false)
                    let lines = Set(result.output.split(separator: "\n").map(String.init))
                    if result.status != Int32(run % 3) || lines != ["out \(thread).\(run)", "err \(thread).\(run)"] {
                        failures.withLock { problems.append("\(thread).\(run): \(result.status) \(result.output)") }
                    }
                }
            }
        }
        for join in joins { try join() }
        XCTAssertEqual(problems, [])
    }

    /// The stress above catches the handler's race only now and then (about one command in 9,000
    /// here); this catches its return for certain: no source reads a pipe through it.
    func testNoSourceReadsAPipeThroughReadabilityHandler() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        let files = try XCTUnwrap(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        XCTAssertGreaterThan(files.count, 100)
        var uses: [String] = []
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("readabilityHandler") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                uses.append("Sources/\(file):\(number + 1)")
            }
        }
        XCTAssertEqual(uses, [], "read pipes with PipeReader")
    }

    /// Output larger than a pipe holds, and a child that keeps writing after a long pause.
    func testLargeAndLateOutputIsKept() throws {
        let big = try HostCommand.run(
            "/bin/sh", ["-c", "head -c 300000 /dev/zero | tr '\\0' x; sleep 0.2; echo; echo late"])
        XCTAssertEqual(big.output.count, 300_000 + 1 + 5)
        XCTAssertTrue(big.output.hasSuffix("x\nlate\n"))
        XCTAssertThrowsError(try HostCommand.run("/bin/sh", ["-c", "echo why; exit 4"], hint: "fix it")) { error in
            let failed = error as? HostCommand.Failed
            XCTAssertEqual(failed?.status, 4)
            XCTAssertEqual(failed?.output, "why\n")
            XCTAssertEqual(failed?.hint, "fix it")
        }
        XCTAssertThrowsError(try HostCommand.run("/nonexistent/tool", [])) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/tool"), "\(error)")
        }
    }
}
