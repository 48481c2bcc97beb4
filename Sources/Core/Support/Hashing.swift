import Crypto
import Foundation

/// sha256 of bytes and files, for backends that derive identifiers from content.
public enum SHA256Hex {
    public static func of(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hexString }

    public static func of(data: Data) -> String { SHA256.hash(data: data).hexString }

    /// Streams the file; never holds it in memory whole.
    public static func of(file path: String) throws -> String {
        let file = try SharedFile.openRegular(path, what: "file", followSymlinks: true)
        var hasher = SHA256()
        try FileContent.blobRange(file: file, offset: 0, length: file.size).stream { hasher.update(bufferPointer: $0) }
        return hasher.finalize().hexString
    }
}
