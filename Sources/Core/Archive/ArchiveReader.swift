import CArchive
import Foundation

/// A thin wrapper over a libarchive read handle fed from a `ByteSource`.
///
/// Every status other than OK is an error: libarchive reports malformed tar and PAX headers as
/// warnings and carries on, and an image builder must not.
public final class ArchiveReader {
    public enum Format {
        /// tar in all its dialects (ustar, pax, GNU).
        case tar
        /// One entry holding the whole (decompressed) stream.
        case raw
        /// Unix `ar` archives, e.g. the outer layer of a Debian package.
        case ar
        /// cpio archives (initramfs).
        case cpio
    }

    public enum Filter {
        case gzip, zstd, xz
        /// Kernel payloads come in these too (bzImage `KERNEL_BZIP2`/`LZMA`/`LZ4`).
        case bzip2, lzma, lz4
    }

    /// Holds the source and the first error it threw; libarchive only sees "-1".
    final class Client {
        let source: ByteSource
        var error: Error?
        init(source: ByteSource) { self.source = source }
    }

    let handle: OpaquePointer
    private let client: Client
    /// For tar: the header bytes of the entry being parsed (see `TarHeaderAudit`).
    private let headerWindow: TarHeaderWindow?
    private var entryOpen = false
    /// The current entry's names as its PAX records or GNU long-name blocks spell them, byte for byte.
    public private(set) var rawNames = TarRawNames()
    private let clientPointer: UnsafeMutableRawPointer
    /// For error messages: what is being read ("layer sha256:ab12…").
    public let label: String

    public init(format: Format, filters: [Filter] = [], source: ByteSource, label: String) throws {
        _ = ArchiveLocale.ensureUTF8
        guard let handle = archive_read_new() else { throw InputError("libarchive: out of memory") }
        self.handle = handle
        self.label = label
        // Only an unfiltered reader's consumed count is in the window's bytes; layers are decompressed
        // by a `raw` reader in front of the tar one for this reason.
        if case .tar = format, filters.isEmpty {
            let window = TarHeaderWindow(inner: source, label: label)
            window.consumed = { archive_filter_bytes(handle, 0) }
            self.headerWindow = window
            self.client = Client(source: window)
        } else {
            self.headerWindow = nil
            self.client = Client(source: source)
        }
        self.clientPointer = Unmanaged.passRetained(client).toOpaque()
        switch format {
        case .tar:
            archive_read_support_format_tar(handle)
        case .raw:
            archive_read_support_format_raw(handle)
        case .ar:
            archive_read_support_format_ar(handle)
        case .cpio:
            archive_read_support_format_cpio(handle)
        }
        for filter in filters {
            switch filter {
            case .gzip: archive_read_support_filter_gzip(handle)
            case .zstd: archive_read_support_filter_zstd(handle)
            case .xz: archive_read_support_filter_xz(handle)
            case .bzip2: archive_read_support_filter_bzip2(handle)
            case .lzma: archive_read_support_filter_lzma(handle)
            case .lz4: archive_read_support_filter_lz4(handle)
            }
        }
        let status = archive_read_open(
            handle, clientPointer, nil,
            { _, client, buffer in
                let box = Unmanaged<Client>.fromOpaque(client!).takeUnretainedValue()
                do {
                    let chunk = try box.source.nextChunk()
                    buffer!.pointee = chunk.baseAddress.map { UnsafeRawPointer($0) }
                    return la_ssize_t(chunk.count)
                } catch {
                    box.error = box.error ?? error
                    return -1
                }
            }, nil)
        if status != ARCHIVE_OK { throw failure("cannot read") }
    }

    deinit {
        archive_read_free(handle)
        Unmanaged<Client>.fromOpaque(clientPointer).release()
    }

    /// The next entry, or nil at the end of the archive. The entry is valid until the next call.
    public func nextHeader() throws -> OpaquePointer? {
        if let headerWindow {
            // Skipping here rather than inside next_header tells us where this entry's headers begin.
            if entryOpen, archive_read_data_skip(handle) != ARCHIVE_OK { throw failure("bad data") }
            headerWindow.hold(from: consumedBytes)
        }
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        if status != ARCHIVE_OK { throw failure("bad header") }
        if let headerWindow {
            entryOpen = true
            do {
                rawNames = try headerWindow.release(through: consumedBytes) { try TarHeaderAudit.names(in: $0) }
            } catch let problem as TarNameProblem {
                let shown = String(decoding: problem.prefix.prefix(200), as: UTF8.self)
                let entryName = entry.flatMap { archive_entry_pathname($0) }.map { String(cString: $0) } ?? shown
                throw HostileInputError(
                    "\(label): entry '\(entryName)': its \(problem.record) holds a NUL byte after \(problem.offset) bytes ('\(shown)' and more), so libarchive would report a name the archive does not hold",
                    hint:
                        "a file name cannot contain NUL; rebuild the layer with a standard tool (podman, docker, buildah)"
                )
            }
        }
        return entry
    }

    /// The next data block of the current entry and its offset within the entry; nil at its end.
    public func readBlock() throws -> (UnsafeRawBufferPointer, Int64)? {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        let status = archive_read_data_block(handle, &buffer, &size, &offset)
        if status == ARCHIVE_EOF { return nil }
        if status != ARCHIVE_OK { throw failure("bad data") }
        return (UnsafeRawBufferPointer(start: buffer, count: size), offset)
    }

    /// Bytes the format reader has consumed from the (decompressed) stream: right after `nextHeader`
    /// on an uncompressed archive, this is where the entry's data starts.
    public var consumedBytes: Int64 { archive_filter_bytes(handle, 0) }

    func failure(_ what: String) -> Error {
        if let error = client.error { return error }
        let text = archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
        return ArchiveFormatError(label: label, detail: "\(what): \(text)")
    }
}

/// libarchive refused the data: a truncated stream, a corrupt header, a bad checksum.
public struct ArchiveFormatError: UserFacingError {
    public let label: String
    public let detail: String
    public var message: String { "\(label): \(detail)" }
    public var hint: String? { "the archive is truncated or corrupt; re-export it" }
}
