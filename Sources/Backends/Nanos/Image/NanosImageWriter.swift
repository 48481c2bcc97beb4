import Core
import Foundation

/// A bootable Nanos disk, laid out as ops lays it out: boot.img (stage1 + stage2),
/// the 4 KiB klog area, the 12 MiB boot filesystem, then the root filesystem to the end of the disk,
/// with the partition table written into stage1's sector. Written atomically.
public enum NanosImageWriter {
    public static let bootFilesystemSize: Int64 = 12 << 20
    public static let klogSize: Int64 = 4096
    /// An MBR entry counts sectors in 32 bits, so no partition, and so no root volume, is larger.
    public static let maximumPartitionSize: Int64 = Int64(UInt32.max) * 512

    public struct Result {
        public var sha256: String
        public var bytes: Int64
        public var bootOffset: Int64
        public var rootOffset: Int64
    }

    public static func write(
        _ layout: NanosLayout, bootImage: NanosBootImage, label: String = "", minimumSize: Int64? = nil,
        rootFreeSpace: Int64 = 8 << 20, to path: String, force: Bool
    ) throws -> Result {
        let output = try AtomicOutput(path: path, force: force)
        var committed = false
        defer { if !committed { output.abandon() } }
        // Its own descriptor: SharedFile closes what it holds, and AtomicOutput closes the original.
        let file = SharedFile(fd: dup(output.fd), displayName: output.path)

        try bootImage.bytes.withUnsafeBytes { try file.write($0, at: 0) }
        let bootOffset = Int64(bootImage.bytes.count) + klogSize
        let boot = try TFSWriter(minimumSize: bootFilesystemSize, freeSpace: 0, writable: false).write(
            layout.boot, to: file, at: bootOffset)
        guard boot.size <= bootFilesystemSize else {
            throw InputError(
                "the kernel and klibs need \(boot.size >> 20) MiB, more than the \(bootFilesystemSize >> 20) MiB boot partition Nanos' loader reads",
                hint: "drop klibs the program does not use")
        }
        let rootOffset = bootOffset + bootFilesystemSize
        // Refused before anything large is written: the root volume is sized to fill the disk.
        if let minimumSize, minimumSize - rootOffset > maximumPartitionSize {
            throw InputError(
                "a \(ProgressReporter.bytes(minimumSize)) disk (BaseVolumeSz) is larger than the \(ProgressReporter.bytes(maximumPartitionSize)) an MBR partition can hold",
                hint: "set BaseVolumeSz to at most \(maximumPartitionSize >> 30)g")
        }
        let root = try TFSWriter(
            rootKeys: layout.rootKeys, minimumSize: max(0, (minimumSize ?? 0) - rootOffset), freeSpace: rootFreeSpace
        )
        .write(layout.root, to: file, at: rootOffset)
        let total = rootOffset + root.size
        try file.truncate(to: total)

        guard let bootStart = UInt32(exactly: bootOffset / 512), let rootStart = UInt32(exactly: rootOffset / 512),
            let rootSectors = UInt32(exactly: (total - rootOffset) / 512)
        else {
            throw InputError(
                "the root volume needs \(ProgressReporter.bytes(root.size)), more than the \(ProgressReporter.bytes(maximumPartitionSize)) an MBR partition can hold",
                hint: "leave large data out of the image and pass it as a task input")
        }
        var sector = Array(bootImage.bytes[0..<512])
        NanosPartitionTable(
            entries: [
                .init(
                    active: true, type: 0x83, firstSector: bootStart,
                    sectorCount: UInt32(bootFilesystemSize / 512)),
                .init(
                    active: true, type: 0x83, firstSector: rootStart,
                    sectorCount: rootSectors)
            ], stage2Length: UInt64(bootImage.stage2Length)
        ).write(into: &sector)
        try sector.withUnsafeBytes { try file.write($0, at: 0) }

        let digest = try SHA256Hex.of(file: output.temporaryPath)
        try output.commit()
        committed = true
        return Result(sha256: digest, bytes: total, bootOffset: bootOffset, rootOffset: rootOffset)
    }
}
