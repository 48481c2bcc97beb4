import Crypto
import Foundation

extension FileTree {
    /// sha256 of everything an image keeps of the tree: each entry's path, kind, permissions, owners,
    /// time, extended attributes and content (bytes, link target, device numbers), in listing order.
    /// Two trees with the same digest give the same image, so build caches key on it. Reads every
    /// file's bytes once, `jobs` files at a time.
    ///
    /// `fileDigest` replaces the sha256 of a file's bytes, for a writer that learns more from the
    /// same read (the SquashFS writer keys each block); it is called on `jobs` threads at once and must
    /// be collision-resistant over the bytes, as sha256 is.
    public func contentDigest(jobs: Int = 1, fileDigest: ((FileContent) throws -> [UInt8])? = nil) throws -> String {
        let entries = entries()
        let files = entries.indices.filter {
            if case .regularFile(let content) = entries[$0].kind { return content.size > 0 }
            return false
        }
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var next = 0
            var digests: [Int: [UInt8]] = [:]
            var error: Error?
        }
        let shared = Shared()
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, files.count))) { _ in
            while true {
                let taken: Int? = shared.lock.withLock {
                    guard shared.error == nil, shared.next < files.count else { return nil }
                    shared.next += 1
                    return files[shared.next - 1]
                }
                guard let index = taken, case .regularFile(let content) = entries[index].kind else { return }
                do {
                    let digest: [UInt8]
                    if let fileDigest {
                        digest = try fileDigest(content)
                    } else {
                        var fileHasher = SHA256()
                        try content.stream { fileHasher.update(bufferPointer: $0) }
                        digest = Array(fileHasher.finalize())
                    }
                    shared.lock.withLock { shared.digests[index] = digest }
                } catch {
                    shared.lock.withLock { shared.error = shared.error ?? error }
                }
            }
        }
        if let error = shared.error { throw error }
        var hasher = SHA256()
        func bytes(_ value: [UInt8]) {
            integer(UInt64(value.count))
            hasher.update(data: value)
        }
        func integer<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { hasher.update(bufferPointer: $0) }
        }
        bytes(Array("gvlt-tree-v2".utf8))
        for (index, entry) in entries.enumerated() {
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
                bytes(shared.digests[index] ?? [])
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
