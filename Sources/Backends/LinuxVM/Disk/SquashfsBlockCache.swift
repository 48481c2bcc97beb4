import CSquashfs
import Core
import Crypto
import Foundation

/// Compressed SquashFS blocks by content: the same input block, compressor configuration and
/// compression libraries always give the same output block, so a rebuild compresses only the
/// blocks that changed. A hit changes the time a build takes, never its bytes.
///
/// Each entry is a file `CACHE/squashfs-blocks/XX/KEY`, written aside and renamed into place, that
/// carries the sha256 of its own payload: a damaged entry is found when it is read, removed and
/// rebuilt, never used. An entry's mtime is its last use, which `CachePruning` evicts by.
///
/// The block processor asks from its worker threads, so everything here is thread-safe: the state
/// is immutable but for the counts, which a lock guards.
final class SquashfsBlockCache: @unchecked Sendable {
    static let area = "squashfs-blocks"
    private static let magic = Array("GVLTSQB1".utf8)
    /// magic, result (Int32), payload length (UInt32), the key, sha256 of the payload.
    private static let headerSize = 8 + 4 + 4 + 32 + 32

    let directory: String
    /// sha256 of what makes a block's output differ besides its bytes: the compressor's
    /// configuration and the libraries that compress.
    private let keyPrefix: [UInt8]
    private let lock = NSLock()
    private var damaged = 0
    private var unwritable = 0
    private var sequence = 0

    init(cache: CacheDirectory, compressorConfiguration: [UInt8], toolVersion: String) {
        directory = cache.root + "/" + Self.area
        keyPrefix = Array(
            SHA256.hash(
                data: Array("gvlt-squashfs-block-v1\0".utf8) + compressorConfiguration
                    + Array(toolVersion.utf8)))
    }

    /// Entries found damaged (and removed) and stores that failed, so far.
    var problems: (damaged: Int, unwritable: Int) { lock.withLock { (damaged, unwritable) } }

    func key(of block: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: keyPrefix)
        hasher.update(bufferPointer: block)
        return Array(hasher.finalize())
    }

    func path(of key: [UInt8]) -> String {
        let hex = key.hexString
        return "\(directory)/\(hex.prefix(2))/\(hex)"
    }

    /// The stored result for `key`, copied into `out`, or nil. An entry that is not exactly what was
    /// stored is removed.
    func lookup(key: [UInt8], into out: UnsafeMutableRawBufferPointer) -> Int32? {
        let path = path(of: key)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
            header.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, 0) }) == Self.headerSize
        else { return discard(path) }
        let result = header.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: Int32.self)) }
        let length = header.withUnsafeBytes {
            UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        }
        // The compressor reports a block that does not shrink as 0, with nothing to store.
        guard Array(header[0..<8]) == Self.magic, Array(header[16..<48]) == key, result >= 0,
            UInt32(result) == length, Int(length) <= out.count,
            Int64(st.st_size) == Int64(Self.headerSize) + Int64(length)
        else { return discard(path) }
        let payload = UnsafeMutableRawBufferPointer(rebasing: out[0..<Int(length)])
        guard length == 0 || pread(fd, payload.baseAddress, payload.count, off_t(Self.headerSize)) == payload.count,
            Array(SHA256.hash(data: UnsafeRawBufferPointer(payload))) == Array(header[48..<80])
        else { return discard(path) }
        // Marks the entry used, for least-recently-used eviction.
        _ = futimens(fd, nil)
        return result
    }

    func store(key: [UInt8], result: Int32, payload: UnsafeRawBufferPointer) {
        guard result >= 0, Int(result) == payload.count else { return }
        let path = path(of: key)
        var bytes = Self.magic
        bytes.reserveCapacity(Self.headerSize + payload.count)
        withUnsafeBytes(of: result.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { bytes += $0 }
        bytes += key
        bytes += Array(SHA256.hash(data: payload))
        bytes += payload
        let n = lock.withLock { () -> Int in
            sequence += 1
            return sequence
        }
        let temporary = "\(directory)/tmp/\(getpid())-\(n)"
        for attempt in 0..<2 {
            if Self.write(bytes, to: temporary), rename(temporary, path) == 0 { return }
            unlink(temporary)
            guard attempt == 0, errno == ENOENT else { break }
            // The first store into a fresh cache (or a shard) makes its directory.
            try? FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
            try? FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        }
        lock.withLock { unwritable += 1 }
    }

    private static func write(_ bytes: [UInt8], to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let wrote = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if wrote < 0 && errno == EINTR { continue }
                guard wrote > 0 else { return false }
                done += wrote
            }
            return true
        }
    }

    private func discard(_ path: String) -> Int32? {
        if unlink(path) == 0 { lock.withLock { damaged += 1 } }
        return nil
    }

    /// What libsquashfs calls, on its worker threads.
    var callbacks: gvlt_sqfs_block_cache {
        gvlt_sqfs_block_cache(
            context: Unmanaged.passUnretained(self).toOpaque(),
            lookup: { context, input, size, key, out, outsize, result in
                let cache = Unmanaged<SquashfsBlockCache>.fromOpaque(context!).takeUnretainedValue()
                let digest = cache.key(of: UnsafeRawBufferPointer(start: input, count: Int(size)))
                digest.withUnsafeBytes { key!.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: 32) }
                guard
                    let found = cache.lookup(
                        key: digest, into: UnsafeMutableRawBufferPointer(start: out, count: Int(outsize)))
                else { return 0 }
                result!.pointee = found
                return 1
            },
            store: { context, key, out, result in
                let cache = Unmanaged<SquashfsBlockCache>.fromOpaque(context!).takeUnretainedValue()
                cache.store(
                    key: Array(UnsafeBufferPointer(start: key, count: 32)), result: result,
                    payload: UnsafeRawBufferPointer(start: out, count: Int(max(result, 0))))
            })
    }
}
