import XCTest

@testable import Core

final class TarHeaderAuditTests: XCTestCase {
    /// A ustar-shaped block: only the fields the audit reads (size, typeflag) are filled in.
    func header(_ type: Character, size: Int, base256: Bool = false) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        if base256 {
            block[124] = 0x80
            var value = size
            for index in stride(from: 135, to: 124, by: -1) {
                block[index] = UInt8(value & 0xff)
                value >>= 8
            }
        } else {
            let octal = Array(String(size, radix: 8).utf8)
            let field = [UInt8](repeating: UInt8(ascii: "0"), count: 11 - octal.count) + octal
            block.replaceSubrange(124..<135, with: field)
        }
        block[156] = type.asciiValue!
        return block
    }

    func special(_ type: Character, _ body: [UInt8], base256: Bool = false) -> [UInt8] {
        header(type, size: body.count, base256: base256) + body
            + [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
    }

    func pax(_ records: [(String, [UInt8])]) -> [UInt8] {
        var body: [UInt8] = []
        for (key, value) in records {
            let rest = 1 + key.utf8.count + 1 + value.count + 1
            var length = rest + 1
            while String(length).utf8.count + rest != length { length += 1 }
            body += Array("\(length) \(key)=".utf8) + value + [UInt8(ascii: "\n")]
        }
        return body
    }

    func names(_ region: [UInt8]) throws -> TarRawNames {
        try region.withUnsafeBytes { try TarHeaderAudit.names(in: $0) }
    }

    func testPAXNamesComeBackByteForByte() throws {
        let nfd = Array("cafe\u{301}".utf8)
        let region =
            special("x", pax([("path", Array("first".utf8)), ("linkpath", nfd), ("path", nfd)])) + header("0", size: 0)
        XCTAssertEqual(try names(region), TarRawNames(path: nfd, linkpath: nfd))
    }

    func testGNUSparseNameWinsOverPath() throws {
        let region =
            special("x", pax([("GNU.sparse.name", Array("real".utf8)), ("path", Array("GNUSparseFile.0/real".utf8))]))
            + header("0", size: 0)
        XCTAssertEqual(try names(region).path, Array("real".utf8))
    }

    func testNULInAPAXValueIsNamed() {
        let region =
            special("x", pax([("linkpath", Array("etc/passwd".utf8) + [0] + Array("x".utf8))])) + header("2", size: 0)
        XCTAssertThrowsError(try names(region)) { error in
            XCTAssertEqual(
                error as? TarNameProblem,
                TarNameProblem(record: "PAX linkpath", offset: 10, prefix: Array("etc/passwd".utf8)))
        }
    }

    func testGNULongNamesMayEndInNULsButNotHoldTwoNames() throws {
        let padded = special("L", Array("long/name".utf8) + [0, 0, 0]) + header("0", size: 0)
        XCTAssertEqual(try names(padded).path, Array("long/name".utf8))
        let two = special("K", Array("a".utf8) + [0] + Array("b".utf8)) + header("1", size: 0)
        XCTAssertThrowsError(try names(two)) { error in
            XCTAssertEqual((error as? TarNameProblem)?.record, "GNU long link name")
        }
    }

    /// Sizes in base-256 are read as libarchive reads them, so the next header is found after a big body.
    func testBase256SizesAndChainedHeaders() throws {
        let region =
            special("g", Array(repeating: UInt8(ascii: "g"), count: 700), base256: true)
            + special("x", pax([("path", Array("after/global".utf8))])) + header("0", size: 0)
        XCTAssertEqual(try names(region).path, Array("after/global".utf8))
        var negative = [UInt8](repeating: 0, count: 12)
        negative[0] = 0xff
        XCTAssertNil(negative.withUnsafeBytes { TarHeaderAudit.number($0) })
        let huge = [UInt8](repeating: 0x80, count: 1) + [UInt8](repeating: 0xff, count: 11)
        XCTAssertNil(huge.withUnsafeBytes { TarHeaderAudit.number($0) })
        XCTAssertEqual(Array("  0017 \0".utf8).withUnsafeBytes { TarHeaderAudit.number($0) }, 15)
    }

    /// Malformed records are libarchive's to refuse; the audit neither traps nor invents a name.
    func testMalformedRecordsAndShortRegionsAreLeftAlone() throws {
        for body in ["99999999999999999999999 path=x\n", "5 path=abc\n", "12 path=abc", " path=x\n", "9 pathx\n"] {
            XCTAssertNil(try names(special("x", Array(body.utf8)) + header("0", size: 0)).path, body)
        }
        XCTAssertNil(try names(Array(header("x", size: 4096).prefix(512))).path)
        XCTAssertEqual(try names([1, 2, 3]), TarRawNames())
    }

    final class Chunks: ByteSource {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        var left: Int
        init(count: Int) {
            left = count
            chunk.initializeMemory(as: UInt8.self, repeating: 7)
        }
        deinit { chunk.deallocate() }
        func nextChunk() throws -> UnsafeRawBufferPointer {
            guard left > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            left -= 1
            return UnsafeRawBufferPointer(chunk)
        }
    }

    /// While headers are parsed everything is kept, up to the bound; while data is read, only what the
    /// reader has not consumed.
    func testTheWindowIsBoundedWhileHoldingAndSmallWhileStreaming() throws {
        let holding = TarHeaderWindow(inner: Chunks(count: 100), label: "layer x")
        XCTAssertThrowsError(try { while try holding.nextChunk().count > 0 {} }()) { error in
            XCTAssertTrue("\(error)".contains("the headers of one entry take more than 64 MiB"), "\(error)")
        }
        XCTAssertLessThanOrEqual(holding.keptCount, TarHeaderWindow.limit)

        let streaming = TarHeaderWindow(inner: Chunks(count: 100), label: "layer y")
        // The reader consumes all it was given but the last 512 bytes (a header it is about to parse).
        var delivered: Int64 = 0
        streaming.consumed = { max(0, delivered - 512) }
        _ = try streaming.release(through: 0) { _ in }
        while case let count = try streaming.nextChunk().count, count > 0 {
            delivered += Int64(count)
            XCTAssertLessThanOrEqual(streaming.keptCount, 512, "data passing through is not copied")
        }
        XCTAssertEqual(streaming.keptCount, 512)
        streaming.hold(from: delivered - 512)
        try streaming.release(through: delivered) { XCTAssertEqual(Array($0), [UInt8](repeating: 7, count: 512)) }
    }
}
