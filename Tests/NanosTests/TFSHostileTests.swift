import Core
import Foundation
@testable import Nanos
import XCTest

/// Crafted TFS volumes: numbers near 2^64 in the log and in extents, and reference tuples that
/// close a cycle. Each is a clear error naming the image, never a trap or endless recursion, and a
/// file the image says is huge and empty is extracted as a hole.
final class TFSHostileTests: XCTestCase {
    var work: String!

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "gvlt-tfs-hostile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    /// An 8-sector volume whose first extension holds `frames` after the header.
    func volume(_ frames: [UInt8], name: String = "vol.tfs") throws -> String {
        var bytes = TFSEncoding.magic
        TFSEncoding.appendVarint(TFSEncoding.version, to: &bytes)
        TFSEncoding.appendVarint(8, to: &bytes)
        bytes += [UInt8](repeating: 0xAB, count: 16) + Array("hostile".utf8) + [0]
        bytes += frames
        bytes += [UInt8](repeating: 0, count: 8 * 512 - bytes.count)
        let path = work + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    func varint(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        TFSEncoding.appendVarint(value, to: &out)
        return out
    }

    func header(immediate: Bool, type: UInt8, length: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        TFSEncoding.appendHeader(immediate: immediate, type: type, length: length, to: &out)
        return out
    }

    func record(_ value: [UInt8]) -> [UInt8] { [2] + varint(UInt64(value.count)) + varint(UInt64(value.count)) + value }

    func key(_ text: String) -> [UInt8] {
        header(immediate: true, type: TFSEncoding.typeBuffer, length: UInt64(text.utf8.count)) + Array(text.utf8)
    }

    func tupleReference(_ index: UInt64, entries: UInt64) -> [UInt8] {
        header(immediate: false, type: TFSEncoding.typeTuple, length: entries) + varint(index)
    }

    /// Dictionary: 1 the root, 2 the symbol `children`, 3 the children tuple.
    var rootWithChildren: [UInt8] {
        record(
            header(immediate: true, type: TFSEncoding.typeTuple, length: 1) + key("children")
                + header(immediate: true, type: TFSEncoding.typeTuple, length: 0))
    }

    func assertRefused(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(
            try TFSReader.read(file: try SharedFile.openReadOnly(path), what: path), file: file, line: line
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "the image is not named: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "`\(fragment)` not in: \(text)", file: file, line: line)
        }
    }

    func testTheCraftedRootItselfReads() throws {
        let path = try volume(rootWithChildren + [1])
        let read = try TFSReader.read(file: try SharedFile.openReadOnly(path), what: path)
        XCTAssertEqual(read.label, "hostile")
        XCTAssertEqual(read.root.tuple("children")?.count, 0)
    }

    func testLogExtensionsNearTwoToTheSixtyAreOutsideTheVolume() throws {
        for (start, count) in [(UInt64(1) << 62, UInt64(1)), (1, 1 << 62), (1, 1 << 63), (UInt64.max, UInt64.max)] {
            let path = try volume(rootWithChildren + [5] + varint(start) + varint(count), name: "ext-\(start)-\(count)")
            assertRefused(path, "a log extension at sector \(start) (\(count) sectors) lies outside the volume")
        }
    }

    func testLengthsOfTwoToTheSixtyFourMinusOneAreRefusedNotConverted() throws {
        assertRefused(
            try volume([2] + varint(.max) + varint(.max), name: "record"), "claims 18446744073709551615 bytes")
        let string = record(
            header(immediate: true, type: TFSEncoding.typeTuple, length: 1) + key("s")
                + header(immediate: true, type: TFSEncoding.typeString, length: .max))
        assertRefused(try volume(string, name: "string"), "claims 18446744073709551615 bytes")
        let longKey = record(
            header(immediate: true, type: TFSEncoding.typeTuple, length: 1)
                + header(immediate: true, type: TFSEncoding.typeBuffer, length: .max))
        assertRefused(try volume(longKey, name: "key"), "claims 18446744073709551615 bytes")
    }

    func testVarintsPastSixtyFourBitsAreRefusedNotWrapped() throws {
        let path = try volume([2] + [UInt8](repeating: 0xFF, count: 9) + [0x7F], name: "varint")
        assertRefused(path, "a varint does not fit 64 bits")
    }

    func testAReferenceBackToTheRootIsACycleNotARecursion() throws {
        // Record 2 adds `loop` → the root (entry 1) to the root's own children (entry 3).
        let cycle = record(tupleReference(3, entries: 1) + key("loop") + tupleReference(1, entries: 0))
        assertRefused(try volume(rootWithChildren + cycle + [1], name: "cycle"), "a reference cycle or a shared tuple")
        // A tuple under itself.
        let selfLoop = record(tupleReference(3, entries: 1) + key("self") + tupleReference(3, entries: 0))
        assertRefused(try volume(rootWithChildren + selfLoop + [1], name: "self"), "`self`")
        // The same tuple under two names: walkers would visit it twice (exponentially, chained).
        let dir = record(
            tupleReference(3, entries: 1) + key("a") + header(immediate: true, type: TFSEncoding.typeTuple, length: 0))
        let twice = record(tupleReference(3, entries: 1) + key("b") + tupleReference(5, entries: 0))
        assertRefused(try volume(rootWithChildren + dir + twice + [1], name: "shared"), "is already in the tree")
    }

    /// A real volume whose file tuple is then given hostile extents in memory.
    func fileVolume() throws -> (TFSVolume, TFSTuple) {
        let source = work + "/data"
        XCTAssertTrue(FileManager.default.createFile(atPath: source, contents: Data("payload".utf8)))
        var st = stat()
        XCTAssertEqual(stat(source, &st), 0)
        let tree = TFSNode.directory()
        try tree.set(
            ["f"], TFSNode(.file(.hostFile(path: source, size: Int64(st.st_size), identity: FileIdentity(st)))),
            what: "t")
        let path = work + "/files.tfs"
        let file = SharedFile(fd: open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644), displayName: path)
        let result = try TFSWriter().write(tree, to: file, at: 0)
        try file.truncate(to: result.size)
        let volume = try TFSReader.read(file: try SharedFile.openReadOnly(path), what: path)
        return (volume, try XCTUnwrap(volume.entry(at: "/f")))
    }

    func extents(_ key: String, offset: UInt64, length: UInt64) -> TFSValue {
        .tuple(
            TFSTuple([(key, .tuple(TFSTuple([("offset", .string("\(offset)")), ("length", .string("\(length)"))])))]))
    }

    func testExtentsNearTwoToTheSixtyAreRefusedByName() throws {
        let (volume, entry) = try fileVolume()
        entry["filelength"] = .string("\(UInt64.max >> 1)")
        for (key, offset, length) in [
            ("\(UInt64(1) << 60)", UInt64(0), UInt64(1)), ("0", 1 << 58, 1), ("0", 0, 1 << 62), ("0", .max, .max)
        ] {
            entry["extents"] = extents(key, offset: offset, length: length)
            XCTAssertThrowsError(try volume.read(entry, path: "/f") { _ in }) { error in
                XCTAssertTrue("\(error)".contains("/f: extent `\(key)`"), "\(error)")
            }
        }
        entry["filelength"] = .string("\(UInt64.max)")
        XCTAssertThrowsError(try volume.read(entry, path: "/f") { _ in }) { error in
            XCTAssertTrue("\(error)".contains("no valid filelength"), "\(error)")
        }
    }

    func testATerabyteFileWithoutExtentsIsExtractedAsAHole() throws {
        let (volume, entry) = try fileVolume()
        entry["filelength"] = .string("\(UInt64(1) << 40)")
        entry["extents"] = .tuple(TFSTuple())
        let output = work + "/out"
        let fd = open(output, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(fd) }
        XCTAssertEqual(try volume.write(entry, path: "/f", to: fd, displayName: output), 1 << 40)
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_size, 1 << 40)
        XCTAssertLessThan(st.st_blocks, 64, "holes were written as zeros")
    }

    func testHolesBetweenExtentsStayHolesAndTheDataIsExact() throws {
        let (volume, entry) = try fileVolume()
        let original = try XCTUnwrap(entry.tuple("extents")?.sortedPairs.first?.value)
        // The file's one extent moved 1 GiB into the file: a hole, then the payload.
        entry["extents"] = .tuple(TFSTuple([("\(1 << 21)", original)]))
        entry["filelength"] = .string("\((1 << 30) + 7)")
        let output = work + "/out"
        let fd = open(output, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(fd) }
        XCTAssertEqual(try volume.write(entry, path: "/f", to: fd, displayName: output), (1 << 30) + 7)
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertLessThan(st.st_blocks, 64)
        var tail = [UInt8](repeating: 0, count: 7)
        XCTAssertEqual(pread(fd, &tail, 7, off_t(1 << 30)), 7)
        XCTAssertEqual(String(decoding: tail, as: UTF8.self), "payload")
        var streamed = 0
        try volume.read(entry, path: "/f") { streamed += $0.count }
        XCTAssertEqual(streamed, (1 << 30) + 7)
    }
}
