import Crypto
import Foundation

/// A pull stream of bytes fed to libarchive's read callback. A chunk stays valid until the next call.
/// An empty chunk means the end.
public protocol ByteSource: AnyObject {
    func nextChunk() throws -> UnsafeRawBufferPointer
}

/// A byte range of an open file, optionally hashed as it is read (a blob's digest is checked on the
/// same pass that decompresses it).
public final class FileRangeSource: ByteSource {
    private let file: SharedFile
    private var position: Int64
    private let end: Int64
    private let buffer: UnsafeMutableRawBufferPointer
    public private(set) var hasher: SHA256?
    /// Called with the number of bytes read so far, for progress bars.
    public var onProgress: ((Int64) -> Void)?
    private let start: Int64

    public init(file: SharedFile, offset: Int64 = 0, length: Int64, hashing: Bool = false, chunkSize: Int = 1 << 20) {
        self.file = file
        self.start = offset
        self.position = offset
        self.end = offset + length
        self.buffer = .allocate(byteCount: chunkSize, alignment: 16)
        self.hasher = hashing ? SHA256() : nil
    }

    deinit { buffer.deallocate() }

    public func nextChunk() throws -> UnsafeRawBufferPointer {
        guard position < end else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        // checked: at most buffer.count
        let want = Int(min(Int64(buffer.count), end - position))
        let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want])
        let got = try file.read(into: slice, at: position)
        guard got > 0 else {
            throw InputError(
                "\(file.displayName) ended early: expected \(end - start) bytes, found \(position - start)",
                hint: "the file is truncated; re-export or re-download it")
        }
        // checked: Int to Int64 widens
        position += Int64(got)
        let chunk = UnsafeRawBufferPointer(rebasing: slice[0..<got])
        hasher?.update(bufferPointer: chunk)
        onProgress?(position - start)
        return chunk
    }

    public func finalizeDigest() -> String? {
        hasher.map { "sha256:" + $0.finalize().hexString }
    }
}

/// Bytes already in memory, handed over in one chunk.
public final class MemorySource: ByteSource {
    // A copy we own, because a chunk must stay valid after nextChunk returns.
    private let storage: UnsafeMutableRawBufferPointer
    private var done = false

    public init(_ bytes: [UInt8]) {
        storage = .allocate(byteCount: bytes.count, alignment: 16)
        storage.copyBytes(from: bytes)
    }

    deinit { storage.deallocate() }

    public func nextChunk() throws -> UnsafeRawBufferPointer {
        guard !done, storage.count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        done = true
        return UnsafeRawBufferPointer(storage)
    }
}

/// The uncompressed bytes of a `raw`-format ArchiveReader, hashed on the way through: this is how a
/// layer's `diff_id` is checked without decompressing it twice.
public final class DecompressedSource: ByteSource {
    private let reader: ArchiveReader
    private var hasher = SHA256()
    public private(set) var byteCount: Int64 = 0
    /// Told of each chunk's size and the count so far; throwing stops the stream (a size bound).
    public var onBytes: ((Int64, Int64) throws -> Void)?

    public init(reader: ArchiveReader) throws {
        self.reader = reader
        guard try reader.nextHeader() != nil else {
            throw InputError(
                "\(reader.label): the stream is empty", hint: "a layer must hold a tar archive, at least its end marker"
            )
        }
    }

    public func nextChunk() throws -> UnsafeRawBufferPointer {
        guard let (block, _) = try reader.readBlock() else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        hasher.update(bufferPointer: block)
        // checked: block sizes, Int to Int64
        byteCount += Int64(block.count)
        try onBytes?(Int64(block.count), byteCount)
        return block
    }

    /// Reads whatever the tar reader left (end-of-archive padding) so the digest covers every byte.
    public func drainAndDigest() throws -> String {
        while try nextChunk().count > 0 {}
        return "sha256:" + hasher.finalize().hexString
    }
}

extension Sequence where Element == UInt8 {
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in self {
            // checked: UInt8 nibbles
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Digest {
    public var hexString: String { Array(self.makeIterator()).hexString }
}

/// The data of the current entry of an ArchiveReader, as a stream for another reader: an archive inside
/// an archive (a Debian package's `data.tar.xz` inside its `ar`) is read without a temp file.
public final class EntryDataSource: ByteSource {
    private let reader: ArchiveReader

    public init(reader: ArchiveReader) {
        self.reader = reader
    }

    public func nextChunk() throws -> UnsafeRawBufferPointer {
        try reader.readBlock()?.0 ?? UnsafeRawBufferPointer(start: nil, count: 0)
    }
}
