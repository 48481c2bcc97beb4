import Core
import Foundation

/// The `.config` a kernel built with `CONFIG_IKCONFIG` carries: gzip'd between the markers `IKCFG_ST`
/// and `IKCFG_ED` (kernel/configs.c), inside the compressed payload of the bzImage, or inside
/// `kernel/kernel/configs.ko` when IKCONFIG is a module. This is what `scripts/extract-ikconfig`
/// finds by trying every decompressor at every offset; the boot protocol says exactly where the
/// payload is, so here it is decompressed once, as a stream, and the search stops at the marker.
public enum EmbeddedKernelConfig {
    static let startMarker = Array("IKCFG_ST".utf8)
    static let endMarker = Array("IKCFG_ED".utf8)
    /// Real configs compress to well under 100 KiB; past this the end marker is not coming.
    static let maximumCompressedSize = 4 << 20

    public enum Compression: String, Sendable {
        case gzip, xz, lzma, bzip2, lz4, zstd, lzo
    }

    /// The config embedded in a bzImage, or nil when the kernel was built without IKCONFIG.
    public static func read(bzImage path: String) throws -> String? {
        let file = try SharedFile.openRegular(path, what: "kernel image", followSymlinks: true)
        let payload = try Self.payload(of: file, path: path)
        guard let filter = payload.compression.filter else {
            throw UnsupportedError(
                "\(path) is compressed with \(payload.compression.rawValue), which gvlt cannot decompress to read its embedded config",
                hint: "pass the kernel's .config with --kernel-config FILE")
        }
        let reader = try ArchiveReader(
            format: .raw, filters: [filter],
            source: FileRangeSource(file: file, offset: payload.offset, length: payload.length),
            label: "the \(payload.compression.rawValue) payload of \(path)")
        guard try reader.nextHeader() != nil else { return nil }
        guard let compressed = try findConfig(in: EntryDataSource(reader: reader), what: path) else { return nil }
        return try gunzip(compressed, what: path)
    }

    /// The config inside an (uncompressed) `configs.ko`, or nil when it holds none.
    public static func read(module path: String) throws -> String? {
        let file = try SharedFile.openRegular(path, what: "kernel module", followSymlinks: true)
        guard let compressed = try findConfig(in: FileRangeSource(file: file, length: file.size), what: path) else {
            return nil
        }
        return try gunzip(compressed, what: path)
    }

    /// Where the compressed kernel sits in a bzImage (boot protocol 2.08+: `payload_offset` at 0x248
    /// and `payload_length` at 0x24C, counted from the end of the real-mode setup sectors), and how
    /// it is compressed, told by its magic bytes.
    static func payload(of file: SharedFile, path: String) throws -> (
        offset: Int64, length: Int64, compression: Compression
    ) {
        var header = [UInt8](repeating: 0, count: 0x250)
        let got = try header.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        guard got == header.count, Array(header[0x202..<0x206]) == Array("HdrS".utf8) else {
            throw InputError(
                "\(path) is not an x86 kernel image (no boot protocol header)",
                hint: "pass a bzImage/vmlinuz built for x86_64")
        }
        func u16(_ at: Int) -> Int { Int(header[at]) | Int(header[at + 1]) << 8 }
        func u32(_ at: Int) -> Int64 { Int64(u16(at)) | Int64(u16(at + 2)) << 16 }
        guard u16(0x206) >= 0x208 else {
            throw UnsupportedError(
                "\(path) uses boot protocol \(String(u16(0x206), radix: 16)), older than 2.08, which does not say where its payload is",
                hint: "pass the kernel's .config with --kernel-config FILE")
        }
        let setupSectors = header[0x1F1] == 0 ? 4 : Int64(header[0x1F1])
        let offset = (setupSectors + 1) * 512 + u32(0x248)
        var length = u32(0x24C)
        let size = file.size
        guard length > 8, offset + length <= size else {
            throw InputError(
                "\(path): its boot header puts the kernel payload at \(offset)+\(length), beyond the file's \(size) bytes",
                hint: "the kernel image is truncated or corrupt")
        }
        var magic = [UInt8](repeating: 0, count: 6)
        _ = try magic.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        let compression: Compression
        switch magic {
        case let m where m.starts(with: [0x1F, 0x8B]): compression = .gzip
        case let m where m.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]): compression = .xz
        case let m where m.starts(with: [0x28, 0xB5, 0x2F, 0xFD]): compression = .zstd
        case let m where m.starts(with: [0x02, 0x21, 0x4C, 0x18]): compression = .lz4
        case let m where m.starts(with: Array("BZh".utf8)): compression = .bzip2
        case let m where m.starts(with: [0x89, 0x4C, 0x5A, 0x4F]): compression = .lzo
        case let m where m.starts(with: [0x5D, 0x00, 0x00]): compression = .lzma
        default:
            throw InputError(
                "\(path): the kernel payload starts with bytes \(magic.hexString), which is no compression format a kernel uses",
                hint: "the kernel image is corrupt, or pass its .config with --kernel-config FILE")
        }
        // Every kernel compressor but gzip is followed by the 4-byte uncompressed size
        // (`size_append` in scripts/Makefile.lib), which the decompressors would take for garbage.
        if compression != .gzip { length -= 4 }
        return (offset, length, compression)
    }

    /// The bytes between the markers, read from a stream without holding it whole.
    static func findConfig(in source: ByteSource, what: String) throws -> [UInt8]? {
        var window: [UInt8] = []
        var collected: [UInt8]? = nil
        while true {
            let chunk = try source.nextChunk()
            guard chunk.count > 0 else { break }
            if collected == nil {
                // Keep the last marker-length-1 bytes so a marker split across chunks is still seen.
                window.append(contentsOf: chunk)
                if let at = window.firstOffset(of: startMarker) {
                    collected = Array(window[(at + startMarker.count)...])
                } else {
                    window.removeFirst(max(0, window.count - (startMarker.count - 1)))
                    continue
                }
            } else {
                collected!.append(contentsOf: chunk)
            }
            if let at = collected!.firstOffset(of: endMarker) { return Array(collected![..<at]) }
            if collected!.count > maximumCompressedSize {
                throw InputError(
                    "\(what): the embedded config starts (IKCFG_ST) but does not end within \(maximumCompressedSize >> 20) MiB",
                    hint: "the kernel image is corrupt, or pass its .config with --kernel-config FILE")
            }
        }
        if collected != nil {
            throw InputError(
                "\(what): the embedded config starts (IKCFG_ST) but never ends (IKCFG_ED)",
                hint: "the kernel image is truncated, or pass its .config with --kernel-config FILE")
        }
        return nil
    }

    static func gunzip(_ bytes: [UInt8], what: String) throws -> String {
        let reader = try ArchiveReader(
            format: .raw, filters: [.gzip], source: MemorySource(bytes), label: "the embedded config of \(what)")
        guard try reader.nextHeader() != nil else { return "" }
        var text: [UInt8] = []
        while let (block, _) = try reader.readBlock() { text.append(contentsOf: block) }
        guard text.starts(with: Array("#\n# Automatically generated file".utf8)) || text.contains(UInt8(ascii: "="))
        else {
            throw InputError(
                "\(what): the embedded config does not look like a kernel .config",
                hint: "pass the kernel's .config with --kernel-config FILE")
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension EmbeddedKernelConfig.Compression {
    var filter: ArchiveReader.Filter? {
        switch self {
        case .gzip: return .gzip
        case .xz: return .xz
        case .lzma: return .lzma
        case .bzip2: return .bzip2
        case .lz4: return .lz4
        case .zstd: return .zstd
        case .lzo: return nil  // libarchive reads lzop files only with liblzo2, which Debian's build lacks
        }
    }
}
