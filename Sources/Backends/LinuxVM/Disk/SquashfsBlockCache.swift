import CSquashfs
import Core
import Crypto
import Foundation

/// Compressed SquashFS blocks by content: the same input block, compressor configuration and
/// compression libraries always give the same output block, so a rebuild compresses only the
/// blocks that changed. A hit changes the time a build takes, never its bytes.
///
/// The blocks are not copied anywhere: they are the cached roots' own (in the disk images they
/// went into, where the entry is one). Each root entry carries an index (`blocks.idx`) from every
/// block's key (sha256 of the compressor's configuration, the libraries and the block's bytes) to
/// where its compressed bytes sit in that root and their sha256. So a cold build writes nothing but its root and a small index, and a block is read back
/// only when its digest matches; one that does not (a damaged root) is compressed again, never used.
///
/// Blocks that occur more than once in the tree being built (identical files: a library installed
/// twice, one changelog in several packages' docs) are compressed once: `SquashfsBlockPlan` finds
/// them before the build, and the first one's output is kept in memory until its last copy is made.
///
/// libsquashfs calls in from its threads; the lookup table is read-only while blocks are compressed,
/// and what is recorded for the new index, and the repeated blocks, are guarded by a lock.
final class SquashfsBlockCache: @unchecked Sendable {
    static let indexName = "blocks.idx"
    private static let magic = Array("GVLTBIX1".utf8)
    /// key, offset (UInt64), stored size (UInt32), result (Int32), sha256 of the stored bytes.
    private static let recordSize = 32 + 8 + 4 + 4 + 32

    struct Key: Hashable {
        var a, b, c, d: UInt64
        init(_ bytes: UnsafeRawBufferPointer) {
            a = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
            b = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            c = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
            d = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        }
        var bytes: [UInt8] { withUnsafeBytes(of: (a, b, c, d)) { Array($0) } }
    }

    /// A block in some cached root: which file, where, and what the compressor returned for it (0
    /// when the block did not shrink and is stored as it is: then nothing needs reading).
    struct Stored {
        var root: Int32
        var offset: UInt64
        var result: Int32
        var digest: [UInt8]
    }

    /// A block of this build, from its compression to its place in the file.
    private struct Produced {
        var key: Key
        var result: Int32
        var digest: [UInt8]
        /// What goes to the file: the compressed bytes, or the input when it did not shrink. Kept
        /// only until the block is written: holding every block's bytes to the end of a build cost
        /// a cold build a copy of the whole root in memory (0.9 s of page faults for 160 MB).
        var bytes: [UInt8]
        var record: Record { Record(key: key, result: result, digest: digest, size: bytes.count) }
    }

    /// What the index keeps of a written block.
    private struct Record {
        var key: Key
        var result: Int32
        var digest: [UInt8]
        var size: Int
    }

    /// What the new root's index needs of one block that went to the file.
    private struct Written {
        var user: UInt32
        var isFragmentBlock: Bool
        var produced: Record?
    }

    /// sha256 of what makes a block's output differ besides its bytes: the compressor's
    /// configuration and the libraries that compress.
    private let keyPrefix: [UInt8]
    private var known: [Key: Stored] = [:]
    /// The cached roots: each one's file, and where in it the root starts.
    private var roots: [(file: SharedFile, start: Int64)] = []
    private let lock = NSLock()
    private var pending: [Produced] = []
    private var written: [Written] = []
    private var damaged = 0
    private var unreadableIndexes = 0
    /// Guards the four below, and wakes threads waiting for a repeated block.
    private let repeats = NSCondition()
    /// Blocks of this build that occur again later in it: how many copies are still to come.
    private var repeated: [Key: Int]
    /// Repeated blocks being compressed now, by the thread that missed them first.
    private var compressing: Set<Key> = []
    /// The output of a repeated block, from its first compression until its last copy.
    private var repeatedOutput: [Key: (result: Int32, bytes: [UInt8])] = [:]
    private var repeatedBytes = 0
    /// What the repeated blocks may hold at once; past it a copy is compressed again. Identical files
    /// are a small part of a root, so this is reached only by a tree made mostly of copies.
    static let repeatedLimit = 256 << 20

    /// What goes before a block's bytes in its key.
    static func keyPrefix(compressorConfiguration: [UInt8], toolVersion: String) -> [UInt8] {
        Array(
            SHA256.hash(
                data: Array("gvlt-squashfs-block-v1\0".utf8) + compressorConfiguration + Array(toolVersion.utf8)))
    }

    static func key(of block: UnsafeRawBufferPointer, prefix: [UInt8]) -> Key {
        var hasher = SHA256()
        hasher.update(data: prefix)
        hasher.update(bufferPointer: block)
        return hasher.finalize().withUnsafeBytes { Key($0) }
    }

    /// Reads the indexes of the roots in `entries` (entry directories of the root cache), newest
    /// first. `repeated` is `SquashfsBlockPlan.repeated` for the tree about to be written.
    init(keyPrefix: [UInt8], entries: [String], repeated: [Key: Int] = [:]) {
        self.keyPrefix = keyPrefix
        self.repeated = repeated
        for entry in entries {
            guard let records = Self.readIndex(entry + "/" + Self.indexName) else {
                if FileManager.default.fileExists(atPath: entry + "/" + Self.indexName) { unreadableIndexes += 1 }
                continue
            }
            guard !records.isEmpty,
                let file = try? SharedFile.openRegular(entry + "/root.fs", what: "cached root", followSymlinks: false),
                let range = BuildFileCache.range(of: entry, fileSize: file.size)
            else { continue }
            let root = Int32(roots.count)
            roots.append((file, range.offset))
            for (key, var stored) in records where known[key] == nil {
                // checked: range sizes are positive Int64s; offsets are at most Int64.max (readIndex)
                guard stored.result == 0 || stored.offset + UInt64(stored.result) <= UInt64(range.size) else {
                    continue
                }
                stored.root = root
                known[key] = stored
            }
        }
    }

    /// Blocks found damaged (and compressed again), and indexes that could not be read.
    var problems: (damaged: Int, unreadableIndexes: Int) { lock.withLock { (damaged, unreadableIndexes) } }
    var knownBlocks: Int { known.count }

    func key(of block: UnsafeRawBufferPointer) -> Key { Self.key(of: block, prefix: keyPrefix) }

    /// The stored result for `key`, its bytes copied into `out`, or nil: from a cached root, or from
    /// an earlier copy of the block in this build. Bytes that are not the ones indexed (a damaged
    /// root) are a miss.
    func lookup(_ key: Key, into out: UnsafeMutableRawBufferPointer) -> Int32? {
        if let stored = known[key] {
            if stored.result == 0 { return 0 }
            // checked: readIndex keeps results within 0...1 MiB
            guard Int(stored.result) <= out.count else { return nil }
            let payload = UnsafeMutableRawBufferPointer(rebasing: out[0..<Int(stored.result)])
            // checked: root indexes come from this cache's list, and offsets lie within their root (init)
            let root = roots[Int(stored.root)]
            if (try? root.file.read(into: payload, at: root.start + Int64(stored.offset))) == payload.count,
                Array(SHA256.hash(data: UnsafeRawBufferPointer(payload))) == stored.digest
            {
                return stored.result
            }
            lock.withLock { damaged += 1 }
        }
        // A repeated block that another thread is compressing now is waited for: copies of one
        // file are often in the queue together, and a copy taken from the cache is quick, so the next
        // copy is reached well before the first one is compressed.
        repeats.lock()
        defer { repeats.unlock() }
        guard (repeated[key] ?? 0) > 0 else { return nil }
        while true {
            if let output = repeatedOutput[key] {
                guard output.bytes.count <= out.count else { return nil }
                output.bytes.withUnsafeBytes { out.copyMemory(from: $0) }
                repeated[key] = (repeated[key] ?? 1) - 1
                if repeated[key]! <= 0 {
                    repeatedOutput[key] = nil
                    repeatedBytes -= output.bytes.count
                }
                return output.result
            }
            guard compressing.contains(key) else { break }
            repeats.wait()
        }
        compressing.insert(key)
        return nil
    }

    /// After a block's lookup: `result` is what the cache or the compressor gave (below 0: the
    /// compressor failed, and the build with it).
    func produced(_ key: Key, input: UnsafeRawBufferPointer, output: UnsafeRawBufferPointer, result: Int32, hit: Bool) {
        if !hit { keepIfRepeated(key, output: output, result: result) }
        guard result >= 0 else { return }
        // checked: result is at least 0 here and at most the block size
        let bytes = result > 0 ? Array(output.prefix(Int(result))) : Array(input)
        // A hit from a cached root was checked against the digest its index holds for the bytes.
        let indexed = hit ? known[key]?.digest : nil
        let digest = result == 0 ? [] : indexed ?? Array(SHA256.hash(data: bytes))
        lock.withLock {
            pending.append(Produced(key: key, result: result, digest: digest, bytes: bytes))
            // Every produced block is written soon after (the processor keeps a bounded backlog);
            // this only bounds memory should libsquashfs ever drop one.
            if pending.count > 4096 { pending.removeFirst(pending.count - 4096) }
        }
    }

    /// A repeated block this thread compressed: its output is kept for the copies still to come,
    /// and threads waiting for it go on.
    private func keepIfRepeated(_ key: Key, output: UnsafeRawBufferPointer, result: Int32) {
        repeats.lock()
        defer { repeats.unlock() }
        guard compressing.remove(key) != nil else { return }
        defer { repeats.broadcast() }
        // checked: results are at most the block size
        let size = max(0, Int(result))
        guard result >= 0, let left = repeated[key], left > 0, repeatedOutput[key] == nil,
            repeatedBytes + size <= Self.repeatedLimit
        else { return }
        // A block that did not shrink (0) is stored as it is: there is nothing to keep but the 0.
        repeatedOutput[key] = (result, Array(output.prefix(size)))
        repeatedBytes += size
    }

    func written(user: UInt32, flags: UInt32, data: UnsafeRawBufferPointer) {
        let isFragmentBlock = flags & 0x4000 != 0  // SQFS_BLK_FRAGMENT_BLOCK
        lock.withLock {
            let match = pending.firstIndex { candidate in
                candidate.bytes.count == data.count
                    && candidate.bytes.withUnsafeBytes { memcmp($0.baseAddress!, data.baseAddress!, data.count) == 0 }
            }
            written.append(
                Written(
                    user: user, isFragmentBlock: isFragmentBlock, produced: match.map { pending.remove(at: $0).record })
            )
        }
    }

    /// The new root's index: every block written, where it ended up (the files' block lists and the
    /// fragment table, read once the data is finished, so a block the block writer deduplicated
    /// points at the copy that stays), with a digest of the whole index at the end.
    func index(writer: OpaquePointer) -> Data {
        var records: [(Key, UInt64, Int32, [UInt8])] = []
        var perFile: [UInt32: [Written]] = [:]
        var fragmentBlocks: [Written] = []
        for block in lock.withLock({ written }) {
            if block.isFragmentBlock {
                fragmentBlocks.append(block)
            } else if block.user > 0 {
                perFile[block.user, default: []].append(block)
            }
        }
        for (user, blocks) in perFile {
            var start: UInt64 = 0
            var count: UInt32 = 0
            guard gvlt_sqfs_writer_file_blocks(writer, user - 1, &start, nil, &count) == 0 else { continue }
            // checked: a UInt32 count fits Int
            var sizes = [UInt32](repeating: 0, count: Int(count))
            guard gvlt_sqfs_writer_file_blocks(writer, user - 1, &start, &sizes, &count) == 0 else { continue }
            var offset = start
            var next = blocks.makeIterator()
            for word in sizes {
                let onDisk = UInt64(word & 0xFF_FFFF)
                // Sparse blocks take no room and were never written.
                guard onDisk > 0 else { continue }
                guard let block = next.next() else { break }
                // checked: 24 bits
                if let produced = block.produced, produced.size == Int(onDisk) {
                    records.append((produced.key, offset, produced.result, produced.digest))
                }
                offset += onDisk
            }
        }
        for (index, block) in fragmentBlocks.enumerated() {
            var start: UInt64 = 0
            var size: UInt32 = 0
            guard let produced = block.produced,
                gvlt_sqfs_writer_fragment(writer, UInt32(index), &start, &size) == 0,
                // checked: 24 bits
                Int(size & 0xFF_FFFF) == produced.size
            else { continue }
            records.append((produced.key, start, produced.result, produced.digest))
        }
        records.sort { $0.1 < $1.1 }
        var data = Data(Self.magic)
        data.reserveCapacity(Self.magic.count + 4 + records.count * Self.recordSize + 32)
        withUnsafeBytes(of: UInt32(records.count).littleEndian) { data.append(contentsOf: $0) }
        for (key, offset, result, digest) in records {
            data.append(contentsOf: key.bytes)
            withUnsafeBytes(of: offset.littleEndian) { data.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(max(result, 0)).littleEndian) { data.append(contentsOf: $0) }
            withUnsafeBytes(of: result.littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: digest.count == 32 ? digest : [UInt8](repeating: 0, count: 32))
        }
        data.append(contentsOf: SHA256.hash(data: data))
        return data
    }

    /// An index's records, or nil when it is not exactly what `index` wrote (its digest says so).
    static func readIndex(_ path: String) -> [(Key, Stored)]? {
        guard let data = try? ConfigFile.read(path, what: "block index \(path)", hint: "", limit: 1 << 30),
            data.count >= magic.count + 4 + 32, Array(data.prefix(magic.count)) == magic,
            Array(SHA256.hash(data: data.dropLast(32))) == Array(data.suffix(32))
        else { return nil }
        return data.withUnsafeBytes { raw -> [(Key, Stored)]? in
            // checked: a UInt32 fits Int
            let count = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: magic.count, as: UInt32.self)))
            guard count <= (data.count - magic.count - 4 - 32) / recordSize,
                magic.count + 4 + count * recordSize + 32 == data.count
            else { return nil }
            var records: [(Key, Stored)] = []
            records.reserveCapacity(count)
            for index in 0..<count {
                let base = magic.count + 4 + index * recordSize
                let key = Key(UnsafeRawBufferPointer(rebasing: raw[base..<base + 32]))
                let offset = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: base + 32, as: UInt64.self))
                let size = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: base + 40, as: UInt32.self))
                let result = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: base + 44, as: Int32.self))
                // Range-checked: a result is a block's compressed size, at most a block (1 MiB).
                guard result >= 0, result <= 1 << 20, size == UInt32(result), offset <= UInt64(Int64.max) else {
                    return nil
                }
                let digest = Array(raw[base + 48..<base + 80])
                records.append((key, Stored(root: 0, offset: offset, result: result, digest: digest)))
            }
            return records
        }
    }

    /// What libsquashfs calls, on its threads.
    var callbacks: gvlt_sqfs_block_cache {
        gvlt_sqfs_block_cache(
            context: Unmanaged.passUnretained(self).toOpaque(),
            lookup: { context, input, size, key, out, outsize, result in
                let cache = Unmanaged<SquashfsBlockCache>.fromOpaque(context!).takeUnretainedValue()
                // checked: UInt32 sizes fit Int
                let found = cache.key(of: UnsafeRawBufferPointer(start: input, count: Int(size)))
                withUnsafeBytes(of: found) { key!.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: 32) }
                // checked: UInt32 sizes fit Int
                guard
                    let stored = cache.lookup(
                        found, into: UnsafeMutableRawBufferPointer(start: out, count: Int(outsize)))
                else { return 0 }
                result!.pointee = stored
                return 1
            },
            produced: { context, key, input, size, out, result, hit in
                let cache = Unmanaged<SquashfsBlockCache>.fromOpaque(context!).takeUnretainedValue()
                // checked: UInt32 sizes fit Int, and results are at least 0
                let (inputCount, outputCount) = (Int(size), Int(max(result, 0)))
                cache.produced(
                    Key(UnsafeRawBufferPointer(start: key, count: 32)),
                    input: UnsafeRawBufferPointer(start: input, count: inputCount),
                    output: UnsafeRawBufferPointer(start: out, count: outputCount), result: result, hit: hit != 0)
            },
            written: { context, user, flags, data, size in
                let cache = Unmanaged<SquashfsBlockCache>.fromOpaque(context!).takeUnretainedValue()
                // checked: UInt32 sizes fit Int
                cache.written(user: user, flags: flags, data: UnsafeRawBufferPointer(start: data, count: Int(size)))
            })
    }
}
