/// Sector 0 of a Nanos disk: stage1's boot code, the region record at 0x1AA that tells stage2 its
/// own length, and the MBR partition table (platform/pc/boot/stage1.s, src/runtime/storage.h).
public struct NanosPartitionTable: Equatable {
    public struct Entry: Equatable {
        public var active: Bool
        public var type: UInt8
        public var firstSector: UInt32
        public var sectorCount: UInt32
    }

    public var entries: [Entry]
    /// The region record's length when its type is 12 (REGION_FILESYSTEM).
    public var stage2Length: UInt64?

    public init(entries: [Entry], stage2Length: UInt64?) {
        self.entries = entries
        self.stage2Length = stage2Length
    }

    /// nil unless the sector ends in 55 AA.
    public init?(sector: [UInt8]) {
        guard sector.count >= 512, sector[510] == 0x55, sector[511] == 0xAA else { return nil }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(sector[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
        stage2Length = u32(0x1BA) == 12 ? u64(0x1B2) : nil
        entries = (0..<4).map { index in
            let base = 0x1BE + index * 16
            return Entry(
                active: sector[base] == 0x80, type: sector[base + 4], firstSector: u32(base + 8),
                sectorCount: u32(base + 12))
        }.filter { $0.type != 0 || $0.sectorCount != 0 }
    }

    /// Nanos' `mbr_chs` for a byte offset, including its quirk: the cylinder's high bits are OR'ed into
    /// the sector byte unshifted, and past cylinder 1023 it gives FE 3F FF. Kept so that our tables are
    /// the ones Nanos and ops write.
    public static func chs(byteOffset: UInt64) -> [UInt8] {
        let lba = byteOffset / 512
        var cylinder = lba / 63 / 255
        var head = (lba / 63) % 255
        var sector = lba % 63 + 1
        if cylinder > 1023 {
            cylinder = 1023
            head = 254
            sector = 63
        }
        return [UInt8(head), UInt8(truncatingIfNeeded: (cylinder >> 8) | sector), UInt8(truncatingIfNeeded: cylinder)]
    }

    /// Writes the region record and the entries (active 0x80, CHS filled) into `sector`, which holds
    /// stage1 from boot.img.
    public func write(into sector: inout [UInt8]) {
        for index in 0..<4 {
            let base = 0x1BE + index * 16
            sector.replaceSubrange(base..<base + 16, with: [UInt8](repeating: 0, count: 16))
            guard index < entries.count else { continue }
            let entry = entries[index]
            let start = UInt64(entry.firstSector) * 512
            sector[base] = entry.active ? 0x80 : 0
            sector.replaceSubrange(base + 1..<base + 4, with: Self.chs(byteOffset: start))
            sector[base + 4] = entry.type
            sector.replaceSubrange(
                base + 5..<base + 8, with: Self.chs(byteOffset: start + UInt64(entry.sectorCount) * 512 - 512))
            for byte in 0..<4 {
                sector[base + 8 + byte] = UInt8(truncatingIfNeeded: entry.firstSector >> (8 * byte))
                sector[base + 12 + byte] = UInt8(truncatingIfNeeded: entry.sectorCount >> (8 * byte))
            }
        }
        sector[510] = 0x55
        sector[511] = 0xAA
    }
}
