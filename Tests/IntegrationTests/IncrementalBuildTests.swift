import Core
import Foundation
import TestSupport
import XCTest

/// Rebuilds through the build caches, end to end with the gvlt binary: a hit is reported and gives
/// the same image, which boots; `--no-cache` gives the same bytes and leaves the cache alone; racing
/// builds share a cache; `gvlt cache du/prune` and the size bound keep it in check.
final class IncrementalBuildTests: XCTestCase {
    /// A cache of the test's own, with the kernels of the shared test cache linked in, so the Debian
    /// kernel is still downloaded once per machine.
    func privateCache(_ sandbox: Sandbox, _ name: String = "cache") throws -> String {
        let cache = sandbox.path(name)
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        for part in ["entries", "locks"] {
            let shared = LinuxVMImageTests.kernelCache + "/" + part
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: cache + "/" + part, withDestinationPath: shared)
        }
        return cache
    }

    func build(
        _ sandbox: Sandbox, cache: String, source: [String] = ["--container", "oci:img"], output: String,
        extra: [String] = [], environment: [String: String] = [:]
    ) throws -> RunResult {
        let (initBinary, _) = try LinuxVMImageTests.built.get()
        return try GvltBinary.run(
            ["build", "--backend", "linuxvm"] + source + [
                "-o", output, "--force", "--init-binary", initBinary, "--cache-dir", cache
            ] + extra, in: sandbox, environment: environment, timeout: 600)
    }

    func report(_ result: RunResult) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr)
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    }

    func usage(_ sandbox: Sandbox, cache: String) throws -> [String: (entries: Int, bytes: Int64)] {
        let result = try GvltBinary.run(["cache", "du", "--json", "--cache-dir", cache], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        let areas = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [[String: Any]]
        return Dictionary(
            uniqueKeysWithValues: areas.map {
                ($0["area"] as! String, ($0["entries"] as! Int, ($0["bytes"] as! NSNumber).int64Value))
            })
    }

    /// Boots as the worker does, with the image's own command; status 3 is the program's success.
    func boot(_ image: String, _ sandbox: Sandbox, input: String) throws -> (Int32, String, String?) {
        try LinuxVMImageTests.boot(
            image, sandbox: sandbox,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: input)
    }

    func testARebuildIsServedFromTheCacheReportedAndBootsTheSame() throws {
        let sandbox = try Sandbox()
        try LinuxVMImageTests.makeImage(in: sandbox)
        let cache = try privateCache(sandbox)
        let cold = try report(try build(sandbox, cache: cache, output: "cold.img", extra: ["--json"]))
        let coldCache = cold["cache"] as! [String: Any]
        XCTAssertEqual(coldCache["root"] as? String, "miss")
        XCTAssertEqual(coldCache["enabled"] as? Bool, true)
        XCTAssertGreaterThan(coldCache["blocksCompressed"] as! Int, 0)

        let again = try build(sandbox, cache: cache, output: "again.img")
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("Build cache: hit: the root file system was reused whole"), again.stdout)
        let hit = try report(try build(sandbox, cache: cache, output: "hit.img", extra: ["--json"]))
        XCTAssertEqual((hit["cache"] as! [String: Any])["root"] as? String, "hit")
        XCTAssertEqual(hit["sha256"] as? String, cold["sha256"] as? String)
        XCTAssertEqual(
            TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: sandbox.path("hit.img")))),
            cold["sha256"] as? String)

        // --no-cache: the same bytes, and a fresh cache gets no build cache entry at all.
        let fresh = try privateCache(sandbox, "fresh-cache")
        let uncached = try report(
            try build(sandbox, cache: fresh, output: "uncached.img", extra: ["--json", "--no-cache"]))
        XCTAssertEqual(uncached["sha256"] as? String, cold["sha256"] as? String)
        XCTAssertEqual((uncached["cache"] as! [String: Any])["enabled"] as? Bool, false)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fresh).sorted(), ["entries", "locks"])
        let text = try build(sandbox, cache: fresh, output: "uncached2.img", extra: ["--no-cache"])
        XCTAssertTrue(text.stdout.contains("Build cache: not used (--no-cache)"), text.stdout)

        let (status, console, output) = try boot(sandbox.path("hit.img"), sandbox, input: "cached\n")
        XCTAssertTrue(console.contains("prover says: from-image"), console)
        XCTAssertTrue(console.contains("su-like uid=1000 gid=1000 mode=4755"), console)
        XCTAssertEqual(output, "got cached\n")
        XCTAssertEqual(status, 3, console)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch files left behind")
    }

    func testAProgramChangeRecompressesOnlyItsBlocksAndMatchesAColdBuild() throws {
        let sandbox = try Sandbox()
        let (_, program) = try LinuxVMImageTests.built.get()
        try sandbox.write("root/usr/bin/prover", program)
        chmod(sandbox.path("root/usr/bin/prover"), 0o755)
        for index in 0..<30 {
            try sandbox.write(
                "root/usr/lib/data/part\(index)",
                Data((0..<60_000).map { UInt8(truncatingIfNeeded: $0 * (index + 3) / 7) }))
        }
        let big = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: ($0 >> 3) ^ ($0 * 31)) })
        try sandbox.write("root/usr/bin/solver", big)
        let cache = try privateCache(sandbox)
        let source = ["--rootfs-dir", "root", "--entrypoint", "/usr/bin/prover"]
        let first = try report(try build(sandbox, cache: cache, source: source, output: "a.img", extra: ["--json"]))
        let compressed = (first["cache"] as! [String: Any])["blocksCompressed"] as! Int

        // The solver rebuilt: other bytes, another size.
        try sandbox.write("root/usr/bin/solver", big.prefix(2_500_000) + Data("rebuilt".utf8))
        let changed = try report(try build(sandbox, cache: cache, source: source, output: "b.img", extra: ["--json"]))
        let blocks = changed["cache"] as! [String: Any]
        XCTAssertEqual(blocks["root"] as? String, "miss")
        XCTAssertLessThanOrEqual(blocks["blocksCompressed"] as! Int, 21, "\(blocks)")
        XCTAssertGreaterThanOrEqual(blocks["blocksReused"] as! Int, compressed - 23, "\(blocks)")
        let cold = try report(
            try build(sandbox, cache: cache, source: source, output: "c.img", extra: ["--json", "--no-cache"]))
        XCTAssertEqual(changed["sha256"] as? String, cold["sha256"] as? String)
        XCTAssertNotEqual(changed["sha256"] as? String, first["sha256"] as? String)
    }

    func testTheToolWriterStillBuildsABootableImage() throws {
        let sandbox = try Sandbox()
        try LinuxVMImageTests.makeImage(in: sandbox)
        let cache = try privateCache(sandbox)
        let tool = try report(
            try build(sandbox, cache: cache, output: "tool.img", extra: ["--json", "--squashfs-writer", "tool"]))
        XCTAssertNil(tool["cache"])
        let (status, console, output) = try boot(sandbox.path("tool.img"), sandbox, input: "tool\n")
        XCTAssertTrue(console.contains("ttyX chardev=1 major=4 minor=64"), console)
        XCTAssertEqual(output, "got tool\n")
        XCTAssertEqual(status, 3, console)

        let lzo = try build(
            sandbox, cache: cache, output: "lzo.img",
            extra: ["--squashfs-compressor", "lzo", "--squashfs-writer", "native"])
        XCTAssertNotEqual(lzo.status, 0)
        XCTAssertTrue(lzo.stderr.contains("--squashfs-writer native cannot write lzo"), lzo.stderr)
        let bad = try build(sandbox, cache: cache, output: "bad.img", extra: ["--squashfs-writer", "fast"])
        XCTAssertTrue(bad.stderr.contains("--squashfs-writer `fast` is not native or tool"), bad.stderr)
    }

    func testBuildProcessesRacingOnOneCacheGiveTheSameImage() throws {
        let sandbox = try Sandbox()
        try LinuxVMImageTests.makeImage(in: sandbox)
        let cache = try privateCache(sandbox)
        final class Box: @unchecked Sendable { var results: [Int: RunResult] = [:]; let lock = NSLock() }
        let box = Box()
        DispatchQueue.concurrentPerform(iterations: 3) { index in
            let result = try? build(sandbox, cache: cache, output: "race\(index).img", extra: ["--json"])
            box.lock.withLock { box.results[index] = result }
        }
        let digests = try (0..<3).map { try report(box.results[$0]!)["sha256"] as! String }
        let reference = try report(
            try build(sandbox, cache: cache, output: "reference.img", extra: ["--json", "--no-cache"]))
        XCTAssertEqual(Set(digests), [reference["sha256"] as! String])
        let after = try report(try build(sandbox, cache: cache, output: "after.img", extra: ["--json"]))
        XCTAssertEqual((after["cache"] as! [String: Any])["root"] as? String, "hit")
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch files left behind")
    }

    func testCachePruneAndTheSizeBoundEvictTheLeastRecentlyUsed() throws {
        let sandbox = try Sandbox()
        let (_, program) = try LinuxVMImageTests.built.get()
        let cache = try privateCache(sandbox)
        var sizes: [Int64] = []
        for name in ["one", "two"] {
            try sandbox.write("\(name)/usr/bin/prover", program)
            try sandbox.write(
                "\(name)/usr/share/\(name)", Data((0..<400_000).map { UInt8(truncatingIfNeeded: $0 * name.count) }))
            let result = try build(
                sandbox, cache: cache, source: ["--rootfs-dir", name, "--entrypoint", "/usr/bin/prover"],
                output: "\(name).img")
            XCTAssertEqual(result.status, 0, result.stderr)
            sizes.append(try usage(sandbox, cache: cache)[CachePruning.squashfsRoots]!.bytes)
        }
        var areas = try usage(sandbox, cache: cache)
        XCTAssertEqual(areas[CachePruning.squashfsRoots]?.entries, 2)
        XCTAssertEqual(areas[CachePruning.bootPartitions]?.entries, 1)
        let kernels = areas["entries"]!

        // A bound that holds the boot partition and about one root: the build of a third, smaller
        // tree evicts the two older roots.
        let bound = areas[CachePruning.bootPartitions]!.bytes + sizes[0]
        try sandbox.write("three/usr/bin/prover", program)
        let third = try build(
            sandbox, cache: cache, source: ["--rootfs-dir", "three", "--entrypoint", "/usr/bin/prover"],
            output: "three.img", environment: ["GVLT_CACHE_MAX_SIZE": String(bound)])
        XCTAssertEqual(third.status, 0, third.stderr)
        areas = try usage(sandbox, cache: cache)
        XCTAssertEqual(areas[CachePruning.squashfsRoots]?.entries, 1)
        XCTAssertLessThanOrEqual(
            areas[CachePruning.squashfsRoots]!.bytes + areas[CachePruning.bootPartitions]!.bytes, bound + 16384)
        // The newest root stayed: building three again is a hit.
        let again = try report(
            try build(
                sandbox, cache: cache, source: ["--rootfs-dir", "three", "--entrypoint", "/usr/bin/prover"],
                output: "three-again.img", extra: ["--json"]))
        XCTAssertEqual((again["cache"] as! [String: Any])["root"] as? String, "hit")

        let bad = try GvltBinary.run(["cache", "prune", "--max-size", "lots", "--cache-dir", cache], in: sandbox)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--max-size `lots` is not a size"), bad.stderr)
        let pruned = try GvltBinary.run(["cache", "prune", "--max-size", "0", "--cache-dir", cache], in: sandbox)
        XCTAssertEqual(pruned.status, 0, pruned.stderr)
        XCTAssertTrue(pruned.stdout.contains("removed"), pruned.stdout)
        areas = try usage(sandbox, cache: cache)
        XCTAssertEqual(areas[CachePruning.squashfsRoots]?.entries, 0)
        XCTAssertEqual(areas[CachePruning.bootPartitions]?.entries, 0)
        XCTAssertEqual(areas["entries"]?.entries, kernels.entries, "prune without --all removed downloads")
    }

    func testACrashWhileStoringLeavesNoImageAndTheNextBuildSweepsTheStaging() throws {
        let sandbox = try Sandbox()
        try LinuxVMImageTests.makeImage(in: sandbox)
        let cache = try privateCache(sandbox)
        let crashed = try build(
            sandbox, cache: cache, output: "vm.img",
            environment: ["GVLT_TEST_TRAP_AT": "cache-store-squashfs-roots", "SWIFT_BACKTRACE": "enable=no"])
        XCTAssertTrue(crashed.stderr.contains("GVLT_TEST_TRAP_AT=cache-store-squashfs-roots"), crashed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("vm.img")))
        let staging = cache + "/" + CachePruning.squashfsRoots + "/tmp"
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: staging).count, 1)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: cache + "/" + CachePruning.squashfsRoots), ["tmp"],
            "a crashed build published a cache entry")
        let next = try report(try build(sandbox, cache: cache, output: "vm.img", extra: ["--json"]))
        XCTAssertEqual((next["cache"] as! [String: Any])["root"] as? String, "miss")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: staging), [], "the staging was not swept")
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch files left behind")
    }
}
