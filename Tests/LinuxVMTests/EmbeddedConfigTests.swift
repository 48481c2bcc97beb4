import Core
import Foundation
@testable import LinuxVM
import TestSupport
import XCTest

/// Reading the config a kernel carries (IKCONFIG) from bzImages laid out as the boot protocol says,
/// with payloads compressed by the real tools the kernel's build uses, and the 4-byte size the
/// kernel appends after every compressor but gzip.
final class EmbeddedConfigTests: XCTestCase {
    let config =
        "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.0 Kernel Configuration\n#\nCONFIG_64BIT=y\nCONFIG_VIRTIO=y\nCONFIG_9P_FS=m\n# CONFIG_IKCONFIG_PROC is not set\n"

    /// A vmlinux stand-in: several MiB of varied bytes with the config block in the middle, so the
    /// markers land far from the start and across decompressor output chunks.
    func vmlinux(withConfig: Bool) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var state: UInt32 = 12345
        for _ in 0..<(3 << 20) {
            state = state &* 1103515245 &+ 12345
            bytes.append(UInt8(truncatingIfNeeded: state >> 16) & 0x7f)
        }
        if withConfig {
            let gz = try Self.compress(Array(config.utf8), with: ["gzip", "-n", "-9"])
            bytes += Array("IKCFG_ST".utf8) + gz + Array("IKCFG_ED".utf8)
        }
        bytes += [UInt8](repeating: 0x90, count: 1 << 20)
        return bytes
    }

    static func compress(_ input: [UInt8], with command: [String]) throws -> [UInt8] {
        let dir = NSTemporaryDirectory() + "gvlt-ikconfig-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/in", contents: Data(input)))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command.joined(separator: " ") + " < \(dir)/in > \(dir)/out"]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(command)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out")))
    }

    /// A bzImage: setup sectors with the boot header, then the payload at `payload_offset`.
    func bzImage(payload: [UInt8], sizeAppended: Bool, unpackedSize: Int) -> [UInt8] {
        var image = [UInt8](repeating: 0, count: 2 * 512)  // setup_sects = 1
        image[0x1F1] = 1
        image.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        image[0x206] = 0x0F; image[0x207] = 0x02  // protocol 2.15
        image[0x20E] = 0x00; image[0x20F] = 0x01  // version string at 0x300
        image.replaceSubrange(0x300..<0x300 + 26, with: Array("6.1.0-ikconfig (t@t) #1\0\0\0".utf8))
        var body = payload
        if sizeAppended {
            body += withUnsafeBytes(of: UInt32(unpackedSize).littleEndian, Array.init)
        }
        let payloadOffset = 0x400
        func put32(_ value: Int, at: Int) {
            for i in 0..<4 { image[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        put32(payloadOffset, at: 0x248)
        put32(body.count, at: 0x24C)
        image += [UInt8](repeating: 0xCC, count: payloadOffset)  // decompressor code stand-in
        image += body
        image += [UInt8](repeating: 0, count: 4096)
        return image
    }

    func write(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "gvlt-bzimage-\(getpid())-\(UUID().uuidString)"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testConfigIsReadFromEveryKernelCompression() throws {
        let kernel = try vmlinux(withConfig: true)
        let compressors: [(String, [String], Bool)] = [
            ("gzip", ["gzip", "-n", "-9"], false),
            ("xz", ["xz", "--check=crc32", "--x86", "--lzma2=dict=32MiB"], true),
            ("zstd", ["zstd", "-19", "-q"], true),
            ("lzma", ["xz", "--format=lzma", "-9"], true),
            ("bzip2", ["bzip2", "-9"], true),
            ("lz4", ["lz4", "-l", "-9", "-q"], true)
        ]
        for (name, command, sizeAppended) in compressors {
            let image = try write(
                bzImage(
                    payload: try Self.compress(kernel, with: command), sizeAppended: sizeAppended,
                    unpackedSize: kernel.count))
            XCTAssertEqual(try EmbeddedKernelConfig.read(bzImage: image), config, name)
            let bundle = try FileKernelProvider.bundle(image: image, modules: nil, config: nil)
            XCTAssertEqual(bundle.release, "6.1.0-ikconfig")
            XCTAssertEqual(bundle.config["CONFIG_9P_FS"], .module, name)
            XCTAssertTrue(bundle.origin.contains("config read from the image"), bundle.origin)
        }
    }

    func testKernelWithoutIKConfigIsRefusedAskingForTheConfig() throws {
        let kernel = try vmlinux(withConfig: false)
        let image = try write(
            bzImage(
                payload: try Self.compress(kernel, with: ["xz", "--check=crc32"]), sizeAppended: true,
                unpackedSize: kernel.count))
        XCTAssertNil(try EmbeddedKernelConfig.read(bzImage: image))
        XCTAssertThrowsError(try FileKernelProvider.bundle(image: image, modules: nil, config: nil)) {
            XCTAssertTrue("\($0)".contains("built without CONFIG_IKCONFIG"), "\($0)")
            XCTAssertTrue(($0 as? UserFacingError)?.hint?.contains("--kernel-config") == true, "\($0)")
        }
    }

    func testConfigsModuleIsReadWhenIKConfigIsAModule() throws {
        let kernel = try vmlinux(withConfig: false)
        let image = try write(
            bzImage(
                payload: try Self.compress(kernel, with: ["gzip", "-n"]), sizeAppended: false,
                unpackedSize: kernel.count))
        let modules = NSTemporaryDirectory() + "gvlt-modules-\(getpid())-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: modules) }
        try FileManager.default.createDirectory(
            atPath: modules + "/6.1.0-ikconfig/kernel/kernel", withIntermediateDirectories: true)
        let module =
            [0x7F] + Array("ELF".utf8) + [UInt8](repeating: 1, count: 300) + Array("IKCFG_ST".utf8)
            + (try Self.compress(Array(config.utf8), with: ["gzip", "-n"])) + Array("IKCFG_ED".utf8) + [0, 0, 0]
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: modules + "/6.1.0-ikconfig/kernel/kernel/configs.ko", contents: Data(module)))
        let bundle = try FileKernelProvider.bundle(image: image, modules: modules, config: nil)
        XCTAssertEqual(bundle.modulesDirectory, modules + "/6.1.0-ikconfig")
        XCTAssertEqual(bundle.config["CONFIG_VIRTIO"], .builtIn)
        XCTAssertTrue(bundle.origin.contains("configs.ko"), bundle.origin)
    }

    func testCorruptPayloadsAreClearErrors() throws {
        let kernel = try vmlinux(withConfig: true)
        var gz = try Self.compress(kernel, with: ["gzip", "-n"])
        // Truncated: the header claims more payload than the file holds.
        var image = bzImage(payload: gz, sizeAppended: false, unpackedSize: kernel.count)
        image.removeLast(4096 + gz.count / 2)
        XCTAssertThrowsError(try EmbeddedKernelConfig.read(bzImage: try write(image))) {
            XCTAssertTrue("\($0)".contains("beyond the file"), "\($0)")
        }
        // Unknown magic.
        gz[0] = 0x42; gz[1] = 0x42
        XCTAssertThrowsError(
            try EmbeddedKernelConfig.read(
                bzImage: try write(bzImage(payload: gz, sizeAppended: false, unpackedSize: 0)))
        ) {
            XCTAssertTrue("\($0)".contains("no compression format"), "\($0)")
        }
        // Start marker without an end marker.
        var broken = try vmlinux(withConfig: false)
        broken += Array("IKCFG_ST".utf8) + [UInt8](repeating: 7, count: 1000)
        let image2 = try write(
            bzImage(payload: try Self.compress(broken, with: ["gzip", "-n"]), sizeAppended: false, unpackedSize: 0))
        XCTAssertThrowsError(try EmbeddedKernelConfig.read(bzImage: image2)) {
            XCTAssertTrue("\($0)".contains("never ends"), "\($0)")
        }
        // Not a kernel at all.
        XCTAssertThrowsError(try EmbeddedKernelConfig.read(bzImage: try write(Array(repeating: 0, count: 4096)))) {
            XCTAssertTrue("\($0)".contains("not an x86 kernel image"), "\($0)")
        }
    }
}
