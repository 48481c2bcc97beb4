import Crypto
import Foundation

extension FileTree {
    /// sha256 of everything an image keeps of the tree: each entry's path, kind, permissions, owners,
    /// time, extended attributes and content (bytes, link target, device numbers), in listing order.
    /// Two trees with the same digest give the same image, so build caches key on it. Reads every
    /// file's bytes once.
    public func contentDigest() throws -> String {
        var hasher = SHA256()
        func bytes(_ value: [UInt8]) {
            integer(UInt64(value.count))
            hasher.update(data: value)
        }
        func integer<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { hasher.update(bufferPointer: $0) }
        }
        bytes(Array("gvlt-tree-v1".utf8))
        for entry in entries() {
            bytes(Array(entry.path.utf8))
            let metadata = entry.metadata
            integer(metadata.permissions)
            integer(metadata.uid)
            integer(metadata.gid)
            integer(metadata.mtime.seconds)
            integer(metadata.mtime.nanoseconds)
            integer(UInt64(metadata.xattrs.count))
            for (key, value) in metadata.xattrs.sorted(by: { $0.key < $1.key }) {
                bytes(Array(key.utf8))
                bytes(value)
            }
            bytes(Array(entry.kind.name.utf8))
            switch entry.kind {
            case .directory, .fifo, .socket:
                break
            case .regularFile(let content):
                integer(content.size)
                try content.stream { hasher.update(bufferPointer: $0) }
            case .symlink(let target), .hardlink(let target):
                bytes(Array(target.utf8))
            case .characterDevice(let major, let minor), .blockDevice(let major, let minor):
                integer(major)
                integer(minor)
            }
        }
        return hasher.finalize().hexString
    }
}
