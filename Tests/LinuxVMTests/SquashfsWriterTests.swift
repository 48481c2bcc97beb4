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

    /// A root packed by `SquashfsImage` with the build caches at `cacheRoot` (nil: none), and what
    /// the caches did. `mtime` (the super block's) changes the root's key but none of its blocks.
    func pack(
        _ tree: FileTree, _ compressor: RootFilesystem.SquashfsCompressor = .zstd, cacheRoot: String?,
        mtime: UInt32 = 0,
        in dir: String
    ) throws -> (Data, BuildCacheReport?) {
        let work = dir + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var image = SquashfsImage(compressor: compressor, cache: cacheRoot.map(CacheDirectory.init(root:)), jobs: 2)
        image.mtime = mtime
        let result = try image.build(tree, scratch: work)
        return (try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(result.path))), result.cache)
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
            let (cold, none) = try pack(tree, compressor, cacheRoot: nil, in: dir)
            XCTAssertEqual(none, BuildCacheReport(enabled: false))
            let (first, firstReport) = try pack(tree, compressor, cacheRoot: cacheRoot, in: dir)
            XCTAssertEqual(first, cold, "\(compressor): a build filling the cache differs from a cold one")
            XCTAssertEqual(firstReport?.root, .miss)
            XCTAssertEqual(firstReport?.blocksReused, 0)
            let compressed = try XCTUnwrap(firstReport?.blocksCompressed)
            XCTAssertGreaterThan(compressed, 5)

            // Another time stamp: another root, every block of which is in the cache.
            let (coldLater, _) = try pack(tree, compressor, cacheRoot: nil, mtime: 1, in: dir)
            let (warm, warmReport) = try pack(tree, compressor, cacheRoot: cacheRoot, mtime: 1, in: dir)
            XCTAssertEqual(warm, coldLater, "\(compressor): a build from cached blocks differs from a cold one")
            XCTAssertEqual(warmReport?.root, .miss)
            XCTAssertEqual(warmReport?.blocksCompressed, 0)
            XCTAssertEqual(warmReport?.blocksReused, compressed)

            // One program rebuilt with another size: only its blocks are compressed again.
            let changed = try makeTree(bigFileSeed: 9, bigFileSize: 820_001)
            let (changedCold, _) = try pack(changed, compressor, cacheRoot: nil, in: dir)
            let (changedCached, changedReport) = try pack(changed, compressor, cacheRoot: cacheRoot, in: dir)
            XCTAssertEqual(changedCached, changedCold, "\(compressor)")
            XCTAssertNotEqual(changedCold, cold)
            XCTAssertLessThanOrEqual(try XCTUnwrap(changedReport?.blocksCompressed), 8, "\(compressor)")
            XCTAssertGreaterThan(try XCTUnwrap(changedReport?.blocksReused), compressed - 8)
        }
    }

    /// A copy of a file under another name (another inode, as a library installed twice is) has the
    /// same blocks: a cached build compresses them once and copies the output, and the root is the
    /// one a build without the cache writes, whose block writer then keeps one copy of the data.
    func testBlocksRepeatedInOneTreeAreCompressedOnce() throws {
        let dir = try scratch()
        for compressor in compressors {
            let plain = try makeTree()
            let (_, plainReport) = try pack(plain, compressor, cacheRoot: dir + "/plain-\(compressor)", in: dir)
            let tree = try makeTree()
            let copy = try SharedFile.anonymous(in: NSTemporaryDirectory())
            // makeTree's program: 5 blocks of 128 KiB and a tail of 44,640 bytes. "opt" comes before
            // "usr", so the copy is compressed first.
            try Self.content(seed: 1, size: 700_000).withUnsafeBytes { try copy.write($0, at: 0) }
            try tree.setLeaf(
                ["opt", "prover-copy"], kind: .regularFile(.blobRange(file: copy, offset: 0, length: 700_000)),
                metadata: FileMetadata(permissions: 0o755))
            let (cold, _) = try pack(tree, compressor, cacheRoot: nil, in: dir)
            let cacheRoot = dir + "/cache-\(compressor)"
            let (cached, report) = try pack(tree, compressor, cacheRoot: cacheRoot, in: dir)
            XCTAssertEqual(cached, cold, "\(compressor): copied blocks changed the output")
            XCTAssertEqual(report?.blocksReused, 6, "\(compressor)")
            XCTAssertEqual(report?.blocksCompressed, plainReport?.blocksCompressed, "\(compressor)")
            // What the index recorded for the root holds: another time stamp compresses nothing.
            let (coldLater, _) = try pack(tree, compressor, cacheRoot: nil, mtime: 2, in: dir)
            let (warm, warmReport) = try pack(tree, compressor, cacheRoot: cacheRoot, mtime: 2, in: dir)
            XCTAssertEqual(warm, coldLater, "\(compressor)")
            XCTAssertEqual(warmReport?.blocksCompressed, 0, "\(compressor)")
            XCTAssertEqual(warmReport?.damagedEntries, 0, "\(compressor)")
        }
    }

    /// The plan keys exactly the blocks the writer compresses, and counts the copies of each.
    func testTheBlockPlanFindsTheRepeatedBlocks() throws {
        let tree = try makeTree()
        let block = Self.content(seed: 42, size: 128 << 10)
        let copy = try SharedFile.anonymous(in: NSTemporaryDirectory())
        // The same block three times in one file, and once more as the first block of another.
        try (block + block + block + Data("tail".utf8)).withUnsafeBytes { try copy.write($0, at: 0) }
        let length = Int64(3 * block.count + 4)
        try tree.setLeaf(
            ["opt", "thrice"], kind: .regularFile(.blobRange(file: copy, offset: 0, length: length)),
            metadata: FileMetadata(permissions: 0o644))
        try tree.setLeaf(
            ["opt", "once"], kind: .regularFile(.blobRange(file: copy, offset: 0, length: Int64(block.count) + 1)),
            metadata: FileMetadata(permissions: 0o644))
        let prefix = SquashfsBlockCache.keyPrefix(compressorConfiguration: [1, 2, 3], toolVersion: "test")
        let plan = try SquashfsBlockPlan(tree, blockSize: 128 << 10, keyPrefix: prefix, jobs: 2)
        let key = block.withUnsafeBytes { SquashfsBlockCache.key(of: $0, prefix: prefix) }
        // makeTree's zeros are three blocks of zeros (which libsquashfs stores sparse, never compressing them).
        let zeros = Data(count: 128 << 10).withUnsafeBytes { SquashfsBlockCache.key(of: $0, prefix: prefix) }
        XCTAssertEqual(plan.repeated, [key: 3, zeros: 2])
        // The digest covers every byte: one byte more in a file's tail is another tree.
        try tree.setLeaf(
            ["opt", "once"], kind: .regularFile(.blobRange(file: copy, offset: 0, length: Int64(block.count) + 2)),
            metadata: FileMetadata(permissions: 0o644))
        let changed = try SquashfsBlockPlan(tree, blockSize: 128 << 10, keyPrefix: prefix, jobs: 2)
        XCTAssertNotEqual(changed.treeDigest, plan.treeDigest)
        XCTAssertEqual(
            try SquashfsBlockPlan(tree, blockSize: 128 << 10, keyPrefix: prefix, jobs: 1).treeDigest,
            changed.treeDigest)
    }

    func rootEntry(_ cacheRoot: String, _ report: BuildCacheReport?) -> String {
        cacheRoot + "/" + CachePruning.squashfsRoots + "/" + (report?.key ?? "none")
    }

    func flip(_ path: String, at offset: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[offset] ^= 0x20
        try data.write(to: URL(fileURLWithPath: path + ".new"))
        XCTAssertEqual(rename(path + ".new", path), 0)
    }

    func testADamagedCachedBlockIsFoundAndCompressedAgainNeverUsed() throws {
        let dir = try scratch()
        let cacheRoot = dir + "/cache"
        let tree = try makeTree()
        let (_, first) = try pack(tree, cacheRoot: cacheRoot, in: dir)
        let entry = rootEntry(cacheRoot, first)
        let records = try XCTUnwrap(SquashfsBlockCache.readIndex(entry + "/" + SquashfsBlockCache.indexName))
        XCTAssertEqual(UInt64(records.count), first?.blocksCompressed)
        // Flip a byte inside three stored blocks of the cached root.
        let compressedBlocks = records.filter { $0.1.result > 0 }.sorted { $0.1.offset < $1.1.offset }
        for record in compressedBlocks.prefix(3) { try flip(entry + "/root.fs", at: Int(record.1.offset) + 10) }
        let (cold, _) = try pack(tree, cacheRoot: nil, mtime: 7, in: dir)
        let (rebuilt, report) = try pack(tree, cacheRoot: cacheRoot, mtime: 7, in: dir)
        XCTAssertEqual(rebuilt, cold, "a damaged block changed the output")
        XCTAssertEqual(report?.damagedEntries, 3)
        XCTAssertEqual(report?.blocksCompressed, 3)
        // The damaged root itself is found by its digest, removed and never reused whole.
        let (again, againReport) = try pack(tree, cacheRoot: cacheRoot, in: dir)
        XCTAssertEqual(againReport?.root, .miss)
        XCTAssertEqual(again, try pack(tree, cacheRoot: nil, in: dir).0)
    }

    func testADamagedBlockIndexIsIgnoredWhole() throws {
        let dir = try scratch()
        let cacheRoot = dir + "/cache"
        let tree = try makeTree()
        let (_, first) = try pack(tree, cacheRoot: cacheRoot, in: dir)
        let index = rootEntry(cacheRoot, first) + "/" + SquashfsBlockCache.indexName
        try flip(index, at: 100)
        XCTAssertNil(SquashfsBlockCache.readIndex(index))
        let (cold, _) = try pack(tree, cacheRoot: nil, mtime: 3, in: dir)
        let (rebuilt, report) = try pack(tree, cacheRoot: cacheRoot, mtime: 3, in: dir)
        XCTAssertEqual(rebuilt, cold)
        XCTAssertEqual(report?.blocksReused, 0)
        XCTAssertEqual(report?.damagedEntries, 1)
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
            return (result, try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(result.path))))
        }
        let (first, bytes) = try build()
        XCTAssertEqual(first.cache?.root, .miss)
        let stored = cacheRoot + "/" + CachePruning.squashfsRoots + "/" + first.cache!.key! + "/sha256"
        XCTAssertEqual(try String(contentsOfFile: stored, encoding: .utf8), SHA256Hex.of(data: bytes) + "\n")
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
        let colds = try trees.map { try pack($0, cacheRoot: nil, in: dir).0 }
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
                let data = try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(result.path)))
                results.lock.withLock { results.outputs[index] = data }
            } catch {
                results.lock.withLock { results.errors.append(error) }
            }
        }
        XCTAssertTrue(results.errors.isEmpty, "\(results.errors)")
        for (index, data) in results.outputs { XCTAssertEqual(data, colds[index % 2], "build \(index)") }
        // What the racers left is whole: a build from it compresses nothing and finds nothing damaged.
        let (again, report) = try pack(trees[1], cacheRoot: cacheRoot, mtime: 5, in: dir)
        XCTAssertEqual(again, try pack(trees[1], cacheRoot: nil, mtime: 5, in: dir).0)
        XCTAssertEqual(report?.blocksCompressed, 0)
        XCTAssertEqual(report?.damagedEntries, 0)
        XCTAssertEqual(
            (try? FileManager.default.contentsOfDirectory(atPath: cacheRoot + "/" + CachePruning.squashfsRoots + "/tmp"))
                ?? [], [])
    }

    /// A root written straight into the disk as it is packed, then completed around it, is the disk
    /// `DiskImage.write` assembles from the same boot partition and root, byte for byte; a boot
    /// partition that outgrew the room planned for it leaves the disk to be written anew, with the
    /// root taken from where it was written. The root goes into the disk only, without a cache and
    /// with one on the disk's file system, which then stores the disk itself (hard-linked), or a copy
    /// of the root when the disk was made far larger than it (`--size`).
    func testARootWrittenIntoTheDiskGivesTheAssembledDisk() throws {
        let dir = try scratch()
        let boot = dir + "/boot.fat"
        try Self.content(seed: 3, size: 300 << 10).write(to: URL(fileURLWithPath: boot))
        let rootStart = DiskImage.rootStart(bootKiB: 300)
        let separate = try SquashfsImage(compressor: .zstd, cache: nil, jobs: 2).build(try makeTree(), scratch: dir)
        let root = try XCTUnwrap(separate.path)
        let rootBytes = try Data(contentsOf: URL(fileURLWithPath: root))
        func packedFromTheCache(_ cache: CacheDirectory) throws -> SquashfsImage.Result {
            let work = dir + "/" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            return try SquashfsImage(compressor: .zstd, cache: cache, jobs: 2).build(try makeTree(), scratch: work)
        }
        let cases: [(String, Bool, Int64?)] = [
            ("plain", false, 64 << 20), ("sized", true, 64 << 20), ("cached", true, nil)
        ]
        for (name, cached, size) in cases {
            let direct = dir + "/direct-\(name).img"
            let output = try AtomicOutput(path: direct, force: false)
            let work = dir + "/work-\(name)"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let cache = CacheDirectory(root: dir + "/cache-\(name)")
            let packed = try SquashfsImage(compressor: .zstd, cache: cached ? cache : nil, jobs: 2).build(
                try makeTree(), scratch: work, image: (output.fd, rootStart))
            XCTAssertTrue(packed.inImage)
            XCTAssertEqual(packed.size, separate.size)
            XCTAssertNil(packed.path)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), [])
            if cached {
                guard case .disk = packed.storeInCache else { return XCTFail("the disk is to be stored") }
            } else {
                XCTAssertNil(packed.storeInCache)
            }
            let assembled = try DiskImage.write(
                boot: boot, root: root, size: size, to: dir + "/assembled-\(name).img", force: false)
            // The signature comes from the root's content: the same wherever the root is read from.
            let inDisk = SharedFile(fd: dup(output.fd), displayName: direct)
            let signature = try DiskImage.diskSignature(root: inDisk, offset: rootStart, size: packed.size)
            XCTAssertEqual(signature, try DiskImage.diskSignature(root: root))
            let anew = try DiskImage.write(
                boot: boot, root: (inDisk, rootStart, packed.size), size: size,
                to: dir + "/anew-\(name).img", force: false)
            XCTAssertEqual(anew.sha256, assembled.sha256)
            // A plan short of the boot partition is refused, with nothing written.
            XCTAssertNil(
                try DiskImage.complete(
                    output, rootStart: DiskImage.rootStart(bootKiB: 200), rootSize: packed.size, boot: boot,
                    diskSignature: signature))
            var committing: DiskImage.Committing?
            var publish: (() -> Void)?
            let done = try XCTUnwrap(
                try DiskImage.complete(
                    output, rootStart: rootStart, rootSize: packed.size, boot: boot, diskSignature: signature,
                    size: size
                ) { disk in
                    committing = disk
                    if case .disk(let stage) = packed.storeInCache { publish = stage(disk) }
                })
            XCTAssertEqual(publish == nil, !cached)
            publish?()
            XCTAssertEqual(committing?.sha256, String(done.sha256.dropFirst("sha256:".count)))
            XCTAssertEqual(committing?.rootStart, rootStart)
            XCTAssertEqual(committing?.rootSize, packed.size)
            XCTAssertEqual(committing?.bytes, done.bytes)
            XCTAssertEqual(done.sha256, assembled.sha256)
            XCTAssertEqual(done.bytes, size ?? rootStart + packed.size)
            XCTAssertEqual(
                try Data(contentsOf: URL(fileURLWithPath: direct)),
                try Data(contentsOf: URL(fileURLWithPath: dir + "/assembled-\(name).img")))
            guard cached else { continue }
            // The entry holds the root: in the disk, hard-linked, or (for the sized disk) a copy.
            let hit = try packedFromTheCache(cache)
            XCTAssertEqual(hit.cache?.root, .hit)
            XCTAssertEqual(hit.size, separate.size)
            XCTAssertEqual(hit.offset, size == nil ? rootStart : 0)
            let entry = rootEntry(cache.root, hit.cache)
            var disk = stat()
            var stored = stat()
            XCTAssertEqual(stat(direct, &disk), 0)
            XCTAssertEqual(stat(entry + "/root.fs", &stored), 0)
            XCTAssertEqual(disk.st_ino == stored.st_ino, size == nil)
            let held = try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(hit.path)))
            XCTAssertEqual(held[Int(hit.offset)..<Int(hit.offset + hit.size)], rootBytes)
        }
        // The disk changed in place changes its entry too: found by its digest, removed and rebuilt.
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: dir + "/direct-cached.img"))
        try handle.seek(toOffset: UInt64(rootStart) + 5000)
        try handle.write(contentsOf: Data([0xA5, 0x5A]))
        try handle.close()
        let rebuilt = try packedFromTheCache(CacheDirectory(root: dir + "/cache-cached"))
        XCTAssertEqual(rebuilt.cache?.root, .miss)
        XCTAssertEqual(rebuilt.cache?.damagedEntries, 1)
        XCTAssertEqual(rebuilt.offset, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(rebuilt.path))), rootBytes)
    }

    /// Two builds of one root racing to store their disks: each disk is staged before it takes its
    /// name and published after, so the loser's staging link goes away only once its disk is named
    /// (a file that lost its last name could not be named again), and both disks come out.
    func testTwoDisksStagedForOneEntryBothTakeTheirNames() throws {
        let dir = try scratch()
        let roots = BuildFileCache.roots(CacheDirectory(root: dir + "/cache"))
        let bytes = Self.content(seed: 4, size: 3 << 20)
        var outputs: [AtomicOutput] = []
        var publishes: [() -> Void] = []
        for name in ["a.img", "b.img"] {
            let output = try AtomicOutput(path: dir + "/" + name, force: false)
            try bytes.withUnsafeBytes { try SharedFile(fd: dup(output.fd), displayName: name).write($0, at: 0) }
            outputs.append(output)
            publishes.append(
                try XCTUnwrap(
                    roots.stage(
                        "k", file: output.temporaryPath, sha256: SHA256Hex.of(data: bytes), range: (1 << 20, 1 << 20))))
        }
        for (output, publish) in zip(outputs, publishes) {
            try output.commit()
            publish()
        }
        // What the closures kept (the staging directories) goes with them.
        publishes.removeAll()
        for name in ["a.img", "b.img"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)), bytes)
        }
        var first = stat()
        var stored = stat()
        XCTAssertEqual(stat(dir + "/a.img", &first), 0)
        XCTAssertEqual(stat(roots.directory + "/k/root.fs", &stored), 0)
        XCTAssertEqual(first.st_ino, stored.st_ino)
        var damaged = false
        let hit = try XCTUnwrap(try roots.lookup("k", at: dir + "/hit", damaged: &damaged))
        XCTAssertEqual([hit.offset, hit.size], [1 << 20, 1 << 20])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: roots.directory + "/tmp"), [])
    }

    /// With the cache on another file system than the disk, the root cannot be stored as a link to
    /// the disk: it gets a file of its own as well, which is stored.
    func testACacheOnAnotherFileSystemGetsARootFileOfItsOwn() throws {
        let dir = try scratch()
        var here = stat()
        var shm = stat()
        guard stat(dir, &here) == 0, stat("/dev/shm", &shm) == 0, here.st_dev != shm.st_dev,
            access("/dev/shm", W_OK) == 0
        else { throw XCTSkip("no writable /dev/shm on another file system") }
        let cacheRoot = "/dev/shm/gvlt-test-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: cacheRoot) }
        let separate = try SquashfsImage(compressor: .zstd, cache: nil, jobs: 2).build(try makeTree(), scratch: dir)
        let output = try AtomicOutput(path: dir + "/disk.img", force: false)
        defer { output.abandon() }
        let work = dir + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let packed = try SquashfsImage(compressor: .zstd, cache: CacheDirectory(root: cacheRoot), jobs: 2).build(
            try makeTree(), scratch: work, image: (output.fd, 1 << 20), leavingCacheStore: true)
        XCTAssertTrue(packed.inImage)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(packed.path))),
            try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(separate.path))))
        guard case .file(let store) = packed.storeInCache else { return XCTFail("the root file is to be stored") }
        store()
        let entry = rootEntry(cacheRoot, packed.cache)
        XCTAssertFalse(FileManager.default.fileExists(atPath: entry + "/range"))
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: entry + "/root.fs")),
            try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(separate.path))))
    }

    /// The disk signature of a SquashFS root comes from its super block and tables: it follows a
    /// change to any file's bytes (through the sizes of its compressed blocks) and to the names,
    /// and a super block that does not describe the file (tables past its end) is not trusted: the
    /// whole file is hashed instead, as for any other root.
    func testTheDiskSignatureFollowsTheRootAndTrustsNoBrokenSuperBlock() throws {
        let dir = try scratch()
        func signature(_ tree: FileTree) throws -> UInt32 {
            let work = dir + "/" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let path = try XCTUnwrap(try SquashfsImage(compressor: .zstd, cache: nil).build(tree, scratch: work).path)
            return try DiskImage.diskSignature(root: path)
        }
        let base = try signature(makeTree())
        XCTAssertEqual(try signature(makeTree()), base)
        XCTAssertNotEqual(try signature(makeTree(bigFileSeed: 2)), base)
        XCTAssertNotEqual(try signature(makeTree(bigFileSize: 700_001)), base)

        // Not SquashFS (an ext4 root): the first four bytes of its sha256.
        let other = dir + "/other.img"
        let bytes = Self.content(seed: 9, size: 10_000)
        try bytes.write(to: URL(fileURLWithPath: other))
        XCTAssertEqual(
            try DiskImage.diskSignature(root: other), UInt32(String(SHA256Hex.of(data: bytes).prefix(8)), radix: 16))
        // A SquashFS super block whose tables lie past the end: hashed whole, no read past the end.
        var broken = Data([0x68, 0x73, 0x71, 0x73]) + Data(count: 92)
        broken.replaceSubrange(64..<72, with: withUnsafeBytes(of: UInt64(5000).littleEndian) { Data($0) })
        broken.replaceSubrange(40..<48, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        try broken.write(to: URL(fileURLWithPath: other))
        XCTAssertEqual(
            try DiskImage.diskSignature(root: other), UInt32(String(SHA256Hex.of(data: broken).prefix(8)), radix: 16))
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
