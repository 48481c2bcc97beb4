import Core
import Foundation
@testable import Nanos
import XCTest

/// The writer, read back by the reader: golden trees, byte-exact file contents of awkward sizes,
/// many files over several log extensions, and reproducible bytes.
final class TFSWriterTests: XCTestCase {
    var work: String!

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "gvlt-tfs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func content(_ path: String) throws -> FileContent {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0, path)
        return .hostFile(path: path, size: Int64(st.st_size), identity: FileIdentity(st))
    }

    /// Writes a volume to a fresh file and reads it back.
    func roundTrip(_ tree: TFSNode, writer: TFSWriter = TFSWriter(), name: String = "vol.tfs") throws -> (
        TFSVolume, TFSWriter.Result
    ) {
        let path = work + "/" + name
        let file = SharedFile(fd: open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644), displayName: path)
        let result = try writer.write(tree, to: file, at: 0)
        try file.truncate(to: result.size)
        return (try TFSReader.read(file: try SharedFile.openReadOnly(path), what: path), result)
    }

    /// A tree as text with extent offsets left out and numbers compared as numbers (ops writes them
    /// as strings, mkfs as integers).
    static func normalized(_ value: TFSValue) -> String {
        switch value {
        case .tuple(let tuple):
            return "("
                + tuple.sortedPairs.compactMap { key, item -> String? in
                    if key == Array("offset".utf8) { return nil }
                    return String(decoding: key, as: UTF8.self) + ":" + normalized(item)
                }.joined(separator: " ") + ")"
        case .vector(let items): return "[" + items.map(normalized).joined(separator: " ") + "]"
        default: return value.text ?? "?"
        }
    }

    func testBasicManifestTreeMatchesTheMkfsGolden() throws {
        let src = TFSGoldenTests.golden + "/volume-basic/src"
        // basic.manifest, in code: the same files, link, empty directory and root keys.
        let tree = TFSNode.directory()
        try tree.set(["hello.txt"], TFSNode(.file(try content(src + "/hello.txt"))), what: "t")
        try tree.set(["empty"], TFSNode(.file(try content(src + "/empty"))), what: "t")
        try tree.set(["big.bin"], TFSNode(.file(try content(src + "/big.bin"))), what: "t")
        try tree.set(["etc", "passwd"], TFSNode(.file(try content(src + "/hello.txt"))), what: "t")
        try tree.set(["link"], TFSNode(.symlink("/hello.txt")), what: "t")
        try tree.set(["workspace"], TFSNode.directory(), what: "t")
        let writer = TFSWriter(
            label: "gvltgold",
            rootKeys: [
                ("program", .string("/hello.txt")),
                ("arguments", .vector([.string("hello.txt"), .string("--flag"), .string("two words")])),
                (
                    "environment",
                    .tuple(TFSTuple([("USER", .string("root")), ("PWD", .string("/")), ("MODE", .string("fast"))]))
                ),
                ("mounts", .tuple(TFSTuple([("%1", .string("/workspace"))])))
            ])
        let (ours, result) = try roundTrip(tree, writer: writer)
        let goldenPath = try TFSGoldenTests.gunzip(TFSGoldenTests.golden + "/volume-basic/basic.tfs.gz")
        let golden = try TFSReader.read(file: try SharedFile.openReadOnly(goldenPath), what: goldenPath)
        XCTAssertEqual(Self.normalized(.tuple(ours.root)), Self.normalized(.tuple(golden.root)))
        XCTAssertEqual(ours.label, "gvltgold")
        XCTAssertEqual(result.uuid.count, 16)
        // Data where mkfs puts it, leaving the two log regions the kernel needs free.
        XCTAssertEqual(
            ours.entry(at: "/big.bin")?.tuple("extents")?.tuple("0")?["offset"]?.unsigned.map { $0 >= 3073 }, true)
        // The dump text is the same but for the UUID line.
        let ourDump = TFSDump.dump(ours).split(separator: "\n").filter {
            !$0.hasPrefix("UUID") && !$0.contains("offset:")
        }
        let goldenDump = try String(
            contentsOfFile: TFSGoldenTests.golden + "/volume-basic/basic.dump.txt", encoding: .utf8
        )
        .split(separator: "\n").filter { !$0.hasPrefix("UUID") && !$0.contains("offset:") }
        XCTAssertEqual(ourDump, goldenDump)
    }

    func testFileContentsOfAwkwardSizesReadBackExactly() throws {
        let tree = TFSNode.directory()
        var expected: [String: Data] = [:]
        for size in [0, 1, 511, 512, 513, 4097, 50_000_000] {
            var bytes = [UInt8](repeating: 0, count: size)
            var state = UInt32(size)
            for index in 0..<size {
                state = state &* 1664525 &+ 1013904223
                bytes[index] = UInt8(truncatingIfNeeded: state >> 24)
            }
            let path = work + "/f\(size)"
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            try tree.set(["data", "f\(size)"], TFSNode(.file(try content(path))), what: "t")
            expected["/data/f\(size)"] = Data(bytes)
        }
        let (volume, _) = try roundTrip(tree)
        for (path, data) in expected {
            let entry = try XCTUnwrap(volume.entry(at: path), path)
            var read = Data()
            try volume.read(entry, path: path) { read.append(contentsOf: $0) }
            XCTAssertEqual(read.count, data.count, path)
            XCTAssertTrue(read == data, "\(path) differs")
        }
        // 50 MB is more than one 32 MiB extent: split, keyed by file offset in sectors.
        let extents = try XCTUnwrap(volume.entry(at: "/data/f50000000")?.tuple("extents"))
        XCTAssertEqual(extents.keys.map { String(decoding: $0, as: UTF8.self) }.sorted(), ["0", "65536"])
        XCTAssertEqual(extents.tuple("65536")?["length"]?.unsigned, UInt64((50_000_000 + 511) / 512 - 65536))
        XCTAssertEqual(volume.entry(at: "/data/f0")?.tuple("extents")?.count, 0)
        XCTAssertEqual(volume.entry(at: "/data/f0")?["filelength"]?.unsigned, 0)
    }

    func testTenThousandFilesInNestedDirectoriesSpanSeveralLogExtensions() throws {
        let tree = TFSNode.directory()
        let path = work + "/small"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        let small = try content(path)
        for index in 0..<10_000 {
            try tree.set(
                ["d\(index % 10)", "sub-directory-\(index % 100)", "file-with-a-rather-long-name-\(index)"],
                TFSNode(.file(small)), what: "t")
        }
        try tree.set(
            ["links", "to-first"], TFSNode(.symlink("/d0/sub-directory-0/file-with-a-rather-long-name-0")), what: "t")
        try tree.set(["empty-dir"], TFSNode.directory(), what: "t")
        let (volume, result) = try roundTrip(tree)
        XCTAssertGreaterThan(result.logExtensions.count, 1, "the record should need more than one extension")
        XCTAssertEqual(volume.logExtensions.map(\.start), [0] + result.logExtensions)
        var files = 0
        func walk(_ tuple: TFSTuple) {
            for (_, value) in tuple.tuple("children")?.sortedPairs ?? [] {
                guard case .tuple(let child) = value else { continue }
                if TFSVolume.kind(of: child) == .file { files += 1 } else { walk(child) }
            }
        }
        walk(volume.root)
        XCTAssertEqual(files, 10_000)
        XCTAssertEqual(
            volume.entry(at: "/d7/sub-directory-57/file-with-a-rather-long-name-9957")?["filelength"]?.unsigned, 1)
        XCTAssertEqual(
            volume.entry(at: "/links/to-first").map(TFSVolume.kind),
            .symlink("/d0/sub-directory-0/file-with-a-rather-long-name-0"))
        XCTAssertEqual(volume.entry(at: "/empty-dir")?.tuple("children")?.count, 0)
    }

    func testSameTreeGivesTheSameBytesAndTheUUIDFollowsTheContent() throws {
        func build(_ text: String, name: String) throws -> Data {
            let tree = TFSNode.directory()
            let path = work + "/" + name + ".src"
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
            try tree.set(["a", "b"], TFSNode(.file(try content(path))), what: "t")
            _ = try roundTrip(tree, writer: TFSWriter(rootKeys: [("program", .string("/a/b"))]), name: name)
            return try Data(contentsOf: URL(fileURLWithPath: work + "/" + name))
        }
        let one = try build("same", name: "one")
        let two = try build("same", name: "two")
        let other = try build("diff", name: "three")
        XCTAssertEqual(one, two)
        XCTAssertNotEqual(one.subdata(in: 9..<25), other.subdata(in: 9..<25), "the UUID should change with the content")
    }

    func testEncodingPrimitivesMatchNanos() {
        var out: [UInt8] = []
        for value: UInt64 in [0, 1, 223, 1024, 3073, 300_000] { TFSEncoding.appendVarint(value, to: &out) }
        XCTAssertEqual(out, [0x00, 0x01, 0x81, 0x5f, 0x88, 0x00, 0x98, 0x01, 0x92, 0xa7, 0x60])
        for (length, bytes) in [
            (0, [0x90]), (7, [0x97]), (8, [0x98, 0x08]), (127, [0x98, 0x7f]), (1000, [0x9f, 0x68]),
            (1024, [0x98, 0x88, 0x00])
        ] as [(UInt64, [UInt8])] {
            var header: [UInt8] = []
            TFSEncoding.appendHeader(immediate: true, type: 1, length: length, to: &header)
            XCTAssertEqual(header, bytes, "length \(length)")
            var cursor = TFSCursor(header, what: "t")
            XCTAssertEqual(try cursor.header().length, length)
        }
        XCTAssertEqual(NanosPartitionTable.chs(byteOffset: 41 * 512), [0x00, 0x2a, 0x00])
        XCTAssertEqual(NanosPartitionTable.chs(byteOffset: 24616 * 512), [0x87, 0x2f, 0x01])
        XCTAssertEqual(NanosPartitionTable.chs(byteOffset: 20_000_000 * 512), [0xfe, 0x3f, 0xff])
    }
}

/// The whole disk from the ops-layout inputs: the same partition layout as ops' image, and both
/// filesystems decode to the golden trees (numbers compared as numbers, extent offsets aside).
final class NanosDiskGoldenTests: XCTestCase {
    func testOpsLayoutInputsGiveTheGoldenLayoutAndTrees() throws {
        let inputs = TFSGoldenTests.golden + "/ops-layout/inputs"
        func file(_ name: String) throws -> TFSNode {
            var st = stat()
            XCTAssertEqual(stat(inputs + "/" + name, &st), 0)
            return TFSNode(
                .file(.hostFile(path: inputs + "/" + name, size: Int64(st.st_size), identity: FileIdentity(st))))
        }
        let root = TFSNode.directory()
        try root.set(["prover"], try file("prover"), what: "t")
        try root.set(["etc", "resolv.conf"], try file("resolv.conf"), what: "t")
        try root.set(["etc", "passwd"], try file("passwd"), what: "t")
        try root.set(["proc", "sys", "kernel", "hostname"], try file("hostname"), what: "t")
        try root.set(["workspace"], TFSNode.directory(), what: "t")
        let boot = TFSNode.directory()
        try boot.set(["kernel"], try file("kernel.img"), what: "t")
        try boot.set(["klib", "gpu_nvidia"], try file("klibs/gpu_nvidia"), what: "t")
        let layout = NanosLayout(
            root: root, boot: boot,
            rootKeys: [
                ("arguments", .vector([.string("/prover"), .string("--flag")])),
                ("consoles", .vector([.string("+serial")])),
                ("environment", .tuple(TFSTuple([("PWD", .string("/")), ("USER", .string("root"))]))),
                ("klibs", .string("bootfs")),
                ("mounts", .tuple(TFSTuple([("%1", .string("/workspace"))]))),
                ("program", .string("/prover")),
                ("reboot_on_exit", .string("t"))
            ])
        let work = NSTemporaryDirectory() + "gvlt-opslayout-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let result = try NanosImageWriter.write(
            layout, bootImage: try NanosBootImage(path: inputs + "/boot.img"), to: work + "/ours.img", force: false)
        let ours = try NanosImageReader.open(work + "/ours.img")
        let golden = try NanosImageReader.open(
            try TFSGoldenTests.gunzip(TFSGoldenTests.golden + "/ops-layout/ops-layout.img.gz"))

        XCTAssertEqual(result.bootOffset, 41 * 512)
        XCTAssertEqual(
            ours.partitions[0], golden.partitions[0], "the boot partition is where ops puts it, CHS included")
        XCTAssertEqual(ours.partitions[1].firstSector, golden.partitions[1].firstSector)
        XCTAssertTrue(ours.partitions.allSatisfy { $0.active && $0.type == 0x83 })
        XCTAssertEqual(ours.stage2Length, 16384)
        XCTAssertEqual(
            TFSWriterTests.normalized(.tuple(ours.boot.root)), TFSWriterTests.normalized(.tuple(golden.boot.root)))
        XCTAssertEqual(
            TFSWriterTests.normalized(.tuple(ours.root.root)), TFSWriterTests.normalized(.tuple(golden.root.root)))
        // Stage1 and stage2 are boot.img's own bytes, but for the partition table.
        let image = try Data(contentsOf: URL(fileURLWithPath: work + "/ours.img"))
        let bootImage = try Data(contentsOf: URL(fileURLWithPath: inputs + "/boot.img"))
        XCTAssertEqual(image.prefix(0x1BE), bootImage.prefix(0x1BE))
        XCTAssertEqual(image.subdata(in: 512..<bootImage.count), bootImage.subdata(in: 512..<bootImage.count))
        XCTAssertEqual(Array(image.subdata(in: 510..<512)), [0x55, 0xAA])
    }
}

final class NanosRunTests: XCTestCase {
    func testExitCodesFollowNanosDebugExit() {
        XCTAssertEqual(NanosRun.result(qemuStatus: 15, debugExit: true, qemuComplained: false), .exited(7))
        XCTAssertEqual(NanosRun.result(qemuStatus: 1, debugExit: true, qemuComplained: false), .exited(0))
        XCTAssertEqual(NanosRun.result(qemuStatus: 1, debugExit: true, qemuComplained: true), .qemuFailed(1))
        XCTAssertEqual(NanosRun.result(qemuStatus: 0, debugExit: true, qemuComplained: false), .unknown(qemuStatus: 0))
        XCTAssertEqual(
            NanosRun.result(qemuStatus: 15, debugExit: false, qemuComplained: false), .unknown(qemuStatus: 15))
        XCTAssertEqual(NanosRun.result(qemuStatus: 511, debugExit: true, qemuComplained: false), .exited(255))
    }

    /// A volume as the kernel would find it after a run that added files: a second record in the log
    /// that references earlier tuples, exactly like Nanos' own writes, must come back out too.
    func testVolumeRoundTripIncludingFilesAppendedToTheLog() throws {
        let work = NSTemporaryDirectory() + "gvlt-volume-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work + "/in/dir", withIntermediateDirectories: true)
        try Data("one".utf8).write(to: URL(fileURLWithPath: work + "/in/dir/one.txt"))
        try Data().write(to: URL(fileURLWithPath: work + "/in/empty"))
        try NanosRun.makeVolume(from: work + "/in", to: work + "/vol.tfs", freeSpace: 1 << 20)
        var volume = try TFSReader.read(file: try SharedFile.openReadOnly(work + "/vol.tfs"), what: "v")
        XCTAssertEqual(volume.label, "gvlt-volume")

        // Append what the kernel appends when a program writes /dir/new.txt ("new!" at a free sector):
        // reference records on the dir's children tuple and the new file's tuple, at the end of the log.
        let fd = open(work + "/vol.tfs", O_RDWR)
        defer { close(fd) }
        let file = SharedFile(fd: dup(fd), displayName: "v")
        var extension1 = [UInt8](repeating: 0, count: 1024 * 512)
        _ = try extension1.withUnsafeMutableBytes { try file.read(into: $0, at: 512) }
        var end = extension1.count - 1
        while extension1[end] == 0 { end -= 1 }
        XCTAssertEqual(extension1[end], 1, "the log ends with END_OF_LOG")
        // Dictionary indices as the writer assigned them (root 1, `children` 2, children tuple 3, `dir` 4,
        // the dir tuple 5, `children` reused, its children tuple 6 …): find the dir's children tuple by reading.
        var cursor = TFSCursor(Array(extension1[0..<end]), at: 9, what: "t")
        XCTAssertEqual(try cursor.byte(), 2)
        _ = try cursor.varint(); _ = try cursor.varint()
        var dictionary: [TFSReader.Entry] = []
        _ = try TFSReader.value(&cursor, dictionary: &dictionary)
        XCTAssertEqual(cursor.position, cursor.bytes.count, "one record holds the whole tree")
        let childrenIndex =
            try XCTUnwrap(
                dictionary.firstIndex { entry in
                    if case .tuple(let tuple) = entry, tuple.tuple("one.txt") != nil { return true }
                    return false
                }) + 1
        let dataSector: UInt64 = 5000
        var record: [UInt8] = []
        TFSEncoding.appendHeader(immediate: false, type: 1, length: 1, to: &record)
        TFSEncoding.appendVarint(UInt64(childrenIndex), to: &record)
        TFSEncoding.appendHeader(immediate: true, type: 0, length: 7, to: &record); record += Array("new.txt".utf8)
        record += [0x92]  // a new tuple with two pairs
        TFSEncoding.appendHeader(immediate: true, type: 0, length: 7, to: &record); record += Array("extents".utf8)
        record += [0x91, 0x81, 0x30, 0x93]
        for (key, value) in [("allocated", 1), ("length", 1), ("offset", Int(dataSector))] {
            TFSEncoding.appendHeader(immediate: true, type: 0, length: UInt64(key.utf8.count), to: &record);
            record += Array(key.utf8)
            record += [0xb0]; TFSEncoding.appendVarint(UInt64(value), to: &record)
        }
        TFSEncoding.appendHeader(immediate: true, type: 0, length: 10, to: &record); record += Array("filelength".utf8)
        record += [0xb0, 4]
        var frame: [UInt8] = [2]
        TFSEncoding.appendVarint(UInt64(record.count), to: &frame)
        TFSEncoding.appendVarint(UInt64(record.count), to: &frame)
        let appended = [4] + frame + record + [1]  // END_OF_SEGMENT where END_OF_LOG was, as the kernel does
        try appended.withUnsafeBytes { try file.write($0, at: 512 + Int64(end)) }
        try Array("new!".utf8).withUnsafeBytes { try file.write($0, at: Int64(dataSector) * 512) }

        volume = try TFSReader.read(file: try SharedFile.openReadOnly(work + "/vol.tfs"), what: "v")
        let copied = try NanosRun.copyOut(volume, to: work + "/out")
        XCTAssertEqual(
            Set(copied.map { String($0.dropFirst(work.count + 5)) }), ["dir/one.txt", "dir/new.txt", "empty"])
        XCTAssertEqual(try String(contentsOfFile: work + "/out/dir/new.txt", encoding: .utf8), "new!")
        XCTAssertEqual(try String(contentsOfFile: work + "/out/dir/one.txt", encoding: .utf8), "one")
    }
}
