@testable import Core
import Foundation
import XCTest

final class OverlapAndModuleTreeTests: XCTestCase {
    struct Failure: Error, Equatable { var name: String }

    /// Both sides run at the same time: each waits for the other to have started.
    func testBothSidesRunTogetherAndReturnTheirResults() throws {
        let backgroundStarted = DispatchSemaphore(value: 0)
        let foregroundStarted = DispatchSemaphore(value: 0)
        let (front, back) = try overlapping(
            { () -> String in
                backgroundStarted.signal()
                XCTAssertEqual(foregroundStarted.wait(timeout: .now() + 10), .success)
                return "back"
            },
            while: { () -> Int in
                foregroundStarted.signal()
                XCTAssertEqual(backgroundStarted.wait(timeout: .now() + 10), .success)
                return 7
            })
        XCTAssertEqual(front, 7)
        XCTAssertEqual(back, "back")
    }

    /// A failing side never returns before the other has finished (the caller's cleanups would run
    /// under it); the foreground's error wins, the background's comes out on its own.
    func testErrorsWaitForTheOtherSide() {
        final class Flag: @unchecked Sendable { var done = false }
        let flag = Flag()
        XCTAssertThrowsError(
            try overlapping(
                { () -> Int in
                    Thread.sleep(forTimeInterval: 0.3)
                    flag.done = true
                    throw Failure(name: "background")
                }, while: { () -> Int in throw Failure(name: "foreground") })
        ) { XCTAssertEqual($0 as? Failure, Failure(name: "foreground")) }
        XCTAssertTrue(flag.done)
        XCTAssertThrowsError(
            try overlapping({ () -> Int in throw Failure(name: "background") }, while: { 1 })
        ) { XCTAssertEqual($0 as? Failure, Failure(name: "background")) }
    }

    /// The modules tree walk: nested `.ko` files by canonical name, built-ins from modules.builtin,
    /// symbolic links to directories not followed, compressed modules refused by path.
    func testModuleTreeWalk() throws {
        let root = NSTemporaryDirectory() + "gvlt-modules-" + UUID().uuidString
        let outside = root + "-outside"
        defer {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: outside)
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/kernel/drivers/block", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/kernel/fs/fuse", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: outside, withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: root + "/kernel/drivers/block/virtio_blk.ko", contents: Data()))
        XCTAssertTrue(fm.createFile(atPath: root + "/kernel/fs/fuse/virtio-fs.ko", contents: Data()))
        XCTAssertTrue(fm.createFile(atPath: root + "/kernel/fs/fuse/README", contents: Data()))
        XCTAssertTrue(fm.createFile(atPath: outside + "/headers.ko", contents: Data()))
        try fm.createSymbolicLink(atPath: root + "/build", withDestinationPath: outside)
        try "kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c-generic.ko\n".write(
            toFile: root + "/modules.builtin", atomically: false, encoding: .utf8)

        let tree = try ModuleTree(directory: root)
        XCTAssertEqual(
            tree.modules,
            ["virtio_blk": "kernel/drivers/block/virtio_blk.ko", "virtio_fs": "kernel/fs/fuse/virtio-fs.ko"])
        XCTAssertEqual(tree.builtIn, ["ext4", "crc32c_generic"])
        XCTAssertEqual(tree.path(of: "virtio-fs"), root + "/kernel/fs/fuse/virtio-fs.ko")

        XCTAssertTrue(fm.createFile(atPath: root + "/kernel/fs/fuse/cuse.ko.zst", contents: Data()))
        XCTAssertThrowsError(try ModuleTree(directory: root)) {
            XCTAssertTrue("\($0)".contains("kernel/fs/fuse/cuse.ko.zst"), "\($0)")
        }
        XCTAssertThrowsError(try ModuleTree(directory: root + "/missing")) {
            XCTAssertTrue("\($0)".contains("--kernel-modules"), "\($0)")
        }
    }
}
