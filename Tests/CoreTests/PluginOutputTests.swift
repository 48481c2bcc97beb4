import XCTest

@testable import Core

final class PluginOutputTests: XCTestCase {
    func testLinesAcrossChunksAndTheUnfinishedLast() {
        var splitter = PluginLineSplitter(limit: 1 << 20)
        XCTAssertEqual(splitter.append(Data("{\"a\"".utf8)).lines, [])
        let (lines, overflowed) = splitter.append(Data(":1}\n\n{\"b\":2}\n{\"c\"".utf8))
        XCTAssertEqual(lines, [Data("{\"a\":1}".utf8), Data(), Data("{\"b\":2}".utf8)])
        XCTAssertFalse(overflowed)
        XCTAssertEqual(splitter.remainder(), Data("{\"c\"".utf8))
        XCTAssertNil(splitter.remainder())
    }

    func testALinePastTheLimitIsDroppedAndReported() {
        var splitter = PluginLineSplitter(limit: 2 << 20)
        XCTAssertFalse(splitter.append(Data(count: 1 << 20)).overflowed)
        let (lines, overflowed) = splitter.append(Data(count: (1 << 20) + 1))
        XCTAssertEqual(lines, [])
        XCTAssertTrue(overflowed)
        XCTAssertEqual(splitter.overflowReason, "a stdout line longer than 2 MiB")
        XCTAssertNil(splitter.remainder(), "the runaway line is not kept")
        XCTAssertEqual(splitter.append(Data("ok\n".utf8)).lines, [Data("ok".utf8)])
    }

    func testStderrKeepsATailAndCountsEverything() {
        var stderr = PluginStderr(limit: (3 << 20) + 25)
        for n in 0..<3 {
            XCTAssertFalse(stderr.append(Data("line \(n)\n".utf8) + Data(repeating: 0x41, count: 1 << 20)))
        }
        XCTAssertTrue(stderr.append(Data("last words\n".utf8)))
        XCTAssertLessThanOrEqual(stderr.tail.count, 2 << 20)
        XCTAssertEqual(stderr.total, 3 * ((1 << 20) + 7) + 11)
        // The runaway line and the last words share a line: its last 300 characters are shown.
        XCTAssertTrue(stderr.note.hasSuffix("AAAlast words\n"), stderr.note)
        XCTAssertLessThan(stderr.note.count, 20 * 302)
        XCTAssertEqual(PluginStderr(limit: 64 << 20).overflowReason, "more than 64 MiB on stderr")
    }
}
