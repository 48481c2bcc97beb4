import CArchive
import CHost
import Crypto
import Foundation

/// Where an ArchiveWriter's bytes go: an open file, hashed and counted on the way.
///
/// Hashing runs on a second thread, a bounded number of chunks behind the writes, and writeback to
/// disk starts as data accumulates, so the final fsync of an atomic output waits only for the tail.
public final class FileSink {
    public let fd: Int32
    public private(set) var byteCount: Int64 = 0
    private var hasher = SHA256()
    private let displayName: String
    private let hashQueue = DispatchQueue(label: "gvlt.filesink.hash")
    private let pending = DispatchSemaphore(value: 8)
    private var flushedUpTo: Int64 = 0
    private static let writebackStep: Int64 = 32 << 20

    public init(fd: Int32, displayName: String) {
        self.fd = fd
        self.displayName = displayName
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot write", path: displayName, errno: errno)
            }
            done += n
        }
        let chunk = Data(buffer)
        pending.wait()
        hashQueue.async {
            self.hasher.update(data: chunk)
            self.pending.signal()
        }
        byteCount += Int64(buffer.count)
        if byteCount - flushedUpTo >= Self.writebackStep {
            // Only a hint to the kernel: failures (pipes, odd file systems) are harmless.
            _ = sync_file_range(fd, flushedUpTo, byteCount - flushedUpTo, 2)
            flushedUpTo = byteCount
        }
    }

    public func digest() -> String {
        hashQueue.sync { "sha256:" + hasher.finalize().hexString }
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
    private var finished = false

    public init(format: Format, filter: Filter = .none, sink: FileSink, label: String) throws {
        guard let handle = archive_write_new() else { throw InputError("libarchive: out of memory") }
        self.handle = handle
        self.label = label
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
        let status = archive_write_open(handle, clientPointer, nil, { _, client, buffer, length in
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
        ArchiveEntryCoding.fill(archiveEntry, from: entry)
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
    }

    private func failure(_ what: String) -> Error {
        if let error = client.error { return error }
        let text = archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
        return ArchiveFormatError(label: label, detail: "\(what): \(text)")
    }
}
