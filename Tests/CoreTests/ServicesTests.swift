@testable import Core
import Foundation
import XCTest

final class ServicesTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gvlt-services-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func contents() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: directory).sorted()) ?? [] }

    /// A trailing hole is given its size in a regular file; into /dev/null (a digest only) there is
    /// nothing to size, and finishing must not fail.
    func testFileSinkTrailingHoleInAFileAndIntoDevNull() throws {
        let path = directory + "/holes"
        let fd = open(path, O_RDWR | O_CREAT, 0o600)
        let sink = FileSink(fd: fd, displayName: path)
        try "data".withCString { try sink.write(UnsafeRawBufferPointer(start: $0, count: 4)) }
        try sink.writeZeros(3 << 20)
        try sink.finish()
        close(fd)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, 4 + (3 << 20))

        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        let discard = FileSink(fd: null, displayName: "/dev/null")
        try "data".withCString { try discard.write(UnsafeRawBufferPointer(start: $0, count: 4)) }
        try discard.writeZeros(3 << 20)
        XCTAssertNoThrow(try discard.finish())
        XCTAssertEqual(discard.digest(), sink.digest())
    }

    func testAtomicOutputAppearsWholeOrNotAtAll() throws {
        let path = directory + "/out.img"
        let output = try AtomicOutput(path: path, force: false)
        _ = "partial".withCString { write(output.fd, $0, 7) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "visible before commit")
        XCTAssertEqual(contents(), [], "the file being written has no name (O_TMPFILE)")
        try output.commit()
        XCTAssertEqual(contents(), ["out.img"])
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "partial")

        XCTAssertThrowsError(try AtomicOutput(path: path, force: false)) { XCTAssertTrue("\($0)".contains("--force")) }
        let abandoned = try AtomicOutput(path: path, force: true)
        abandoned.abandon()
        XCTAssertEqual(contents(), ["out.img"])
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "partial")

        let replacement = try AtomicOutput(path: path, force: true)
        _ = "new".withCString { write(replacement.fd, $0, 3) }
        try replacement.commit()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertEqual(contents(), ["out.img"])
    }

    func testAtomicOutputWithoutForceNeverReplacesAFileThatAppearedMeanwhile() throws {
        let path = directory + "/race.img"
        let output = try AtomicOutput(path: path, force: false)
        try Data("theirs".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try output.commit())
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "theirs")
    }

    func testCacheProducesEachEntryOnceUnderConcurrencyAndNeverPublishesFailures() throws {
        let cache = CacheDirectory(root: directory + "/cache")
        let counter = NSLock()
        var produced = 0
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let path = try! cache.entry("kernels/debian-6.1") { staging in
                counter.withLock { produced += 1 }
                usleep(50_000)
                try Data("vmlinuz".utf8).write(to: URL(fileURLWithPath: staging + "/vmlinuz"))
            }
            XCTAssertEqual(try? String(contentsOfFile: path + "/vmlinuz", encoding: .utf8), "vmlinuz")
        }
        XCTAssertEqual(produced, 1)

        struct Boom: Error {}
        XCTAssertThrowsError(
            try cache.entry("kernels/broken") { staging in
                try Data("half".utf8).write(to: URL(fileURLWithPath: staging + "/vmlinuz"))
                throw Boom()
            })
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/cache/entries/kernels/broken"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory + "/cache/tmp"), [])
        XCTAssertThrowsError(try cache.entryPath("../escape"))
    }

    func testCacheLocationPrecedence() {
        XCTAssertEqual(CacheDirectory.resolve(override: "/x", environment: ["GVLT_CACHE_DIR": "/y"]).root, "/x")
        XCTAssertEqual(CacheDirectory.resolve(environment: ["GVLT_CACHE_DIR": "/y", "XDG_CACHE_HOME": "/z"]).root, "/y")
        XCTAssertEqual(CacheDirectory.resolve(environment: ["XDG_CACHE_HOME": "/z", "HOME": "/h"]).root, "/z/gvlt")
        XCTAssertEqual(CacheDirectory.resolve(environment: ["HOME": "/h"]).root, "/h/.cache/gvlt")
    }

    func testScratchDirectoryIsRemoved() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let spool = try SharedFile.anonymous(in: path)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: path), [".gvlt-owner"], "spool files have no name")
        _ = spool
        scratch.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    /// Only this user's scratch directories whose owner lock is free go; a live run's, one without
    /// a lock file, and a symlink stay.
    func testAbandonedScratchDirectoriesAreSweptAndLiveOnesKept() throws {
        let fm = FileManager.default
        for name in ["gvlt-dead", "gvlt-nolock"] {
            try fm.createDirectory(atPath: directory + "/" + name, withIntermediateDirectories: true)
        }
        XCTAssertTrue(fm.createFile(atPath: directory + "/gvlt-dead/.gvlt-owner", contents: nil))
        XCTAssertTrue(fm.createFile(atPath: directory + "/gvlt-dead/spool", contents: Data("x".utf8)))
        try fm.createDirectory(atPath: directory + "/elsewhere", withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: directory + "/elsewhere/.gvlt-owner", contents: nil))
        try fm.createSymbolicLink(atPath: directory + "/gvlt-link", withDestinationPath: directory + "/elsewhere")
        let live = try ScratchDirectory(in: directory)
        ScratchDirectory.sweepAbandoned(in: directory)
        XCTAssertEqual(
            contents(),
            ["elsewhere", "gvlt-link", "gvlt-nolock", URL(fileURLWithPath: live.path).lastPathComponent].sorted())
        XCTAssertTrue(fm.fileExists(atPath: directory + "/elsewhere/.gvlt-owner"))
        live.remove()
    }

    func testPruningEvictsTheLeastRecentlyUsedBuildEntriesDownToTheBoundAndKeepsDownloads() throws {
        let fm = FileManager.default
        let cache = CacheDirectory(root: directory + "/cache")
        let roots = cache.root + "/" + CachePruning.squashfsRoots
        // Four roots of 64 KiB, used in the order 2, 0, 3, 1, and a pulled blob.
        for index in 0..<4 {
            try fm.createDirectory(atPath: roots + "/r\(index)", withIntermediateDirectories: true)
            XCTAssertTrue(fm.createFile(atPath: roots + "/r\(index)/root.fs", contents: Data(count: 64 << 10)))
        }
        for (order, index) in [2, 0, 3, 1].enumerated() {
            var times = [timeval(tv_sec: 1_000_000 + order, tv_usec: 0), timeval(tv_sec: 1_000_000 + order, tv_usec: 0)]
            XCTAssertEqual(utimes(roots + "/r\(index)", &times), 0)
        }
        try fm.createDirectory(atPath: cache.root + "/blobs/sha256", withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: cache.root + "/blobs/sha256/aa", contents: Data(count: 200 << 10)))
        // Leftovers: an entry renamed aside by a process that is gone, and one by this live process.
        try fm.createDirectory(atPath: roots + "/tmp/gone-999999999-1", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: roots + "/tmp/gone-\(getpid())-1", withIntermediateDirectories: true)

        let pruning = CachePruning(cache: cache)
        let usage = Dictionary(uniqueKeysWithValues: pruning.usage().map { ($0.area, $0) })
        XCTAssertEqual(usage[CachePruning.squashfsRoots]?.entries, 4)
        XCTAssertEqual(usage["blobs"]?.entries, 1)
        let outcome = pruning.prune(to: 150 << 10)
        XCTAssertEqual(outcome.removedEntries, 2)
        XCTAssertLessThanOrEqual(outcome.remainingBytes, 150 << 10)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: roots).sorted(), ["r1", "r3", "tmp"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: roots + "/tmp"), ["gone-\(getpid())-1"])
        XCTAssertTrue(fm.fileExists(atPath: cache.root + "/blobs/sha256/aa"), "a download was evicted by size")
        XCTAssertEqual(pruning.prune(to: 0, everything: true).removedEntries, 3)
        XCTAssertFalse(fm.fileExists(atPath: cache.root + "/blobs/sha256/aa"))
    }

    func testCacheSizesAcceptZeroAndUnits() throws {
        XCTAssertEqual(try CachePruning.defaultLimit(environment: [:]), 10 << 30)
        XCTAssertEqual(try CachePruning.defaultLimit(environment: ["GVLT_CACHE_MAX_SIZE": "0"]), 0)
        XCTAssertEqual(try CachePruning.defaultLimit(environment: ["GVLT_CACHE_MAX_SIZE": "512M"]), 512 << 20)
        XCTAssertThrowsError(try CachePruning.defaultLimit(environment: ["GVLT_CACHE_MAX_SIZE": "lots"])) {
            XCTAssertTrue("\($0)".contains("GVLT_CACHE_MAX_SIZE=lots is not a size"), "\($0)")
        }
    }
}

final class HostFileContentTests: XCTestCase {
    /// A rootfs file whose path names another file at write time (a parent swapped for a symlink)
    /// must not be copied.
    func testHostFileMustStillBeTheScannedFile() throws {
        let directory = NSTemporaryDirectory() + "gvlt-hostfile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("scanned".utf8).write(to: URL(fileURLWithPath: directory + "/a"))
        try Data("swapped".utf8).write(to: URL(fileURLWithPath: directory + "/b"))
        var st = stat()
        XCTAssertEqual(stat(directory + "/a", &st), 0)
        let scanned = FileIdentity(st)
        var collected = Data()
        try FileContent.hostFile(path: directory + "/a", size: 7, identity: scanned).stream {
            collected.append(contentsOf: $0)
        }
        XCTAssertEqual(String(decoding: collected, as: UTF8.self), "scanned")
        XCTAssertThrowsError(
            try FileContent.hostFile(path: directory + "/b", size: 7, identity: scanned).stream { _ in }
        ) {
            XCTAssertTrue("\($0)".contains("is no longer the file that was scanned"), "\($0)")
        }
    }

    /// The digest `--kernel source:DIR` caches by: content, names, links and the executable bit count;
    /// times, owners and skipped entries do not.
    func testDirectoryTreeDigestFollowsContentOnly() throws {
        let directory = NSTemporaryDirectory() + "gvlt-digest-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tree = directory + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/sub", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: tree + "/a", contents: Data("alpha".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: tree + "/sub/b", contents: Data("beta".utf8)))
        try FileManager.default.createSymbolicLink(atPath: tree + "/link", withDestinationPath: "sub/b")
        let first = try SHA256Hex.of(directoryTree: tree, skip: [".git"])
        XCTAssertEqual(first.count, 64)

        utime(tree + "/a", nil)
        try FileManager.default.createDirectory(atPath: tree + "/.git", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: tree + "/.git/HEAD", contents: Data("ref".utf8)))
        XCTAssertEqual(
            try SHA256Hex.of(directoryTree: tree, skip: [".git"]), first, "times and skipped entries must not count")
        XCTAssertNotEqual(try SHA256Hex.of(directoryTree: tree), first, "unskipped, .git counts")

        var changes: [() throws -> Void] = [
            { _ = FileManager.default.createFile(atPath: tree + "/sub/b", contents: Data("betA".utf8)) },
            { chmod(tree + "/a", 0o755) },
            { try FileManager.default.moveItem(atPath: tree + "/a", toPath: tree + "/c") },
            {
                try FileManager.default.removeItem(atPath: tree + "/link");
                try FileManager.default.createSymbolicLink(atPath: tree + "/link", withDestinationPath: "c")
            }
        ]
        var seen: Set<String> = [first]
        while !changes.isEmpty {
            try changes.removeFirst()()
            let digest = try SHA256Hex.of(directoryTree: tree, skip: [".git"])
            XCTAssertTrue(seen.insert(digest).inserted, "a change left the digest as it was")
        }
        XCTAssertThrowsError(try SHA256Hex.of(directoryTree: directory + "/missing"))
    }
}
