import Foundation

/// Where a regular file's bytes live. Content is always a reference: a tree of a multi-gigabyte image
/// holds only offsets, and the bytes are streamed when the image is written.
public enum FileContent: Sendable {
    case empty
    /// A byte range of a file we hold open: a layer spool, an uncompressed blob, a member of an archive.
    case blobRange(file: SharedFile, offset: Int64, length: Int64)
    /// A file on the host (`--rootfs-dir`), read when the image is written. `identity` is the
    /// (device, inode) seen when the tree was scanned: if a parent directory is swapped for a symlink
    /// in between, the file opened then is another one, and the write fails instead of copying it.
    case hostFile(path: String, size: Int64, identity: FileIdentity)

    public var size: Int64 {
        switch self {
        case .empty: return 0
        case .blobRange(_, _, let length): return length
        case .hostFile(_, let size, _): return size
        }
    }

    /// Streams the content in chunks of at most `chunkSize` bytes. Fails if a host file changed size
    /// since it was listed, so an image never silently holds a truncated file.
    public func stream(chunkSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let range = try openRange() else { return }
        try Self.copy(from: range.file, offset: range.offset, length: range.length, chunkSize: chunkSize, body)
    }

    /// The open file and byte range holding the content, checked as `stream` checks it, for writers
    /// that read into buffers of their own. Nil for empty content.
    public func openRange() throws -> (file: SharedFile, offset: Int64, length: Int64)? {
        switch self {
        case .empty:
            return nil
        case .blobRange(let file, let offset, let length):
            return (file, offset, length)
        case .hostFile(let path, let size, let identity):
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw SystemError("cannot read", path: path, errno: errno) }
            let file = SharedFile(fd: fd, displayName: path)
            var st = stat()
            guard fstat(fd, &st) == 0, FileIdentity(st) == identity else {
                throw InputError(
                    "\(path) is no longer the file that was scanned (its path was replaced during the build)",
                    hint: "do not modify the rootfs directory during a build")
            }
            guard file.size == size else {
                throw InputError(
                    "\(path) changed size while the image was being written (\(size) -> \(file.size) bytes)",
                    hint: "do not modify the rootfs directory during a build")
            }
            return (file, 0, size)
        }
    }

    private static func copy(
        from file: SharedFile, offset: Int64, length: Int64, chunkSize: Int,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: min(chunkSize, max(Int(length), 1)), alignment: 16)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(buffer.count), length - done))
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want])
            let got = try file.read(into: slice, at: offset + done)
            guard got == want else {
                throw InputError(
                    "\(file.displayName) is shorter than expected (wanted \(length) bytes at offset \(offset))",
                    hint: "the input changed while gvlt was reading it")
            }
            try body(UnsafeRawBufferPointer(slice))
            done += Int64(got)
        }
    }
}

/// Which file a path named when it was scanned.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64

    public init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
