import Core
import Foundation
import TestSupport
import XCTest

@testable import LinuxVM

/// The native SquashFS writer and its build caches: what it writes decodes exactly as tar2sqfs's
/// output does, and a cache changes how long a build takes, never its bytes.
final class SquashfsWriterTests: XCTestCase {
    let compressors: [RootFilesystem.SquashfsCompressor] = [.zstd, .xz, .gzip]

    /// Deterministic bytes: text-like lines with some binary records, `size` long.
    static func content(seed: UInt64, size: Int) -> Data {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8]()
        bytes.reserveCapacity(size)
        let words = ["prove", "witness", "field", "curve", "pairing", "\n", "0x1f", "  ", "hash", "=", "lambda"]
        while bytes.count < size {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            if state % 9 == 0 {
                withUnsafeBytes(of: state) { bytes += $0 }
            } else {
                bytes += Array(words[Int(state % UInt64(words.count))].utf8) + [32]
            }
        }
        return Data(bytes.prefix(size))
    }

    /// Every kind of entry a root holds (sockets aside: a tar cannot carry them to tar2sqfs).
    func makeTree(bigFileSeed: UInt64 = 1, bigFileSize: Int = 700_000) throws -> FileTree {
        let tree = FileTree(rootMetadata: FileMetadata(permissions: 0o755, mtime: Timestamp(seconds: 1_700_000_000)))
        func file(_ data: Data) throws -> EntryKind {
            guard !data.isEmpty else { return .regularFile(.empty) }
            let shared = try SharedFile.anonymous(in: NSTemporaryDirectory())
            try data.withUnsafeBytes { try shared.write($0, at: 0) }
            return .regularFile(.blobRange(file: shared, offset: 0, length: Int64(data.count)))
        }
        let stamp = Timestamp(seconds: 1_600_000_000)
        try tree.setDirectory(["usr"], metadata: FileMetadata(permissions: 0o755, mtime: stamp))
        try tree.setDirectory(["usr", "bin"], metadata: FileMetadata(permissions: 0o755, mtime: stamp))
        try tree.setDirectory(
            ["tmp"], metadata: FileMetadata(permissions: 0o1777, uid: 0, gid: 0, mtime: stamp))
        try tree.setLeaf(
            ["usr", "bin", "prover"], kind: try file(Self.content(seed: bigFileSeed, size: bigFileSize)),
            metadata: FileMetadata(permissions: 0o755, mtime: stamp))
        let shared = try tree.setLeaf(
            ["usr", "bin", "tool"], kind: try file(Self.content(seed: 2, size: 300_000)),
            metadata: FileMetadata(permissions: 0o4755, uid: 1000, gid: 1000, mtime: stamp))
        try tree.link(["usr", "bin", "tool-alias"], to: shared)
        for index in 0..<40 {
            try tree.setLeaf(
                ["usr", "lib", "mod\(index).py"],
                kind: try file(Self.content(seed: 100 + UInt64(index), size: 700 * index)),
                metadata: FileMetadata(
                    permissions: 0o644, uid: UInt32(index % 3), gid: 50, mtime: Timestamp(seconds: Int64(index))))
        }
        try tree.setLeaf(
            ["usr", "lib", "capable"], kind: try file(Data("cap".utf8)),
            metadata: FileMetadata(
                permissions: 0o755, mtime: stamp,
                xattrs: ["security.capability": [1, 0, 0, 2, 0, 32, 0, 0], "user.origin": Array("gvlt".utf8)]))
        try tree.setDirectory(
            ["etc"], metadata: FileMetadata(permissions: 0o755, mtime: stamp, xattrs: ["user.dir": [7]]))
        try tree.setLeaf(["etc", "empty"], kind: .regularFile(.empty), metadata: FileMetadata(permissions: 0o600))
        try tree.setLeaf(
            ["etc", String(repeating: "n", count: 255)], kind: try file(Data("long name".utf8)),
            metadata: FileMetadata(permissions: 0o644))
        try tree.setLeaf(["bin"], kind: .symlink(target: "usr/bin"), metadata: FileMetadata(permissions: 0o777))
        try tree.setDirectory(["dev"], metadata: FileMetadata(permissions: 0o755))
        try tree.setLeaf(
            ["dev", "console"], kind: .characterDevice(major: 5, minor: 1), metadata: FileMetadata(permissions: 0o600))
        try tree.setLeaf(
            ["dev", "sda"], kind: .blockDevice(major: 8, minor: 300_000), metadata: FileMetadata(permissions: 0o660))
        try tree.setLeaf(["dev", "pipe"], kind: .fifo, metadata: FileMetadata(permissions: 0o644))
        try tree.setLeaf(
            ["usr", "share", "zeros"], kind: try file(Data(count: 400_000)), metadata: FileMetadata(permissions: 0o644))
        return tree
    }

    func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "gvlt-sqfs-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func write(
        _ tree: FileTree, _ compressor: RootFilesystem.SquashfsCompressor, cache: SquashfsBlockCache?, in dir: String
    )
        throws -> (Data, SquashfsWriter.Report)
    {
        let path = dir + "/\(UUID().uuidString).fs"
        let report = try SquashfsWriter(compressor: compressor, mtime: 0, jobs: 2, cache: cache).write(tree, to: path)
        return (try Data(contentsOf: URL(fileURLWithPath: path)), report)
    }

    func blockCache(_ root: String, _ compressor: RootFilesystem.SquashfsCompressor) -> SquashfsBlockCache {
        SquashfsBlockCache(
            cache: CacheDirectory(root: root),
            compressorConfiguration: SquashfsWriter.configuration(compressor, blockSize: 128 << 10)!,
            toolVersion: SquashfsWriter.toolVersion)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(tool) \(arguments)")
        return data
    }

    func testNativeRootDecodesToTheSameTarAsTar2sqfsOutput() throws {
        let dir = try scratch()
        let tree = try makeTree()
        for compressor in compressors {
            let native = dir + "/native-\(compressor).fs"
            try SquashfsWriter(compressor: compressor, mtime: 0, jobs: 2).write(tree, to: native)
            let tool = dir + "/tool-\(compressor).fs"
            try SquashfsImage(compressor: compressor, writer: .tool).build(tree, to: tool)
            // squashfs-tools-ng's own reader turns each into a tar: owners, modes, times, xattrs,
            // devices, hard links and bytes must all come out the same.
            let nativeTar = try Self.run("/usr/bin/sqfs2tar", ["--no-skip", native])
            let toolTar = try Self.run("/usr/bin/sqfs2tar", ["--no-skip", tool])
            XCTAssertGreaterThan(nativeTar.count, 1_000_000)
            XCTAssertEqual(TarBuilder.sha256(nativeTar), TarBuilder.sha256(toolTar), "\(compressor)")
            // And squashfs-tools' unsquashfs, a second reader, lists the same entries.
            let listing = { (path: String) throws -> [Substring] in
                String(decoding: try Self.run("/usr/bin/unsquashfs", ["-lln", path]), as: UTF8.self)
                    .split(separator: "\n").filter { !$0.hasPrefix("d") }
            }
            XCTAssertEqual(try listing(native), try listing(tool), "\(compressor)")
            let superBlock = String(decoding: try Self.run("/usr/bin/unsquashfs", ["-s", native]), as: UTF8.self)
            XCTAssertTrue(superBlock.contains("Compression \(compressor.rawValue)"), superBlock)
        }
    }

    func testSocketsAndHardLinkCountsAreStored() throws {
        let dir = try scratch()
        let tree = try makeTree()
        try tree.setLeaf(["run-socket"], kind: .socket, metadata: FileMetadata(permissions: 0o755))
        let path = dir + "/s.fs"
        try SquashfsWriter(compressor: .zstd, mtime: 0, jobs: 1).write(tree, to: path)
        let listing = String(decoding: try Self.run("/usr/bin/unsquashfs", ["-lln", path]), as: UTF8.self)
        XCTAssertTrue(listing.contains("srwxr-xr-x 0/0") && listing.contains("squashfs-root/run-socket"), listing)
        XCTAssertTrue(listing.contains("-rwsr-xr-x 1000/1000"), listing)
        let extracted = dir + "/x"
        // Only usr/bin: the devices, the socket and the capability need more than a test may do.
        _ = try Self.run("/usr/bin/unsquashfs", ["-q", "-no-xattrs", "-d", extracted, path, "usr/bin"])
        var first = stat(), second = stat()
        XCTAssertEqual(lstat(extracted + "/usr/bin/tool", &first), 0)
        XCTAssertEqual(lstat(extracted + "/usr/bin/tool-alias", &second), 0)
        XCTAssertEqual(first.st_ino, second.st_ino)
        XCTAssertEqual(first.st_nlink, 2)
    }

    func testACacheChangesTimeNeverBytes() throws {
        let dir = try scratch()
        for compressor in compressors {
            let cacheRoot = dir + "/cache-\(compressor)"
            let tree = try makeTree()
            let (cold, _) = try write(tree, compressor, cache: nil, in: dir)
            let (first, firstReport) = try write(tree, compressor, cache: blockCache(cacheRoot, compressor), in: dir)
            XCTAssertEqual(first, cold, "\(compressor): a build filling the cache differs from a cold one")
            XCTAssertEqual(firstReport.blockHits, 0)
            XCTAssertGreaterThan(firstReport.blockMisses, 5)
            let (warm, warmReport) = try write(tree, compressor, cache: blockCache(cacheRoot, compressor), in: dir)
            XCTAssertEqual(warm, cold, "\(compressor): a build from the cache differs from a cold one")
            XCTAssertEqual(warmReport.blockMisses, 0)
            XCTAssertEqual(warmReport.blockHits, firstReport.blockMisses)

            // One program rebuilt with another size: only its blocks are compressed again.
            let changed = try makeTree(bigFileSeed: 9, bigFileSize: 820_001)
            let (changedCold, _) = try write(changed, compressor, cache: nil, in: dir)
            let (changedCached, changedReport) = try write(
                changed, compressor, cache: blockCache(cacheRoot, compressor), in: dir)
            XCTAssertEqual(changedCached, changedCold, "\(compressor)")
            XCTAssertNotEqual(changedCold, cold)
            XCTAssertLessThanOrEqual(changedReport.blockMisses, 8, "\(compressor): \(changedReport)")
            XCTAssertGreaterThan(changedReport.blockHits, 0)
        }
    }

    func entries(in root: String) -> [String] {
        let base = root + "/" + SquashfsBlockCache.area
        return ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).filter { $0 != "tmp" }.flatMap {
            shard in
            ((try? FileManager.default.contentsOfDirectory(atPath: base + "/" + shard)) ?? []).map {
                base + "/" + shard + "/" + $0
            }
        }.sorted()
    }

    func testADamagedBlockEntryIsFoundRemovedAndRebuiltNeverUsed() throws {
        let dir = try scratch()
        let cacheRoot = dir + "/cache"
        let tree = try makeTree()
        let (cold, _) = try write(tree, .zstd, cache: nil, in: dir)
        _ = try write(tree, .zstd, cache: blockCache(cacheRoot, .zstd), in: dir)
        let stored = entries(in: cacheRoot)
        XCTAssertGreaterThan(stored.count, 5)
        // A flipped payload byte, a cut entry, and one entry's file put in another's place.
        func damage(_ path: String, _ change: (inout Data) -> Void) throws {
            var data = try Data(contentsOf: URL(fileURLWithPath: path))
            change(&data)
            chmod(path, 0o644)
            try data.write(to: URL(fileURLWithPath: path))
        }
        try damage(stored[0]) { $0[$0.count - 1] ^= 0x01 }
        try damage(stored[1]) { $0 = $0.prefix($0.count - 3) }
        let other = try Data(contentsOf: URL(fileURLWithPath: stored[3]))
        try damage(stored[2]) { $0 = other }
        let cache = blockCache(cacheRoot, .zstd)
        let (rebuilt, report) = try write(tree, .zstd, cache: cache, in: dir)
        XCTAssertEqual(rebuilt, cold, "a damaged entry changed the output")
        XCTAssertEqual(cache.problems.damaged, 3)
        XCTAssertEqual(report.blockMisses, 3)
        // Rebuilt entries are whole again.
        let again = blockCache(cacheRoot, .zstd)
        let (_, clean) = try write(tree, .zstd, cache: again, in: dir)
        XCTAssertEqual(clean.blockMisses, 0)
        XCTAssertEqual(again.problems.damaged, 0)
    }

    func testADamagedRootEntryIsRebuiltAndTheSameRootComesOut() throws {
        let dir = try scratch()
        let cacheRoot = dir + "/cache"
        let tree = try makeTree()
        func build() throws -> (SquashfsImage.Result, Data) {
            let work = dir + "/" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let result = try SquashfsImage(compressor: .zstd, cache: CacheDirectory(root: cacheRoot)).build(
                tree, scratch: work)
            return (result, try Data(contentsOf: URL(fileURLWithPath: result.path)))
        }
        let (first, bytes) = try build()
        XCTAssertEqual(first.cache?.root, .miss)
        XCTAssertEqual(first.sha256, SHA256Hex.of(data: bytes))
        let (second, again) = try build()
        XCTAssertEqual(second.cache?.root, .hit)
        XCTAssertEqual(again, bytes)
        let entry = cacheRoot + "/" + CachePruning.squashfsRoots + "/" + first.cache!.key! + "/root.fs"
        var data = try Data(contentsOf: URL(fileURLWithPath: entry))
        data[100] ^= 0x40
        try data.write(to: URL(fileURLWithPath: entry + ".new"))
        XCTAssertEqual(rename(entry + ".new", entry), 0)
        let (third, rebuilt) = try build()
        XCTAssertEqual(third.cache?.root, .miss)
        XCTAssertEqual(third.cache?.damagedEntries, 1)
        XCTAssertEqual(rebuilt, bytes)
        XCTAssertEqual(try build().0.cache?.root, .hit)
    }

    func testBuildsRacingOnOneCacheAllGiveTheColdBytes() throws {
        let dir = try scratch()
        let cacheRoot = dir + "/cache"
        let trees = [try makeTree(), try makeTree(bigFileSeed: 5, bigFileSize: 900_000)]
        let colds = try trees.map { try write($0, .zstd, cache: nil, in: dir).0 }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var outputs: [Int: Data] = [:]
            var errors: [Error] = []
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 6) { index in
            do {
                let work = dir + "/race-\(index)"
                try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
                let result = try SquashfsImage(compressor: .zstd, cache: CacheDirectory(root: cacheRoot), jobs: 2)
                    .build(trees[index % 2], scratch: work)
                let data = try Data(contentsOf: URL(fileURLWithPath: result.path))
                results.lock.withLock { results.outputs[index] = data }
            } catch {
                results.lock.withLock { results.errors.append(error) }
            }
        }
        XCTAssertTrue(results.errors.isEmpty, "\(results.errors)")
        for (index, data) in results.outputs { XCTAssertEqual(data, colds[index % 2], "build \(index)") }
        // What the racers left is whole: a build from it uses every entry and finds nothing damaged.
        let cache = blockCache(cacheRoot, .zstd)
        let (again, report) = try write(trees[1], .zstd, cache: cache, in: dir)
        XCTAssertEqual(again, colds[1])
        XCTAssertEqual(report.blockMisses, 0)
        XCTAssertEqual(cache.problems.damaged, 0)
        XCTAssertEqual(
            (try? FileManager.default.contentsOfDirectory(atPath: cacheRoot + "/" + SquashfsBlockCache.area + "/tmp"))
                ?? [], [])
    }

    func testWithoutACacheNothingIsWrittenToIt() throws {
        let dir = try scratch()
        let result = try SquashfsImage(compressor: .zstd, cache: nil).build(try makeTree(), scratch: dir)
        XCTAssertEqual(result.cache, BuildCacheReport(enabled: false))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["root.fs"])
    }

    func testTheToolVersionNamesTheCompressionLibraries() {
        let version = SquashfsWriter.toolVersion
        XCTAssertTrue(version.hasPrefix("gvlt \(Installation.version) "), version)
        XCTAssertTrue(version.contains("libsquashfs.so.") && version.contains("libzstd.so."), version)
    }

    func testANameLongerThanSquashfsHoldsIsRefusedNamingIt() throws {
        let dir = try scratch()
        let tree = FileTree()
        try tree.setLeaf(
            ["etc", String(repeating: "x", count: 300)], kind: .regularFile(.empty),
            metadata: FileMetadata(permissions: 0o644))
        XCTAssertThrowsError(try SquashfsWriter(compressor: .zstd, mtime: 0, jobs: 1).write(tree, to: dir + "/x.fs")) {
            XCTAssertTrue("\($0)".contains("300 bytes long") && "\($0)".contains("/etc/xxx"), "\($0)")
        }
    }

    func testAnExtendedAttributeSquashfsCannotHoldIsRefusedNamingTheFile() throws {
        let dir = try scratch()
        let tree = FileTree()
        try tree.setLeaf(
            ["acl"], kind: .regularFile(.empty),
            metadata: FileMetadata(permissions: 0o644, xattrs: ["system.posix_acl_access": [2, 0, 0, 0]]))
        XCTAssertThrowsError(try SquashfsWriter(compressor: .zstd, mtime: 0, jobs: 1).write(tree, to: dir + "/x.fs")) {
            XCTAssertTrue("\($0)".contains("/acl"), "\($0)")
        }
    }
}
