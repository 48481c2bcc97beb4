import CArchive
import CHost
import Crypto
import Foundation

/// Where an ArchiveWriter's bytes go: an open, seekable file, hashed and counted on the way.
///
/// Bytes are gathered into two 1 MiB buffers: while one fills, the other is written (on a writer
/// thread) and hashed (on a hash thread), so copying, hashing and disk I/O overlap. With `direct`,
/// full buffers bypass the page cache (O_DIRECT): on VM disks buffered writes of fresh pages are often
/// several times slower and much less predictable, and an image output is never read back by us.
/// File systems without O_DIRECT (tmpfs) silently get buffered writes.
public final class FileSink {
    public let fd: Int32
    public private(set) var byteCount: Int64 = 0
    private let displayName: String
    private var direct: Bool
    private let startOffset: Int64
    private var hasher = SHA256()
    private static let bufferSize = 1 << 20
    private var buffers: [UnsafeMutableRawBufferPointer] = []
    private let slotFree = [DispatchSemaphore(value: 1), DispatchSemaphore(value: 1)]
    private var current = 0
    private var used = 0
    private var submitted: Int64 = 0
    private let writerQueue = DispatchQueue(label: "gvlt.filesink.write")
    private let hashQueue = DispatchQueue(label: "gvlt.filesink.hash")
    private let errorLock = NSLock()
    private var writeError: Error?
    private var finished = false
    /// O_DIRECT, which the Glibc module does not export; its value depends on the architecture.
    #if arch(x86_64)
        private static let oDirect: Int32 = 0o40000
    #elseif arch(arm64)
        private static let oDirect: Int32 = 0o200000
    #else
        private static let oDirect: Int32 = 0
    #endif

    public init(fd: Int32, displayName: String, direct: Bool = false) {
        self.fd = fd
        self.displayName = displayName
        startOffset = Int64(lseek(fd, 0, SEEK_CUR))
        self.direct = direct && Self.oDirect != 0 && startOffset >= 0 && startOffset % Int64(Self.bufferSize) == 0
        if self.direct {
            let flags = fcntl(fd, F_GETFL)
            self.direct = flags >= 0 && fcntl(fd, F_SETFL, flags | Self.oDirect) == 0
        }
        for _ in 0..<2 {
            buffers.append(.allocate(byteCount: Self.bufferSize, alignment: 4096))
        }
        slotFree[0].wait()
    }

    deinit {
        if !finished {
            // Let queued work finish with the buffers before they go away.
            writerQueue.sync {}
            hashQueue.sync {}
            releaseSlot()
        }
        for buffer in buffers { buffer.deallocate() }
    }

    /// The slot being filled is held (its semaphore taken); libdispatch refuses to free a semaphore
    /// below its initial value, so it is given back once no more writes can come.
    private func releaseSlot() {
        slotFree[current].signal()
    }

    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        try checkError()
        var offset = 0
        while offset < chunk.count {
            let count = min(chunk.count - offset, Self.bufferSize - used)
            (buffers[current].baseAddress! + used).copyMemory(from: chunk.baseAddress! + offset, byteCount: count)
            used += count
            offset += count
            if used == Self.bufferSize { try submit() }
        }
        byteCount += Int64(chunk.count)
    }

    /// `count` zero bytes. Whole buffers of them are hashed and counted but not written, leaving a
    /// hole that `finish` closes by setting the file's size: a disk's empty tail costs no disk space
    /// and no I/O. A pipe gets them written.
    public func writeZeros(_ count: Int64) throws {
        var remaining = count
        func writeSome(_ n: Int64) throws {
            try write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(Self.zeroBlock)[0..<Int(n)]))
            remaining -= n
        }
        // Up to a buffer boundary with real zeros, so the hole starts where a write ends.
        if used > 0 && remaining > 0 { try writeSome(min(remaining, Int64(Self.bufferSize - used))) }
        while remaining >= Int64(Self.bufferSize) {
            guard startOffset >= 0 else {
                try writeSome(Int64(Self.bufferSize))
                continue
            }
            nonisolated(unsafe) let zeros = UnsafeRawBufferPointer(Self.zeroBlock)
            hashQueue.async { [self] in hasher.update(bufferPointer: zeros) }
            submitted += Int64(Self.bufferSize)
            byteCount += Int64(Self.bufferSize)
            remaining -= Int64(Self.bufferSize)
        }
        if remaining > 0 { try writeSome(remaining) }
    }

    nonisolated(unsafe) private static let zeroBlock: UnsafeMutableRawBufferPointer = {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        block.initializeMemory(as: UInt8.self, repeating: 0)
        return block
    }()

    /// Writes and hashes the current buffer in the background, then switches to the other one.
    private func submit() throws {
        let slot = current
        nonisolated(unsafe) let buffer = UnsafeRawBufferPointer(rebasing: buffers[slot][0..<used])
        let position = startOffset < 0 ? -1 : startOffset + submitted
        submitted += Int64(used)
        let group = DispatchGroup()
        writerQueue.async(group: group) { [self] in
            do {
                try Self.writeAll(fd, buffer, at: position, displayName: displayName)
                if !direct && position >= 0 {
                    // Only a hint to start writeback, so a final fsync waits for the tail alone.
                    _ = sync_file_range(fd, position, Int64(buffer.count), 2)
                }
            } catch {
                errorLock.withLock { writeError = writeError ?? error }
            }
        }
        hashQueue.async(group: group) { [self] in hasher.update(bufferPointer: buffer) }
        group.notify(queue: .global()) { [slotFree] in slotFree[slot].signal() }
        current ^= 1
        used = 0
        slotFree[current].wait()
        try checkError()
    }

    /// Writes what is left (the tail goes through the page cache: O_DIRECT needs whole blocks).
    public func finish() throws {
        guard !finished else { return }
        if used > 0 {
            if direct {
                writerQueue.sync {}
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags & ~Self.oDirect)
                direct = false
            }
            try submit()
        }
        writerQueue.sync {}
        hashQueue.sync {}
        finished = true
        releaseSlot()
        try checkError()
        // A trailing hole from writeZeros is not in the file until its size says so. Only a regular
        // file has a size to set: /dev/null and block devices are seekable too.
        if startOffset >= 0 {
            var info = stat()
            if fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
                && Int64(info.st_size) < startOffset + byteCount
                && ftruncate(fd, off_t(startOffset + byteCount)) != 0
            {
                throw SystemError("cannot set the size of", path: displayName, errno: errno)
            }
        }
    }

    /// The sha256 of everything written. Call `finish` first to see write errors; this finishes too.
    public func digest() -> String {
        try? finish()
        return hashQueue.sync { "sha256:" + hasher.finalize().hexString }
    }

    private func checkError() throws {
        if let error = errorLock.withLock({ writeError }) { throw error }
    }

    private static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int64, displayName: String)
        throws
    {
        var done = 0
        while done < buffer.count {
            // Pipes (a tar streamed into tar2sqfs) cannot seek; writes are in order anyway.
            let n =
                offset < 0
                ? Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                : pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot write", path: displayName, errno: errno)
            }
            done += n
        }
    }
}

/// A thin wrapper over a libarchive write handle. Output is deterministic: no timestamps of our own,
/// numeric owners only, entries in the order given.
public final class ArchiveWriter {
    public enum Format {
        /// POSIX pax: exact owners, nanosecond mtimes, xattrs, long names.
        case pax
        /// cpio "newc", the initramfs format.
        case cpioNewc
    }

    public enum Filter {
        case none, gzip(level: Int), zstd(level: Int)
    }

    final class Client {
        let sink: FileSink
        var error: Error?
        init(sink: FileSink) { self.sink = sink }
    }

    let handle: OpaquePointer
    private let client: Client
    private let clientPointer: UnsafeMutableRawPointer
    private let label: String
    private let format: Format
    private var finished = false

    public init(format: Format, filter: Filter = .none, sink: FileSink, label: String) throws {
        _ = ArchiveLocale.ensureUTF8
        guard let handle = archive_write_new() else { throw InputError("libarchive: out of memory") }
        self.handle = handle
        self.label = label
        self.format = format
        client = Client(sink: sink)
        clientPointer = Unmanaged.passRetained(client).toOpaque()
        switch format {
        case .pax: archive_write_set_format_pax(handle)
        case .cpioNewc: archive_write_set_format_cpio_newc(handle)
        }
        switch filter {
        case .none:
            archive_write_add_filter_none(handle)
        case .gzip(let level):
            archive_write_add_filter_gzip(handle)
            archive_write_set_filter_option(handle, "gzip", "compression-level", "\(level)")
            // A gzip header timestamp would make every run's bytes differ.
            archive_write_set_filter_option(handle, "gzip", "timestamp", nil)
        case .zstd(let level):
            archive_write_add_filter_zstd(handle)
            archive_write_set_filter_option(handle, "zstd", "compression-level", "\(level)")
        }
        // Large blocks mean few write calls; the last block is padded to whole 512-byte records only,
        // so the bytes are the same whatever the block size.
        archive_write_set_bytes_per_block(handle, 1 << 20)
        archive_write_set_bytes_in_last_block(handle, 1)
        let status = archive_write_open(
            handle, clientPointer, nil,
            { _, client, buffer, length in
                let box = Unmanaged<Client>.fromOpaque(client!).takeUnretainedValue()
                do {
                    try box.sink.write(UnsafeRawBufferPointer(start: buffer, count: length))
                    return la_ssize_t(length)
                } catch {
                    box.error = box.error ?? error
                    return -1
                }
            }, nil)
        if status != ARCHIVE_OK { throw failure("cannot start writing") }
    }

    deinit {
        archive_write_free(handle)
        Unmanaged<Client>.fromOpaque(clientPointer).release()
    }

    /// Writes the header of `entry`; for a regular file, follow with exactly its size in `writeData`.
    public func writeHeader(_ entry: FileEntry) throws {
        let archiveEntry = archive_entry_new()!
        defer { archive_entry_free(archiveEntry) }
        // cpio names carry no trailing slash (the kernel's unpacker takes names as given).
        ArchiveEntryCoding.fill(archiveEntry, from: entry, directorySlash: format == .pax)
        let status = archive_write_header(handle, archiveEntry)
        if status != ARCHIVE_OK { throw failure("cannot write entry \(entry.path.isEmpty ? "." : entry.path)") }
    }

    public func writeData(_ buffer: UnsafeRawBufferPointer) throws {
        guard buffer.count > 0 else { return }
        let written = archive_write_data(handle, buffer.baseAddress, buffer.count)
        if written != buffer.count { throw failure("cannot write data") }
    }

    /// Writes a whole entry, streaming a regular file's content.
    public func write(_ entry: FileEntry) throws {
        try writeHeader(entry)
        if case .regularFile(let content) = entry.kind {
            try content.stream { try writeData($0) }
        }
    }

    /// Writes the end-of-archive marker and flushes. Without it the archive is incomplete.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        if archive_write_close(handle) != ARCHIVE_OK { throw failure("cannot finish") }
        try client.sink.finish()
    }

    private func failure(_ what: String) -> Error {
        if let error = client.error { return error }
        let text = archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
        return ArchiveFormatError(label: label, detail: "\(what): \(text)")
    }
}
