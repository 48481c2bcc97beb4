import Foundation
import TestSupport
import XCTest

/// A crash or SIGKILL skips every cleanup gvlt has. Outputs are written unnamed (O_TMPFILE) and
/// linked into place only when whole, so the output directory never holds a partial file; scratch
/// directories carry a lock their owner holds, and the next run removes those whose owner is gone.
final class CrashCleanupTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    /// What the output directory holds besides the inputs.
    func leftovers(_ sandbox: Sandbox) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sandbox.work)) ?? []).filter { $0 != "root" }.sorted()
    }

    func testATrapAtAnyBuildStepLeavesNothingOnceTheNextRunSweeps() throws {
        let sandbox = try Sandbox()
        try GvltctlParityTests.makeRoot(sandbox)
        for step in ["source", "prepare", "build", "commit"] {
            let crashed = try GvltctlParityTests.build(
                ["-o", "vm.img"], in: sandbox,
                environment: ["GVLT_TEST_TRAP_AT": step, "SWIFT_BACKTRACE": "enable=no"])
            XCTAssertFalse([0, 1, -1].contains(crashed.status), "\(step): \(crashed.status) \(crashed.stderr)")
            XCTAssertTrue(crashed.stderr.contains("GVLT_TEST_TRAP_AT=\(step)"), "\(step): \(crashed.stderr)")
            XCTAssertEqual(leftovers(sandbox), [], "\(step): the output directory holds a partial image")
        }
        // The crashed runs' scratch directories are still there until a run sweeps them.
        XCTAssertFalse(sandbox.listing(sandbox.tmp).isEmpty)
        let next = try GvltBinary.run(["export", "--rootfs-dir", "root", "-o", "root.tar"], in: sandbox)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "abandoned scratch directories were not swept")
    }

    /// SIGKILL while the output is being written: the unnamed file vanishes with the process.
    func testSIGKILLWhileWritingLeavesNoOutput() throws {
        let sandbox = try Sandbox()
        try FileManager.default.createDirectory(atPath: sandbox.path("root"), withIntermediateDirectories: true)
        let big = sandbox.path("root/big")
        XCTAssertTrue(FileManager.default.createFile(atPath: big, contents: nil))
        XCTAssertEqual(truncate(big, 4 << 30), 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: GvltBinary.path)
        process.arguments = ["export", "--rootfs-dir", "root", "-o", "out.tar"]
        process.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = sandbox.tmp
        environment["HOME"] = sandbox.home
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until gvlt holds an unnamed file in the output directory, then kill it.
        let deadline = Date().addingTimeInterval(60)
        var writing = false
        while !writing && Date() < deadline && process.isRunning {
            writing = GvltBinary.holdsUnnamedFile(pid: process.processIdentifier, in: sandbox.work)
            if !writing { usleep(10_000) }
        }
        XCTAssertTrue(writing, "gvlt never started writing the output")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(leftovers(sandbox), [], "SIGKILL left a partial output")
        XCTAssertFalse(sandbox.listing(sandbox.tmp).isEmpty, "the killed run had a scratch directory")
        unlink(big)
        let next = try GvltBinary.run(["export", "--rootfs-dir", "root", "-o", "small.tar"], in: sandbox)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
        XCTAssertEqual(leftovers(sandbox), ["small.tar"])
    }
}
