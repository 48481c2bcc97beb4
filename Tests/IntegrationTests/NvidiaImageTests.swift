import Core
import Foundation
import TestSupport
import XCTest

/// `gvlt build --backend linuxvm --accel nvidia`: the driver's parts, read back from the image itself,
/// match the image's kernel and each other; the image boots without a GPU and says so. The module
/// build (about 2 minutes) runs once per test run, in the kernel cache the other image tests share.
final class NvidiaImageTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    /// The hello-prover example as an OCI layout, plus `extra` layer members.
    static func makeProverImage(in sandbox: Sandbox, extra: [TarMember] = []) throws {
        try Images.shell([
            "gcc", "-static", "-O2", "-o", sandbox.path("hello-prover"),
            Images.repository + "/examples/hello-prover/hello-prover.c"
        ])
        let layout = try OCILayoutBuilder(directory: sandbox.path("img"))
        try layout.writeIndex([
            try layout.image(
                [
                    LayerFixture(
                        [
                            .dir("usr"), .dir("usr/bin"),
                            TarMember(
                                "usr/bin/hello-prover",
                                .file(try Data(contentsOf: URL(fileURLWithPath: sandbox.path("hello-prover")))),
                                mode: 0o755)
                        ] + extra)
                ], config: ["Entrypoint": ["/usr/bin/hello-prover"], "Cmd": ["/mnt/gevulot/input/witness.txt"]])
        ])
    }

    static func build(_ sandbox: Sandbox, output: String, extra: [String] = []) throws -> RunResult {
        let (initBinary, _) = try Images.built.get()
        return try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--container", "oci:img", "-o", output, "--init-binary", initBinary,
                "--cache-dir", Images.kernelCache, "--accel", "nvidia"
            ] + extra, in: sandbox, timeout: 1200)
    }

    /// Built once: the example with --accel nvidia (default modules, from Debian's source).
    static let gpuImage: Result<(sandbox: Sandbox, image: String), Error> = Result {
        let sandbox = try Sandbox()
        try makeProverImage(in: sandbox)
        let result = try build(sandbox, output: "gpu.img")
        guard result.status == 0 else {
            throw NSError(domain: "gvlt build --accel nvidia failed: \(result.stderr)", code: Int(result.status))
        }
        return (sandbox, sandbox.path("gpu.img"))
    }

    /// Extracts `paths` from the image's SquashFS root with unsquashfs (not gvlt's reader).
    static func extract(_ paths: [String], from image: String, into directory: String) throws -> String {
        let offset = try rootOffset(image)
        try Images.shell(["unsquashfs", "-o", String(offset), "-q", "-n", "-no-xattrs", "-d", directory, image] + paths)
        return directory
    }

    static func rootOffset(_ image: String) throws -> Int64 {
        let mbr = try Data(contentsOf: URL(fileURLWithPath: image)).prefix(512)
        // Partition 2's entry: start LBA at 0x1CE + 8.
        let base = 0x1CE + 8
        let lba = (0..<4).reduce(Int64(0)) { $0 | Int64(mbr[mbr.startIndex + base + $1]) << (8 * Int64($1)) }
        return lba * 512
    }

    static func rootListing(_ image: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unsquashfs")
        process.arguments = ["-o", String(try rootOffset(image)), "-lls", image]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testImageCarriesDriverPartsOfOneVersionMatchingItsKernelAndBootsWithoutAGPU() throws {
        let (sandbox, image) = try Self.gpuImage.get()
        let inspect = try GvltBinary.run(["inspect", image, "--json"], in: sandbox)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        let release = try XCTUnwrap(report["kernelRelease"] as? String)

        // Read back from the image: the modules, the firmware and libcuda's soname link.
        let modules = "lib/modules/\(release)/updates/nvidia"
        let extracted = try Self.extract(
            ["\(modules)/nvidia.ko", "\(modules)/nvidia-uvm.ko", "etc/gvlt/nvidia"],
            from: image, into: sandbox.path("extracted"))
        let nvidia = try ModuleInfo(module: extracted + "/\(modules)/nvidia.ko")
        let uvm = try ModuleInfo(module: extracted + "/\(modules)/nvidia-uvm.ko")
        let driver = try XCTUnwrap(nvidia.values("version").first)
        XCTAssertEqual(uvm.values("version").first, driver)
        for info in [nvidia, uvm] {
            // Debian's vermagic: the release, then the flags, with a trailing space.
            XCTAssertTrue(
                info.vermagic?.hasPrefix(release + " SMP ") == true,
                "vermagic \(info.vermagic ?? "nil") for kernel \(release)")
        }
        let (_, listing) = try Self.rootListing(image)
        XCTAssertTrue(listing.contains("/lib/firmware/nvidia/\(driver)/gsp_ga10x.bin"), listing)
        XCTAssertTrue(listing.contains("/lib/firmware/nvidia/\(driver)/gsp_tu10x.bin"), listing)
        XCTAssertTrue(listing.contains("/usr/lib/x86_64-linux-gnu/libcuda.so.1 -> libcuda.so.\(driver)"), listing)
        XCTAssertTrue(
            listing.contains("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 -> libnvidia-ml.so.\(driver)"), listing)
        XCTAssertTrue(listing.contains("/usr/lib/x86_64-linux-gnu/libcuda.so.\(driver)\n"), listing)
        // The modules are stripped (nvidia.ko is 185 MB with debug info).
        let size = try FileManager.default.attributesOfItem(atPath: extracted + "/\(modules)/nvidia.ko")[.size] as! Int
        XCTAssertLessThan(size, 40 << 20)
        // The kernel's own drm comes first, then the driver's modules in order.
        let config = try String(contentsOfFile: extracted + "/etc/gvlt/nvidia", encoding: .utf8)
        let order = config.split(separator: "\n").filter { $0.hasPrefix("module ") }.map {
            String($0.split(separator: "/").last!)
        }
        XCTAssertEqual(order.suffix(2), ["nvidia.ko", "nvidia-uvm.ko"])
        XCTAssertTrue(order.contains("drm.ko"), config)

        // gvlt inspect reports the same.
        let gpu = try XCTUnwrap(report["nvidia"] as? [String: Any], "\(report)")
        XCTAssertEqual(gpu["driverVersion"] as? String, driver)
        let reported = (gpu["modules"] as? [[String: Any]] ?? []).filter {
            ($0["path"] as? String ?? "").contains("/updates/nvidia/")
        }
        XCTAssertEqual(reported.compactMap { $0["vermagic"] as? String }, [nvidia.vermagic!, uvm.vermagic!])
        XCTAssertEqual((gpu["firmware"] as? [String])?.count, 2)

        // Boots without a GPU: one clear line, and the program still runs and writes its proof.
        let witness = Images.repository + "/examples/hello-prover/witness.txt"
        let run = try GvltBinary.run(
            [
                "run", image, "--accel", "tcg", "--input", witness + ":witness.txt", "--output", "proof.txt",
                "--output-dir", sandbox.path("out")
            ], in: sandbox, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        XCTAssertTrue(
            (run.stdout + run.stderr).contains("gvlt-init: nvidia: no NVIDIA GPU found"), run.stdout + run.stderr)
        XCTAssertTrue((run.stdout + run.stderr).contains("NVRM: No NVIDIA GPU found."), run.stdout + run.stderr)
        let expected = TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: witness))).dropFirst(7)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("out/proof.txt"), encoding: .utf8), expected + "\n")
    }

    /// `gvlt run --gpu` checks the device before QEMU starts (this machine has none to pass).
    func testRunWithAGPUThatCannotBePassedFailsBeforeQEMU() throws {
        let (sandbox, image) = try Self.gpuImage.get()
        let run = try GvltBinary.run(["run", image, "--accel", "tcg", "--gpu", "7f:1f.7"], in: sandbox, timeout: 60)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("--gpu 0000:7f:1f.7: this machine has no such PCI device"), run.stderr)
        XCTAssertFalse(run.stdout.contains("gvlt-init"), "QEMU must not have started: \(run.stdout)")
        let printed = try GvltBinary.run(["run", image, "--gpu", "7f:1f.7", "--print-qemu-command"], in: sandbox)
        XCTAssertTrue(
            printed.stdout.contains("-device vfio-pci,rombar=0,host=7f:1f.7"), printed.stdout + printed.stderr)
    }

    func testRequireGPUFailsTheRunWithTheNoDeviceMessage() throws {
        _ = try Self.gpuImage.get()  // the modules are then in the cache
        let sandbox = try Sandbox()
        try Self.makeProverImage(in: sandbox)
        let build = try Self.build(sandbox, output: "strict.img", extra: ["--require-gpu"])
        XCTAssertEqual(build.status, 0, build.stderr)
        let witness = Images.repository + "/examples/hello-prover/witness.txt"
        let run = try GvltBinary.run(
            ["run", "strict.img", "--accel", "tcg", "--input", witness + ":witness.txt"], in: sandbox, timeout: 300)
        XCTAssertNotEqual(run.status, 0)
        let console = run.stdout + run.stderr
        XCTAssertTrue(
            console.contains("no NVIDIA GPU found") && console.contains("requires one (built with --require-gpu)"),
            console)
        XCTAssertFalse(console.contains("hello-prover"), "the program must not run: \(console)")
    }

    /// A module built for another kernel is refused before anything is written, naming both vermagics.
    func testModuleForAnotherKernelIsRefusedNamingBothVermagics() throws {
        let sandbox = try Sandbox()
        try Self.makeProverImage(in: sandbox)
        // A stand-in nvidia.ko: an ELF object whose .modinfo says another kernel.
        let foreign = "5.10.0-99-amd64 SMP mod_unload modversions "
        try sandbox.write(
            "fake.c",
            Data(
                """
                __attribute__((section(".modinfo"), used)) static const char info[] =
                    "version=535.261.03\\0name=nvidia\\0vermagic=\(foreign)";
                """.utf8))
        try FileManager.default.createDirectory(atPath: sandbox.path("modules"), withIntermediateDirectories: true)
        try Images.shell(["gcc", "-c", "-o", sandbox.path("modules/nvidia.ko"), sandbox.path("fake.c")])
        try Images.shell(["cp", sandbox.path("modules/nvidia.ko"), sandbox.path("modules/nvidia-uvm.ko")])
        let result = try Self.build(
            sandbox, output: "foreign.img", extra: ["--nvidia-modules", "dir:" + sandbox.path("modules")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("`\(foreign)`"), result.stderr)
        XCTAssertTrue(
            result.stderr.contains("SMP preempt mod_unload modversions `"),
            "the kernel's own vermagic is named: \(result.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("foreign.img")))
    }

    /// Driver libraries of another version in the container are refused, both versions named; with
    /// --nvidia-userspace keep the container's stay and the build succeeds.
    func testContainerWithOtherDriverLibrariesIsRefusedUnlessKept() throws {
        _ = try Self.gpuImage.get()
        let sandbox = try Sandbox()
        try Self.makeProverImage(
            in: sandbox,
            extra: [
                .dir("usr/lib"), .dir("usr/lib/x86_64-linux-gnu"),
                TarMember("usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", .file(Data("not really".utf8)), mode: 0o644),
                TarMember("usr/lib/x86_64-linux-gnu/libcuda.so.1", .symlink("libcuda.so.550.54.14")),
                TarMember("usr/lib/x86_64-linux-gnu/libcudart.so.12.4.127", .file(Data("not really".utf8)), mode: 0o644)
            ])
        let refused = try Self.build(sandbox, output: "mixed.img")
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("550.54.14") && refused.stderr.contains("535."), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--nvidia-userspace keep"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("mixed.img")))

        let kept = try Self.build(sandbox, output: "kept.img", extra: ["--nvidia-userspace", "keep"])
        XCTAssertEqual(kept.status, 0, kept.stderr)
        // CUDA 12.4's runtime needs a newer driver than 535 (CUDA 12.2): a warning naming both.
        XCTAssertTrue(
            kept.stderr.contains("is CUDA 12.4, newer than NVIDIA driver 535.") && kept.stderr.contains("(CUDA 12.2)"),
            kept.stderr)
        let (_, listing) = try Self.rootListing(sandbox.path("kept.img"))
        XCTAssertTrue(listing.contains("/usr/lib/x86_64-linux-gnu/libcuda.so.1 -> libcuda.so.550.54.14"), listing)
        XCTAssertFalse(listing.contains("libcuda.so.535"), listing)
    }

    func testNvidiaOptionsAreChecked() throws {
        let sandbox = try Sandbox()
        try Self.makeProverImage(in: sandbox)
        let (initBinary, _) = try Images.built.get()
        let stray = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "--container", "oci:img", "-o", "x.img", "--init-binary", initBinary,
                "--require-gpu"
            ], in: sandbox)
        XCTAssertNotEqual(stray.status, 0)
        XCTAssertTrue(stray.stderr.contains("--require-gpu is for --accel nvidia"), stray.stderr)
        for (flags, message) in [
            (["--nvidia-modules", "prebuilt"], "is not a module source"),
            (["--nvidia-kernel-modules", "nvidia-uvm"], "must include nvidia"),
            (["--nvidia-kernel-modules", "nvidia,nouveau"], "`nouveau` is not one of the driver's modules"),
            (["--nvidia-version", "535"], "is not a driver version")
        ] {
            let result = try Self.build(sandbox, output: "x.img", extra: flags)
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.stderr.contains(message), "\(flags): \(result.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("x.img")))
    }
}
