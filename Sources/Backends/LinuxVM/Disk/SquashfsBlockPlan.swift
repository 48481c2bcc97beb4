import Core
import Crypto
import Foundation

/// One read of the tree before a cached SquashFS build: its digest, which keys the whole root, and
/// on the way the key of every data block the writer will compress, so that blocks occurring more
/// than once are compressed once (`SquashfsBlockCache`).
///
/// A file of a block or more is written as its own blocks (its tail too, see `SquashfsWriter`), so
/// its blocks are known from its bytes alone; its digest is then the sha256 of its block keys, which
/// costs no second hash of the bytes. Smaller files share fragment blocks that depend on their
/// neighbours; they keep the sha256 of their bytes.
struct SquashfsBlockPlan {
    var treeDigest: String
    /// Keys of blocks that occur more than once, with how many copies follow the first.
    var repeated: [SquashfsBlockCache.Key: Int]

    init(_ tree: FileTree, blockSize: UInt32, keyPrefix: [UInt8], jobs: Int) throws {
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var keys: [SquashfsBlockCache.Key: Int] = [:]
        }
        let counts = Counts()
        let domain = Array("gvlt-squashfs-file-blocks-v1\0".utf8)
        treeDigest = try tree.contentDigest(jobs: jobs) { content in
            var file = SHA256()
            guard content.size >= Int64(blockSize) else {
                try content.stream { file.update(bufferPointer: $0) }
                return Array(file.finalize())
            }
            file.update(data: domain)
            var keys: [SquashfsBlockCache.Key] = []
            // One chunk per block: the writer cuts the file at the same offsets.
            try content.stream(chunkSize: Int(blockSize)) { block in
                let key = SquashfsBlockCache.key(of: block, prefix: keyPrefix)
                withUnsafeBytes(of: key) { file.update(bufferPointer: $0) }
                keys.append(key)
            }
            counts.lock.withLock {
                for key in keys { counts.keys[key, default: 0] += 1 }
            }
            return Array(file.finalize())
        }
        repeated = counts.keys.filter { $0.value > 1 }.mapValues { $0 - 1 }
    }
}
