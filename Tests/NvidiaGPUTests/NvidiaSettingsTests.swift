import Core
@testable import NvidiaGPU
import XCTest

/// Every `--accel nvidia` option, for Linux and for Nanos images, decoded and checked before any
/// download or build.
final class NvidiaSettingsTests: XCTestCase {
    func settings(_ values: [String: JSONValue]) throws -> NvidiaSettings {
        try NvidiaSettings.decode(BuildOptions(values, origin: "test"))
    }

    func assertRefused(
        _ values: [String: JSONValue], for target: TargetKind, _ fragment: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(
            try NvidiaAccelerator().validate(try settings(values), for: target), file: file, line: line
        ) { error in
            XCTAssertTrue("\(error)".contains(fragment), "`\(fragment)` not in: \(error)", file: file, line: line)
        }
    }

    func testTheKeyListIsTheFlagList() {
        XCTAssertEqual(
            Set(NvidiaSettings.optionKeys),
            [
                "nvidia-modules", "nvidia-kernel-modules", "nvidia-userspace", "nvidia-version",
                "require-gpu", "nvidia-klib", "nvidia-firmware"
            ])
    }

    func testLinuxDefaults() throws {
        let options = try NvidiaOptions(try settings([:]))
        XCTAssertEqual(options.modules, .debian)
        XCTAssertEqual(options.kernelModules, ["nvidia", "nvidia-uvm"])
        XCTAssertEqual(options.userspace, .install)
        XCTAssertFalse(options.requireGPU)
        XCTAssertNil(options.version)
    }

    func testLinuxOptions() throws {
        let options = try NvidiaOptions(
            try settings([
                "nvidia-modules": "dir:/opt/nvidia", "nvidia-kernel-modules": ["nvidia-drm,nvidia", "nvidia-modeset"],
                "nvidia-userspace": "keep", "nvidia-version": "535.261.03", "require-gpu": true
            ]))
        XCTAssertEqual(options.modules, .directory("/opt/nvidia"))
        // Load order is the driver's own, whatever order was written.
        XCTAssertEqual(options.kernelModules, ["nvidia", "nvidia-modeset", "nvidia-drm"])
        XCTAssertEqual(options.userspace, .keep)
        XCTAssertEqual(options.version, "535.261.03")
        XCTAssertTrue(options.requireGPU)
        XCTAssertTrue(try NvidiaOptions(try settings(["require-gpu": "yes"])).requireGPU)
    }

    func testLinuxRefusals() {
        assertRefused(["nvidia-modules": "apt"], for: .linuxKernel, "--nvidia-modules `apt` is not a module source")
        assertRefused(
            ["nvidia-kernel-modules": "nvidia,nouveau"], for: .linuxKernel,
            "`nouveau` is not one of the driver's modules")
        assertRefused(["nvidia-kernel-modules": "nvidia-uvm"], for: .linuxKernel, "must include nvidia")
        assertRefused(
            ["nvidia-userspace": "replace"], for: .linuxKernel, "--nvidia-userspace `replace` is not install or keep")
        assertRefused(["nvidia-version": "535"], for: .linuxKernel, "--nvidia-version `535` is not a driver version")
        assertRefused(["nvidia-klib": "/k"], for: .linuxKernel, "--nvidia-klib is for Nanos images")
        assertRefused(["nvidia-firmware": "/f"], for: .linuxKernel, "--nvidia-firmware is for Nanos images")
        assertRefused([:], for: .generic, "--accel nvidia needs a backend that boots a Linux kernel or a Nanos release")
        XCTAssertThrowsError(try settings(["require-gpu": "often"])) { error in
            XCTAssertTrue("\(error)".contains("test.require-gpu: `often` is not true or false"), "\(error)")
        }
    }

    func testNanosOptions() throws {
        let settings = try settings([
            "nvidia-klib": "/k/gpu_nvidia", "nvidia-firmware": "/fw", "nvidia-version": "535.113.01"
        ])
        XCTAssertNoThrow(try NvidiaAccelerator().validate(settings, for: .nanosRelease))
        XCTAssertEqual(settings.klib, "/k/gpu_nvidia")
        XCTAssertEqual(settings.firmware, "/fw")
        for flag in [
            "nvidia-modules": "debian", "nvidia-kernel-modules": "nvidia", "nvidia-userspace": "keep",
            "require-gpu": "true"
        ] as [String: JSONValue] {
            assertRefused([flag.key: flag.value], for: .nanosRelease, "--\(flag.key) is for Linux VM images")
        }
        assertRefused(["nvidia-version": "x"], for: .nanosRelease, "--nvidia-version `x` is not a driver version")
    }
}
