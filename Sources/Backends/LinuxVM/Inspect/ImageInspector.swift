import Core
import Foundation

/// What `gvlt inspect` reports about a Firestarter image, read without booting or mounting it: the
/// partition table, the boot partition's kernel, initramfs and SYSLINUX config (through mtools), and the
/// root file system's type, size, init and baked config (read in place: libsquashfs for SquashFS,
/// debugfs for ext4, with every path resolved inside the image).
public struct ImageReport: Codable, Sendable {
    public typealias Partition = PartitionReport

    public var image: String
    public var sha256: String
    public var bytes: Int64
    public var partitions: [Partition]
    public var kernelRelease: String?
    public var kernelCommandLine: String?
    public var initramfsModules: [String]?
    public var rootFilesystem: String
    public var rootCompressor: String?
    public var rootBytes: Int64?
    public var initSHA256: String?
    public var bakedConfig: String?
    /// The NVIDIA driver an `--accel nvidia` image carries.
    public var nvidia: NvidiaReport?
}

/// The GPU driver parts found in an image's root, read from the image itself (not the build inputs).
public struct NvidiaReport: Codable, Sendable {
    public struct Module: Codable, Sendable {
        public var path: String
        public var vermagic: String?
        /// The driver version the module says it is (`version=`); kernel modules it needs have none.
        public var version: String?
    }

    public var driverVersion: String
    public var requireGPU: Bool
    public var modules: [Module]
    public var firmware: [String]
    public var libraries: [String]
}

public enum ImageInspector {
    /// What inspect reads of one file at most: configs are KiB, the init and modules MiB.
    static let configLimit = 1 << 20
    static let binaryLimit = 256 << 20

    public static func inspect(_ path: String, scratch: String) throws -> ImageReport {
        let file = try SharedFile.openRegular(path, what: "image", followSymlinks: true)
        var sector = [UInt8](repeating: 0, count: 512)
        _ = try sector.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        let mbr: MBR
        do {
            mbr = try MBR.decode(sector)
        } catch {
            throw InputError(
                "\(path) is not a Firestarter image: it has no MBR partition table",
                hint: "inspect images made by `gvlt build --backend linuxvm`")
        }
        guard mbr.partitions.count == 2 else {
            throw InputError(
                "\(path) is not a Firestarter image: it has \(mbr.partitions.count) partitions, not a boot and a root partition"
            )
        }
        let partitions = mbr.partitions.enumerated().map { index, partition in
            ImageReport.Partition(
                number: index + 1, active: partition.active,
                type: partition.type == MBR.Partition.fat32LBA
                    ? "FAT32 (LBA)"
                    : partition.type == MBR.Partition.linux ? "Linux" : String(format: "0x%02x", partition.type),
                // checked: UInt32 sector numbers times 512
                start: Int64(partition.firstSector) * 512, size: Int64(partition.sectorCount) * 512)
        }
        var report = ImageReport(
            image: path, sha256: "sha256:" + (try SHA256Hex.of(file: path)), bytes: file.size, partitions: partitions,
            rootFilesystem: "unknown")

        // Boot partition, through mtools' image@@offset addressing.
        if let mcopy = HostTool("mcopy", apt: "mtools", purpose: "gvlt inspect").locate() {
            let boot = "\(path)@@\(partitions[0].start)"
            let environment = ProcessInfo.processInfo.environment.merging(["MTOOLS_SKIP_CHECK": "1"]) { $1 }
            if (try? HostCommand.run(
                mcopy, ["-n", "-i", boot, "::/vmlinuz", scratch + "/vmlinuz"], environment: environment)) != nil
            {
                report.kernelRelease = try? BzImage.release(of: scratch + "/vmlinuz")
            }
            if (try? HostCommand.run(
                mcopy, ["-n", "-i", boot, "::/syslinux.cfg", scratch + "/syslinux.cfg"], environment: environment))
                != nil,
                let text = try? String(contentsOfFile: scratch + "/syslinux.cfg", encoding: .utf8)
            {
                report.kernelCommandLine = text.split(separator: "\n").first { $0.contains("APPEND") }
                    .map { $0.trimmingCharacters(in: .whitespaces).dropFirst("APPEND ".count) }.map(String.init)
            }
            if (try? HostCommand.run(
                mcopy, ["-n", "-i", boot, "::/initrd.img", scratch + "/initrd.img"], environment: environment)) != nil
            {
                report.initramfsModules = try? modules(inInitramfs: scratch + "/initrd.img")
            }
        }

        // Root partition.
        let root = partitions[1]
        var magic = [UInt8](repeating: 0, count: 48)
        _ = try magic.withUnsafeMutableBytes { try file.read(into: $0, at: root.start) }
        if magic.prefix(4) == [0x68, 0x73, 0x71, 0x73] {  // "hsqs"
            report.rootFilesystem = "squashfs"
            let view = try SquashfsView(image: path, offset: root.start, length: root.size)
            report.rootCompressor = view.compressor
            report.rootBytes = Int64(exactly: view.bytesUsed)
            report.bakedConfig = try view.contents("etc/gvlt/config.yaml", limit: configLimit).map {
                String(decoding: $0, as: UTF8.self)
            }
            report.initSHA256 = try view.contents("usr/lib/gvlt/init", limit: binaryLimit).map {
                "sha256:" + SHA256Hex.of($0)
            }
            report.nvidia = try nvidia(in: view, scratch: scratch)
        } else {
            var ext = [UInt8](repeating: 0, count: 2)
            _ = try ext.withUnsafeMutableBytes { try file.read(into: $0, at: root.start + 1080) }
            if ext == [0x53, 0xEF] {
                report.rootFilesystem = "ext4"
                let view = try Ext4View(image: path, offset: root.start, scratch: scratch)
                report.rootBytes = try view.bytes()
                report.bakedConfig = try view.contents("/etc/gvlt/config.yaml", limit: configLimit).map {
                    String(decoding: $0, as: UTF8.self)
                }
                report.initSHA256 = try view.contents("/usr/lib/gvlt/init", limit: binaryLimit).map {
                    "sha256:" + SHA256Hex.of($0)
                }
            }
        }
        return report
    }

    /// Reads /etc/gvlt/nvidia from a SquashFS root, then each module it lists (for its vermagic and
    /// version), and lists the firmware and driver libraries that are really there. The module
    /// paths are the image's word: they are resolved inside it, and a module is read into an
    /// unnamed scratch file for libelf, never opened where the image points.
    static func nvidia(in view: SquashfsView, scratch: String) throws -> NvidiaReport? {
        guard let bytes = try view.contents("etc/gvlt/nvidia", limit: configLimit) else { return nil }
        let config = String(decoding: bytes, as: UTF8.self)
        var report = NvidiaReport(driverVersion: "unknown", requireGPU: false, modules: [], firmware: [], libraries: [])
        var modulePaths: [String] = []
        for line in config.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "driver": report.driverVersion = parts[1]
            case "require-gpu": report.requireGPU = parts[1] == "yes"
            case "module": modulePaths.append(parts[1])
            default: continue
            }
        }
        for path in modulePaths {
            var info: ModuleInfo?
            if let module = try? view.contents(path, limit: binaryLimit) {
                let copy = try SharedFile.anonymous(in: scratch)
                try module.withUnsafeBytes { try copy.write($0, at: 0) }
                info = try? ModuleInfo(module: "/proc/self/fd/\(copy.fd)")
            }
            report.modules.append(.init(path: path, vermagic: info?.vermagic, version: info?.values("version").first))
        }
        for path in try view.paths() {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            if path.hasPrefix("/lib/firmware/nvidia/") { report.firmware.append(path) }
            if name.hasPrefix("libcuda.so") || name.hasPrefix("libnvidia-") { report.libraries.append(path) }
        }
        return report
    }

    static func modules(inInitramfs path: String) throws -> [String] {
        let file = try SharedFile.openReadOnly(path)
        let reader = try ArchiveReader(
            format: .cpio, source: FileRangeSource(file: file, length: file.size), label: path)
        while let entry = try reader.nextHeader() {
            let header = try ArchiveEntryCoding.decode(entry)
            guard header.name == Initramfs.loadOrderPath else { continue }
            var text = Data()
            while let (block, _) = try reader.readBlock() { text.append(contentsOf: block) }
            return String(decoding: text, as: UTF8.self).split(separator: "\n").map {
                URL(fileURLWithPath: String($0)).deletingPathExtension().lastPathComponent
            }
        }
        return []
    }
}
