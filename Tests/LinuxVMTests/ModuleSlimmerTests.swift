import Core
import Foundation
import XCTest

@testable import LinuxVM

/// Slimmed kernel modules: the .BTF section goes, and with a cache each module is slimmed once.
final class ModuleSlimmerTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gvlt-slim-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { [directory] in try? FileManager.default.removeItem(atPath: directory) }
    }

    /// A relocatable object with a .BTF section, as a module is: gcc's output plus objcopy.
    func module(_ name: String, source: String) throws -> String {
        let object = directory + "/" + name
        try Data(source.utf8).write(to: URL(fileURLWithPath: object + ".c"))
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: directory + "/btf.bin"))
        try HostCommand.run("/usr/bin/gcc", ["-c", "-o", object + ".o", object + ".c"])
        try HostCommand.run(
            "/usr/bin/objcopy", ["--add-section", ".BTF=" + directory + "/btf.bin", object + ".o", object])
        XCTAssertTrue(try ELFFile(path: object).hasSection(named: ".BTF"))
        return object
    }

    func testACachedSlimmedModuleIsTheOneObjcopyMakesAndIsMadeOnce() throws {
        let original = try module("a.ko", source: "int answer(void) { return 42; }\n")
        try FileManager.default.createDirectory(atPath: directory + "/plain", withIntermediateDirectories: false)
        let uncached = try ModuleSlimmer.slim(original, into: directory + "/plain") { XCTFail($0) }
        XCTAssertEqual(uncached, directory + "/plain/a.ko")
        XCTAssertFalse(try ELFFile(path: uncached).hasSection(named: ".BTF"))

        let cache = CacheDirectory(root: directory + "/cache")
        let cached = try ModuleSlimmer.slim(original, into: directory + "/unused", cache: cache) { XCTFail($0) }
        XCTAssertTrue(cached.hasPrefix(cache.root + "/entries/" + ModuleSlimmer.cacheArea + "/"), cached)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: cached)), try Data(contentsOf: URL(fileURLWithPath: uncached)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/unused/a.ko"))

        // The second build takes the same file; objcopy does not run again.
        var before = stat(), after = stat()
        XCTAssertEqual(stat(cached, &before), 0)
        XCTAssertEqual(
            try ModuleSlimmer.slim(original, into: directory + "/unused", cache: cache) { XCTFail($0) }, cached)
        XCTAssertEqual(stat(cached, &after), 0)
        XCTAssertEqual(before.st_ino, after.st_ino)
        XCTAssertEqual(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec)

        // Other bytes under the same name are another module.
        let other = try module("b.ko", source: "int answer(void) { return 7; }\n")
        try FileManager.default.removeItem(atPath: original)
        XCTAssertEqual(rename(other, original), 0)
        let second = try ModuleSlimmer.slim(original, into: directory + "/unused", cache: cache) { XCTFail($0) }
        XCTAssertNotEqual(second, cached)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: cache.root + "/entries/" + ModuleSlimmer.cacheArea)
                .count,
            2)
    }

    func testACacheThatCannotTakeTheModuleOnlyCostsTheObjcopy() throws {
        let original = try module("c.ko", source: "int value = 3;\n")
        // The cache's root is a file: nothing can be created under it.
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: directory + "/cache"))
        try FileManager.default.createDirectory(atPath: directory + "/out", withIntermediateDirectories: false)
        let slimmed = try ModuleSlimmer.slim(
            original, into: directory + "/out", cache: CacheDirectory(root: directory + "/cache")
        ) { XCTFail($0) }
        XCTAssertEqual(slimmed, directory + "/out/c.ko")
        XCTAssertFalse(try ELFFile(path: slimmed).hasSection(named: ".BTF"))
    }
}
