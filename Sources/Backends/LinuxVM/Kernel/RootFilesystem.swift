import Core

/// The root file system type of a Linux VM image, with what the kernel needs to mount it.
public enum RootFilesystem: Equatable, Sendable, CustomStringConvertible {
    case squashfs(SquashfsCompressor)
    case ext4

    public enum SquashfsCompressor: String, CaseIterable, Sendable {
        case gzip, xz, zstd, lz4, lzo

        /// The kernel option that lets squashfs read this compressor.
        var kernelOption: String {
            switch self {
            case .gzip: return "CONFIG_SQUASHFS_ZLIB"
            case .xz: return "CONFIG_SQUASHFS_XZ"
            case .zstd: return "CONFIG_SQUASHFS_ZSTD"
            case .lz4: return "CONFIG_SQUASHFS_LZ4"
            case .lzo: return "CONFIG_SQUASHFS_LZO"
            }
        }
    }

    public var description: String {
        switch self {
        case .squashfs(let compressor): return "squashfs (\(compressor.rawValue))"
        case .ext4: return "ext4"
        }
    }
}
