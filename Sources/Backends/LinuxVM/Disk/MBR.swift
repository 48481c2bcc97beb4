import Core

/// A classic MBR partition table (the worker boots BIOS/MBR disks): boot code, a disk signature and
/// up to four primary partitions addressed by LBA.
public struct MBR: Equatable, Sendable {
    public struct Partition: Equatable, Sendable {
        public var active: Bool
        public var type: UInt8
        public var firstSector: UInt32
        public var sectorCount: UInt32

        public init(active: Bool, type: UInt8, firstSector: UInt32, sectorCount: UInt32) {
            self.active = active
            self.type = type
            self.firstSector = firstSector
            self.sectorCount = sectorCount
        }

        public static let fat32LBA: UInt8 = 0x0C
        public static let linux: UInt8 = 0x83
    }

    /// Up to 440 bytes of boot code (SYSLINUX's mbr.bin), zero-padded.
    public var bootCode: [UInt8]
    public var diskSignature: UInt32
    public var partitions: [Partition]

    public init(bootCode: [UInt8] = [], diskSignature: UInt32, partitions: [Partition]) {
        self.bootCode = bootCode
        self.diskSignature = diskSignature
        self.partitions = partitions
    }

    public func encode() throws -> [UInt8] {
        guard bootCode.count <= 440 else {
            throw InputError("MBR boot code is \(bootCode.count) bytes; at most 440 fit")
        }
        guard partitions.count <= 4 else { throw InputError("an MBR holds at most 4 primary partitions") }
        var sector = [UInt8](repeating: 0, count: 512)
        sector.replaceSubrange(0..<bootCode.count, with: bootCode)
        Self.put32(diskSignature, into: &sector, at: 440)
        for (index, partition) in partitions.enumerated() {
            let base = 446 + index * 16
            sector[base] = partition.active ? 0x80 : 0x00
            // CHS fields set to the "use LBA" maximum, as modern partitioners do for large disks.
            sector.replaceSubrange(base + 1..<base + 4, with: [0xFE, 0xFF, 0xFF])
            sector[base + 4] = partition.type
            sector.replaceSubrange(base + 5..<base + 8, with: [0xFE, 0xFF, 0xFF])
            Self.put32(partition.firstSector, into: &sector, at: base + 8)
            Self.put32(partition.sectorCount, into: &sector, at: base + 12)
        }
        sector[510] = 0x55
        sector[511] = 0xAA
        return sector
    }

    public static func decode(_ sector: [UInt8]) throws -> MBR {
        guard sector.count >= 512, sector[510] == 0x55, sector[511] == 0xAA else {
            throw InputError("not an MBR disk: the boot signature 55 AA is missing")
        }
        var partitions: [Partition] = []
        for index in 0..<4 {
            let base = 446 + index * 16
            let type = sector[base + 4]
            guard type != 0 else { continue }
            partitions.append(
                Partition(
                    active: sector[base] == 0x80, type: type, firstSector: get32(sector, base + 8),
                    sectorCount: get32(sector, base + 12)))
        }
        return MBR(bootCode: Array(sector[0..<440]), diskSignature: get32(sector, 440), partitions: partitions)
    }

    static func put32(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    static func get32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }
}
