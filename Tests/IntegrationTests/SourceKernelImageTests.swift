import Foundation
import TestSupport
import XCTest

/// `--kernel source:DIR`: a kernel built from a Linux source tree with the runtime's drivers built in,
/// so the image boots without an initramfs (the kernel mounts the root by PARTUUID and starts the init
/// there). The boot test needs a clean source tree named by GVLT_TEST_KERNEL_SOURCE: `scripts/test`
/// unpacks Debian's linux-source there once (`scripts/fetch-kernel-source`), and the built kernel is
/// cached, so it costs about 5 minutes on the first run only. The argument checks always run.
final class SourceKernelImageTests: XCTestCase {
    static var source: String? {
        ProcessInfo.processInfo.environment["GVLT_TEST_KERNEL_SOURCE"].flatMap { $0.isEmpty || $0 == "skip" ? nil : $0 }
    }

    /// A tinyconfig base (the fragment adds what the runtime needs), so the build is as short as a
    /// kernel build gets; made with the tree's own kconfig, in a directory of our own.
    static let tinyBase: Result<String, Error> = Result {
        let directory = LinuxVMImageTests.work + "/tinyconfig"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try LinuxVMImageTests.shell(["make", "-s", "-C", source!, "O=" + directory, "ARCH=x86_64", "tinyconfig"])
        return directory + "/.config"
    }

    func build(_ sandbox: Sandbox, kernel: [String], extra: [String] = []) throws -> RunResult {
        try LinuxVMImageTests.makeImage(in: sandbox)
        // A kernel build on two cores takes about 5 minutes; leave room for slower machines.
        return try LinuxVMImageTests.build(
            sandbox, extra: kernel + ["--json"] + extra, environment: ["SOURCE_DATE_EPOCH": "1700000000"],
            timeout: 2400)
    }

    func report(_ result: RunResult) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    }

    func testSourceKernelImageBootsWithoutInitramfsAndTheKernelIsCached() throws {
        guard let source = Self.source else {
            throw XCTSkip(
                "set GVLT_TEST_KERNEL_SOURCE to a clean Linux source tree to build and boot a kernel from source (minutes)"
            )
        }
        let base = try Self.tinyBase.get()
        let kernel = ["--kernel", "source:" + source, "--kernel-config", base]

        let first = try Sandbox()
        let built = try build(first, kernel: kernel)
        XCTAssertEqual(built.status, 0, built.stderr)
        let image = first.path("vm.img")
        let inspect = try report(try GvltBinary.run(["inspect", image, "--json"], in: first))
        XCTAssertNil(inspect["initramfsModules"], "a kernel with everything built in needs no initramfs: \(inspect)")
        let commandLine = inspect["kernelCommandLine"] as? String ?? ""
        XCTAssertTrue(commandLine.contains("root=PARTUUID=") && commandLine.contains("-02 "), commandLine)
        XCTAssertEqual(first.listing(first.tmp), [], "scratch files left behind")

        // The kernel mounts the root itself; the init runs straight from it as PID 1.
        let (status, console, output) = try LinuxVMImageTests.boot(
            image, sandbox: first,
            workerConfig: """
                version: 1.1.0
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: "from-source-kernel\n")
        XCTAssertTrue(console.contains("prover says: from-image"), console)
        XCTAssertTrue(console.contains("su-like uid=1000 gid=1000 mode=4755"), console)
        XCTAssertTrue(console.contains("gvlt-init: exit-status=0"), console)
        XCTAssertEqual(output, "got from-source-kernel\n")
        XCTAssertEqual(status, 3, console)

        // Built once: the second build takes the kernel from the cache and gives the same bytes.
        let second = try Sandbox()
        let again = try build(second, kernel: kernel)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stderr.contains("building Linux"), "the kernel was built again: \(again.stderr)")
        XCTAssertEqual(try report(again)["sha256"] as? String, try report(built)["sha256"] as? String)

        // The built kernel carries its config (IKCONFIG): given back as a file with no --kernel-config,
        // gvlt reads the config from the kernel itself and makes the very same image.
        let entries = LinuxVMImageTests.kernelCache + "/entries/kernels/source"
        let release = try XCTUnwrap(inspect["kernelRelease"] as? String)
        let kernels = try FileManager.default.contentsOfDirectory(atPath: entries).map {
            entries + "/" + $0 + "/boot/vmlinuz-" + release
        }
        .filter { FileManager.default.fileExists(atPath: $0) }
        func modified(_ path: String) -> Date {
            (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
        }
        let vmlinuz = try XCTUnwrap(kernels.max { modified($0) < modified($1) })
        XCTAssertTrue(
            String(
                decoding: FileManager.default.contents(
                    atPath: URL(fileURLWithPath: vmlinuz).deletingLastPathComponent().path + "/config-" + release)
                    ?? Data(),
                as: UTF8.self
            ).contains("CONFIG_IKCONFIG=y"))
        let third = try Sandbox()
        let viaFile = try build(third, kernel: ["--kernel", "file:" + vmlinuz])
        XCTAssertEqual(viaFile.status, 0, viaFile.stderr)
        XCTAssertEqual(try report(viaFile)["sha256"] as? String, try report(built)["sha256"] as? String)

        // The ext4 root boots the same way.
        let fourth = try Sandbox()
        let ext4 = try build(fourth, kernel: kernel, extra: ["--root-fs", "ext4"])
        XCTAssertEqual(ext4.status, 0, ext4.stderr)
        let (ext4Status, ext4Console, ext4Output) = try LinuxVMImageTests.boot(
            fourth.path("vm.img"), sandbox: fourth,
            workerConfig: """
                version: 1.1.0
                args: [ext4-root, "5"]
                debug-exit: {arch: x86, iobase: 0xf4, iosize: 0x4, success-code: 0x3}
                """, input: "ext4\n")
        XCTAssertTrue(
            ext4Console.contains("prover says: ext4-root") && ext4Console.contains("gvlt-init: exit-status=5"),
            ext4Console)
        XCTAssertEqual(ext4Output, "got ext4\n")
        XCTAssertNotEqual(ext4Status, 3, ext4Console)
    }

    /// What is refused before any build starts, each with the way out.
    func testSourceKernelArgumentsAreCheckedUpFront() throws {
        let sandbox = try Sandbox()
        let missing = try build(sandbox, kernel: ["--kernel", "source:" + sandbox.path("no-such-tree")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no such directory"), missing.stderr)

        try sandbox.write("not-linux/README", Data("hello\n".utf8))
        let notLinux = try build(sandbox, kernel: ["--kernel", "source:" + sandbox.path("not-linux")])
        XCTAssertEqual(notLinux.status, 1)
        XCTAssertTrue(notLinux.stderr.contains("is not a Linux source tree"), notLinux.stderr)

        for file in ["Makefile", "Kconfig", "arch/x86/Kconfig", "scripts/kconfig/Makefile", ".config"] {
            try sandbox.write("configured/" + file, Data("#\n".utf8))
        }
        let configured = try build(sandbox, kernel: ["--kernel", "source:" + sandbox.path("configured")])
        XCTAssertEqual(configured.status, 1)
        XCTAssertTrue(
            configured.stderr.contains("configured or built in place") && configured.stderr.contains("make mrproper"),
            configured.stderr)

        let withModules = try build(
            sandbox, kernel: ["--kernel", "source:" + sandbox.path("configured"), "--kernel-modules", sandbox.work])
        XCTAssertEqual(withModules.status, 1)
        XCTAssertTrue(withModules.stderr.contains("--kernel-modules does not go with"), withModules.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("vm.img")))
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [])
    }
}
