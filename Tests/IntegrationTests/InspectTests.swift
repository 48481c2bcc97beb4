import Core
import Foundation
import TestSupport
import XCTest

/// `gvlt inspect` reads a linuxvm image's root in place, SquashFS or ext4, and resolves every path
/// the image names inside the image: nothing from it reaches, or reads, the host.
final class InspectTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    func makeRoot(_ sandbox: Sandbox) throws { try GvltctlParityTests.makeRoot(sandbox) }

    func build(_ arguments: [String], in sandbox: Sandbox) throws -> RunResult {
        try GvltctlParityTests.build(arguments, in: sandbox)
    }

    func report(_ result: RunResult) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr)
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }

    /// An object file with a `.modinfo` section, which is all inspect reads of a module.
    func module(vermagic: String, at path: String) throws {
        let source = path + ".c"
        try Data(
            "__attribute__((section(\".modinfo\"), used)) static const char info[] = \"vermagic=\(vermagic)\";\n".utf8
        )
        .write(to: URL(fileURLWithPath: source))
        defer { unlink(source) }
        try HostCommand.run("/usr/bin/gcc", ["-c", "-o", path, source])
    }

    func testExt4RootIsInspectedInPlace() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let (initBinary, _) = try Images.built.get()
        let build = try build(["--root-fs", "ext4", "-o", "ext4.img"], in: sandbox)
        XCTAssertEqual(build.status, 0, build.stderr)
        let json = try report(try GvltBinary.run(["inspect", "ext4.img", "--json"], in: sandbox))
        XCTAssertEqual(json["rootFilesystem"] as? String, "ext4")
        XCTAssertEqual(
            json["initSHA256"] as? String, TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: initBinary))))
        XCTAssertTrue(
            (json["bakedConfig"] as? String ?? "").contains("follow-config: \"/mnt/gevulot/rt-config/config.yaml\""),
            "\(json)")
        // The file system fills its partition.
        let partitions = json["partitions"] as? [[String: Any]] ?? []
        XCTAssertEqual(
            (json["rootBytes"] as? NSNumber)?.int64Value, (partitions.last?["size"] as? NSNumber)?.int64Value)
        let text = try GvltBinary.run(["inspect", "ext4.img"], in: sandbox)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertFalse(text.stdout.contains("not found"), text.stdout)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }

    /// /etc/gvlt/nvidia lists module paths; an image can point them, or symlinks on the way, at
    /// host files. Inside the image those paths lead nowhere, so inspect finds no module there, and
    /// a symlink that stays inside the image is followed.
    func testModulePathsFromTheImageResolveInsideIt() throws {
        let sandbox = try Sandbox()
        try makeRoot(sandbox)
        let host = NSTemporaryDirectory() + "gvlt-hostleak-\(UUID().uuidString).ko"
        try module(vermagic: "HOSTLEAK", at: host)
        defer { unlink(host) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: sandbox.path("root/etc/gvlt"), withIntermediateDirectories: true)
        try fm.createDirectory(atPath: sandbox.path("root/lib/modules"), withIntermediateDirectories: true)
        try module(vermagic: "INIMAGE", at: sandbox.path("root/lib/modules/real.ko"))
        try fm.createSymbolicLink(atPath: sandbox.path("root/lib/evil.ko"), withDestinationPath: host)
        try fm.createSymbolicLink(atPath: sandbox.path("root/lib/good.ko"), withDestinationPath: "modules/real.ko")
        try fm.createSymbolicLink(atPath: sandbox.path("root/lib/up"), withDestinationPath: "../../../../..")
        let climb = String(repeating: "../", count: 12) + host.dropFirst()
        try Data(
            """
            driver 1.2.3
            module /lib/evil.ko
            module \(climb)
            module /lib/up\(host)
            module /lib/good.ko

            """.utf8
        ).write(to: URL(fileURLWithPath: sandbox.path("root/etc/gvlt/nvidia")))
        let build = try build(["-o", "hostile.img"], in: sandbox)
        XCTAssertEqual(build.status, 0, build.stderr)
        let inspect = try GvltBinary.run(
            ["inspect", "hostile.img", "--json"], in: sandbox, memoryLimit: GvltBinary.hostileMemoryLimit)
        XCTAssertFalse(inspect.stdout.contains("HOSTLEAK"), inspect.stdout)
        let modules = ((try report(inspect))["nvidia"] as? [String: Any])?["modules"] as? [[String: Any]] ?? []
        XCTAssertEqual(modules.count, 4, "\(modules)")
        XCTAssertEqual(modules.map { $0["vermagic"] as? String }, [nil, nil, nil, "INIMAGE"], "\(modules)")
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }
}
