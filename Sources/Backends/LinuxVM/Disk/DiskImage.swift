import Core
import Crypto
import Foundation

/// The worker's disk: a raw MBR disk with SYSLINUX's boot code, partition 1 FAT (active)
/// and partition 2 the root file system. Partitions start on 4 KiB boundaries (the page and file system
/// block size): a virtual disk gains nothing from the 1 MiB alignment partitioners use for physical
/// media, and the image would carry up to 2 MiB of padding. Written atomically.
public enum DiskImage {
    public static let alignment: Int64 = 4096
    public static let mbrCode = "/usr/lib/syslinux/mbr/mbr.bin"

    public struct Layout: Equatable {
        public var bootStart: Int64
        public var bootSize: Int64
        public var rootStart: Int64
        public var rootSize: Int64
        public var total: Int64 { rootStart + rootSize }
    }

    public static func layout(bootSize: Int64, rootSize: Int64) -> Layout {
        func align(_ value: Int64) -> Int64 { (value + alignment - 1) / alignment * alignment }
        let bootStart = alignment
        let rootStart = align(bootStart + bootSize)
        return Layout(
            bootStart: bootStart, bootSize: bootSize, rootStart: rootStart, rootSize: (rootSize + 511) / 512 * 512)
    }

    /// The disk signature, from the root file system's content rather than a clock or a random
    /// number. The kernel names partition 2 `PARTUUID=<signature>-02` by it.
    public static func diskSignature(root: String) throws -> UInt32 {
        let file = try SharedFile.openRegular(root, what: "root file system", followSymlinks: false)
        return try diskSignature(root: file, offset: 0, size: file.size)
    }

    /// The same for a root at `offset` in `file` (the disk being written). For a SquashFS root the
    /// signature comes from its super block and the tables after its data (every inode, with each
    /// file's size and the size of each of its compressed blocks; the directories; the fragment,
    /// ID and xattr tables): they change with the tree, and they are a few hundred KB where hashing
    /// the whole root was the longest step left once it had been compressed. Other roots (ext4),
    /// and a SquashFS whose super block does not describe what is there, are hashed whole.
    public static func diskSignature(root file: SharedFile, offset: Int64, size: Int64) throws -> UInt32 {
        var hasher = SHA256()
        var superBlock = [UInt8](repeating: 0, count: 96)
        let read = try superBlock.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        func field(_ at: Int) -> UInt64 {
            superBlock.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        }
        let magic = superBlock.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        // Range-checked: the tables must lie after the super block and within the root.
        let (tables, used) = (field(64), field(40))
        if read == superBlock.count, magic == 0x7371_7368, tables >= 96, tables <= used, used <= UInt64(max(0, size)) {
            hasher.update(data: superBlock)
            // checked: both are at most `size`, an Int64
            try FileContent.blobRange(file: file, offset: offset + Int64(tables), length: Int64(used - tables))
                .stream { hasher.update(bufferPointer: $0) }
        } else {
            try FileContent.blobRange(file: file, offset: offset, length: size).stream {
                hasher.update(bufferPointer: $0)
            }
        }
        return hasher.finalize().withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) }
    }

    /// Assembles the disk at `path`; returns its sha256 and size. `mbrCode` replaces SYSLINUX's boot
    /// code (gvltctl's `--mbr-file`); `size` makes the disk that large (`--size`), the root partition
    /// taking the room after its file system, which the disk file leaves as a hole.
    public static func write(
        boot: String, root: String, diskSignature: UInt32? = nil, mbrCode customCode: String? = nil,
        size: Int64? = nil, to path: String, force: Bool, beforeCommit: (Committing) -> Void = { _ in }
    ) throws -> (sha256: String, bytes: Int64) {
        let rootFile = try SharedFile.openRegular(root, what: "root file system", followSymlinks: false)
        return try write(
            boot: boot, root: (rootFile, 0, rootFile.size), diskSignature: diskSignature, mbrCode: customCode,
            size: size, to: path, force: force, beforeCommit: beforeCommit)
    }

    /// A disk written whole, about to take its name.
    public struct Committing {
        /// A path that opens the disk now (it may have no name yet).
        public var path: String
        /// Its sha256, in hex, and its size.
        public var sha256: String
        public var bytes: Int64
        /// Where its root partition's file system lies.
        public var rootStart: Int64
        public var rootSize: Int64
    }

    /// The same with the root taken from `root.size` bytes at `root.offset` in an open file: a disk
    /// whose root was written into it, written anew. `beforeCommit` runs once the disk is written
    /// and before it takes its name: work the disk must not appear without.
    public static func write(
        boot: String, root: (file: SharedFile, offset: Int64, size: Int64), diskSignature: UInt32? = nil,
        mbrCode customCode: String? = nil, size: Int64? = nil, to path: String, force: Bool,
        beforeCommit: (Committing) -> Void = { _ in }
    ) throws -> (sha256: String, bytes: Int64) {
        let code = try bootCode(customCode)
        let bootFile = try SharedFile.openRegular(boot, what: "boot partition", followSymlinks: false)
        let layout = try sizedLayout(
            layout(bootSize: bootFile.size, rootSize: root.size), size: size)
        let signature = try diskSignature ?? Self.diskSignature(root: root.file, offset: root.offset, size: root.size)
        let mbr = try Self.mbr(code: code, signature: signature, layout: layout)

        let output = try AtomicOutput(path: path, force: force)
        var committed = false
        defer { if !committed { output.abandon() } }
        let sink = FileSink(fd: output.fd, displayName: output.path, direct: true)
        var written: Int64 = 0
        func zeros(upTo offset: Int64) throws {
            let block = [UInt8](repeating: 0, count: 1 << 16)
            while written < offset {
                let count = Int(min(Int64(block.count), offset - written))
                try block.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                written += Int64(count)
            }
        }
        try mbr.withUnsafeBytes { try sink.write($0) }
        written = 512
        try zeros(upTo: layout.bootStart)
        try FileContent.blobRange(file: bootFile, offset: 0, length: bootFile.size).stream { try sink.write($0) }
        written += bootFile.size
        try zeros(upTo: layout.rootStart)
        try FileContent.blobRange(file: root.file, offset: root.offset, length: root.size).stream {
            try sink.write($0)
        }
        written += root.size
        try sink.writeZeros(layout.total - written)
        try sink.finish()
        let digest = sink.digest()
        beforeCommit(
            Committing(
                path: output.temporaryPath, sha256: String(digest.dropFirst("sha256:".count)),
                bytes: sink.byteCount, rootStart: layout.rootStart, rootSize: root.size))
        try output.commit()
        committed = true
        return (digest, sink.byteCount)
    }

    /// SYSLINUX's MBR boot code, or the user's (`--mbr-file`).
    static func bootCode(_ customCode: String?) throws -> [UInt8] {
        if let customCode {
            guard let data = FileManager.default.contents(atPath: customCode) else {
                throw InputError("cannot read the MBR boot code \(customCode)", hint: "check the --mbr-file path")
            }
            // Bytes 440 on hold the disk signature and the partition table, which are the image's own.
            guard !data.isEmpty, data.count <= 440 || (data.count == 512 && data[510] == 0x55 && data[511] == 0xAA)
            else {
                throw InputError(
                    "--mbr-file \(customCode) is \(data.count) bytes; MBR boot code is at most 440 bytes (or a 512-byte sector ending in 55 AA)",
                    hint: "use a boot code file such as syslinux's mbr.bin")
            }
            return Array(data.prefix(440))
        }
        guard let data = FileManager.default.contents(atPath: mbrCode) else {
            throw MissingToolError(tool: mbrCode, aptPackage: "syslinux-common", purpose: "booting linuxvm images")
        }
        return Array(data.prefix(440))
    }

    /// `layout` grown to `size` bytes (`--size`), the root partition taking the room.
    static func sizedLayout(_ layout: Layout, size: Int64?) throws -> Layout {
        guard let size else { return layout }
        var layout = layout
        guard size / 512 * 512 >= layout.total else {
            throw InputError(
                "--size \(size) bytes is too small: this image needs at least \(layout.total) bytes (\((layout.total + (1 << 20) - 1) >> 20) MiB)",
                hint:
                    "pass --size \((layout.total + (1 << 20) - 1) >> 20)M or more, or drop --size for the smallest image"
            )
        }
        guard (size / 512 - layout.rootStart / 512) <= Int64(UInt32.max) else {
            throw InputError("--size \(size) bytes is more than an MBR partition can hold (2 TiB)")
        }
        layout.rootSize = size / 512 * 512 - layout.rootStart
        return layout
    }

    static func mbr(code: [UInt8], signature: UInt32, layout: Layout) throws -> [UInt8] {
        try MBR(
            bootCode: code, diskSignature: signature,
            partitions: [
                .init(
                    active: true, type: MBR.Partition.fat32LBA, firstSector: UInt32(layout.bootStart / 512),
                    sectorCount: UInt32(layout.bootSize / 512)),
                .init(
                    active: false, type: MBR.Partition.linux, firstSector: UInt32(layout.rootStart / 512),
                    sectorCount: UInt32(layout.rootSize / 512))
            ]
        ).encode()
    }

    /// Where the root partition starts when the boot partition is `bootKiB` large.
    public static func rootStart(bootKiB: Int) -> Int64 {
        layout(bootSize: Int64(bootKiB) * 1024, rootSize: 0).rootStart
    }

    /// Completes a disk whose root file system was written into `output` at `rootStart` while it
    /// was packed: the MBR and the boot partition go before it, and the rest is holes. Returns nil,
    /// having written nothing, when the boot partition needs more room than `rootStart` leaves
    /// (then the caller writes the disk anew with `write`). Commits the output, after `beforeCommit`.
    public static func complete(
        _ output: AtomicOutput, rootStart: Int64, rootSize: Int64, boot: String, diskSignature: UInt32,
        mbrCode customCode: String? = nil, size: Int64? = nil, beforeCommit: (Committing) -> Void = { _ in }
    ) throws -> (sha256: String, bytes: Int64)? {
        let bootFile = try SharedFile.openRegular(boot, what: "boot partition", followSymlinks: false)
        var layout = layout(bootSize: bootFile.size, rootSize: rootSize)
        guard layout.rootStart == rootStart else { return nil }
        layout = try sizedLayout(layout, size: size)
        let mbr = try Self.mbr(code: try bootCode(customCode), signature: diskSignature, layout: layout)
        // A descriptor of its own: SharedFile closes it, and the output keeps its own to commit.
        let duplicate = dup(output.fd)
        guard duplicate >= 0 else { throw SystemError("cannot write", path: output.path, errno: errno) }
        let disk = SharedFile(fd: duplicate, displayName: output.path)
        try mbr.withUnsafeBytes { try disk.write($0, at: 0) }
        var offset = layout.bootStart
        try FileContent.blobRange(file: bootFile, offset: 0, length: bootFile.size).stream { chunk in
            try disk.write(chunk, at: offset)
            offset += Int64(chunk.count)
        }
        try disk.truncate(to: layout.total)
        // The disk's digest, read back: the root's super block went to its start last.
        let sha256 = try SHA256Hex.of(disk)
        beforeCommit(
            Committing(
                path: output.temporaryPath, sha256: sha256, bytes: layout.total, rootStart: rootStart,
                rootSize: rootSize))
        try output.commit()
        return ("sha256:" + sha256, layout.total)
    }
}
