import Core
import Foundation

/// A Nanos disk image read back: its partition table and both TFS volumes. The root
/// volume runs to the end of the disk, which is how the kernel sizes it.
public struct NanosImage {
    public var path: String
    public var partitions: [NanosPartitionTable.Entry]
    public var stage2Length: UInt64?
    public var boot: TFSVolume
    public var root: TFSVolume
    public var file: SharedFile
}

public enum NanosImageReader {
    public static func open(_ path: String) throws -> NanosImage {
        let file = try SharedFile.openRegular(path, what: "image", followSymlinks: true)
        var sector = [UInt8](repeating: 0, count: 512)
        let got = try sector.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        guard got == 512, let table = NanosPartitionTable(sector: sector) else {
            throw InputError(
                "\(path) is not a Nanos disk image (no partition table)",
                hint: "pass an image made by gvlt build --backend nanos or ops build")
        }
        let used = table.entries.filter { $0.type == 0x83 }
        guard used.count >= 2 else {
            throw InputError(
                "\(path) is not a Nanos disk image: it needs a boot and a root partition (type 0x83), it has \(used.count)",
                hint: "pass an image made by gvlt build --backend nanos or ops build")
        }
        let bootEntry = used[0], rootEntry = used[1]
        // checked: UInt32 sector numbers times 512 stay below 2^41
        let bootOffset = Int64(bootEntry.firstSector) * 512
        let rootOffset = Int64(rootEntry.firstSector) * 512
        guard bootOffset + Int64(bootEntry.sectorCount) * 512 <= file.size, rootOffset < file.size else {
            throw InputError("\(path): its partitions lie beyond the end of the file", hint: "the image is truncated")
        }
        let boot = try TFSReader.read(
            // checked: UInt32 sector count times 512
            file: file, offset: bootOffset, length: Int64(bootEntry.sectorCount) * 512,
            what: "\(path) (boot filesystem)")
        let root = try TFSReader.read(
            file: file, offset: rootOffset, length: file.size - rootOffset, what: "\(path) (root filesystem)")
        return NanosImage(
            path: path, partitions: table.entries, stage2Length: table.stage2Length, boot: boot, root: root, file: file)
    }
}
