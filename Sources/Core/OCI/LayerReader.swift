import Foundation
import Logging

/// Where a layer's bytes are and what they must hash to.
public struct LayerBlob {
    /// For messages: "layer 2/5 sha256:0123456789ab".
    public var label: String
    public var file: SharedFile
    public var offset: Int64
    public var length: Int64
    /// The blob digest (of the bytes as stored, compressed or not); checked when set.
    public var digest: ContentDigest?
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`; checked when set.
    public var diffID: ContentDigest?
    /// What the media type declares; the bytes are sniffed regardless.
    public var declaredCompression: LayerCompression?

    public init(
        label: String, file: SharedFile, offset: Int64 = 0, length: Int64, digest: ContentDigest?,
        diffID: ContentDigest?, declaredCompression: LayerCompression?
    ) {
        self.label = label
        self.file = file
        self.offset = offset
        self.length = length
        self.digest = digest
        self.diffID = diffID
        self.declaredCompression = declaredCompression
    }
}

/// A layer's entries in stream order, with their content already placed (in the blob itself when it
/// is uncompressed, in an anonymous spool file otherwise).
public struct ParsedLayer {
    public struct Entry {
        public var name: String
        public var kind: EntryKind
        public var metadata: FileMetadata
    }

    public var label: String
    public var entries: [Entry]
    public var uncompressedBytes: Int64
}

/// Thread-safe "stop now" flag shared by the layer workers: the first failure stops the others.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func cancel() { lock.withLock { cancelled = true } }
}

public struct BuildCancelled: UserFacingError {
    public var message: String { "cancelled" }
    public var hint: String? { nil }
}

/// Reads one layer in a single pass: the stored bytes are hashed (blob digest), decompressed by
/// libarchive, hashed again (diff_id), and parsed as tar. Nothing is written to the host tree.
public enum LayerReader {
    public static func parse(
        _ blob: LayerBlob, scratchDirectory: String, cancel: CancellationFlag? = nil,
        budget: ExpansionBudget? = nil, logger: Logger? = nil, progress: ((Int64) -> Void)? = nil
    ) throws -> ParsedLayer {
        guard blob.length > 0 else {
            throw HostileInputError("\(blob.label): the blob is empty; a layer holds at least a tar end marker")
        }
        var magic = [UInt8](repeating: 0, count: 6)
        let magicCount = try magic.withUnsafeMutableBytes {
            try blob.file.read(
                // checked: at most 6
                into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(min(6, blob.length))]), at: blob.offset)
        }
        let compression: LayerCompression
        switch LayerCompression.sniff(Array(magic.prefix(magicCount))) {
        case .success(let sniffed): compression = sniffed
        case .failure(let error): throw UnsupportedError("\(blob.label): \(error.message)", hint: error.hint)
        }
        if let declared = blob.declaredCompression, declared != compression {
            logger?.warning(
                "\(blob.label): media type says \(declared.rawValue) but the bytes are \(compression.rawValue); reading them as \(compression.rawValue)"
            )
        }

        let stored = FileRangeSource(
            file: blob.file, offset: blob.offset, length: blob.length, hashing: blob.digest != nil)
        stored.onProgress = progress
        do {
            return try parseStream(
                blob, compression: compression, stored: stored, scratchDirectory: scratchDirectory, cancel: cancel,
                budget: budget)
        } catch let error as BuildCancelled {
            throw error
        } catch {
            // A corrupt stream whose bytes do not match the digest is a digest problem first.
            if let expected = blob.digest, (try? drain(stored)) != nil, let actual = stored.finalizeDigest(),
                actual != expected.description
            {
                throw digestMismatch(blob, expected: expected, actual: actual)
            }
            throw error
        }
    }

    private static func parseStream(
        _ blob: LayerBlob, compression: LayerCompression, stored: FileRangeSource,
        scratchDirectory: String, cancel: CancellationFlag?, budget: ExpansionBudget?
    ) throws -> ParsedLayer {
        let filters: [ArchiveReader.Filter]
        switch compression {
        case .none: filters = []
        case .gzip: filters = [.gzip]
        case .zstd: filters = [.zstd]
        }
        let rawReader = try ArchiveReader(format: .raw, filters: filters, source: stored, label: blob.label)
        let uncompressed = try DecompressedSource(reader: rawReader)
        if let budget {
            uncompressed.onBytes = { chunk, total in
                try budget.charge(chunk, layer: blob.label, layerTotal: total, stored: blob.length)
            }
        }
        let tar = try ArchiveReader(format: .tar, source: uncompressed, label: blob.label)

        var entries: [ParsedLayer.Entry] = []
        var spool: SharedFile?
        var spoolEnd: Int64 = 0
        var index = 0
        while let archiveEntry = try tar.nextHeader() {
            index += 1
            if index % 256 == 0, cancel?.isCancelled == true { throw BuildCancelled() }
            let header: ArchiveEntryCoding.Header
            do {
                header = try ArchiveEntryCoding.decode(archiveEntry, names: tar.rawNames)
            } catch let problem as ArchiveEntryCoding.DecodeProblem {
                throw HostileInputError("\(blob.label): entry #\(index): \(problem)")
            }
            var kind = header.kind
            if case .regularFile = kind, header.size > 0 {
                if compression == .none && !header.isSparse {
                    // The data sits in the blob as is: point at it. libarchive reads past it (hashing it)
                    // when we ask for the next header.
                    kind = .regularFile(
                        .blobRange(file: blob.file, offset: blob.offset + tar.consumedBytes, length: header.size))
                } else {
                    let file = try spool ?? SharedFile.anonymous(in: scratchDirectory)
                    spool = file
                    let base = spoolEnd
                    var written: Int64 = 0
                    while let (block, offset) = try tar.readBlock() {
                        // checked: block sizes, Int to Int64
                        guard offset >= 0, offset <= header.size - Int64(block.count) else {
                            throw HostileInputError(
                                "\(blob.label): entry '\(header.name)': a data block at \(offset) lies outside its \(header.size) bytes"
                            )
                        }
                        try file.write(block, at: base + offset)
                        // checked: block sizes, Int to Int64
                        written += Int64(block.count)
                    }
                    // A sparse file's holes stay holes in the spool, but they are bytes the image
                    // will hold: they count toward the bound like data does.
                    if header.isSparse, let budget, header.size > written {
                        try budget.charge(
                            header.size - written, layer: "\(blob.label): sparse entry '\(header.name)'",
                            layerTotal: uncompressed.byteCount + header.size - written, stored: blob.length)
                    }
                    spoolEnd = base + header.size
                    kind = .regularFile(.blobRange(file: file, offset: base, length: header.size))
                }
            }
            entries.append(ParsedLayer.Entry(name: header.name, kind: kind, metadata: header.metadata))
        }
        // Sparse tails and holes are not written; give the spool its full logical length.
        if let spool, spool.size < spoolEnd { try spool.truncate(to: spoolEnd) }

        let diffID = try uncompressed.drainAndDigest()
        try drain(stored)
        if let expected = blob.digest, let actual = stored.finalizeDigest(), actual != expected.description {
            throw digestMismatch(blob, expected: expected, actual: actual)
        }
        if let expected = blob.diffID, diffID != expected.description {
            throw HostileInputError(
                "\(blob.label): uncompressed content does not match rootfs.diff_ids: config says \(expected), content is \(diffID)"
            )
        }
        return ParsedLayer(label: blob.label, entries: entries, uncompressedBytes: uncompressed.byteCount)
    }

    private static func drain(_ source: FileRangeSource) throws {
        while try source.nextChunk().count > 0 {}
    }

    private static func digestMismatch(_ blob: LayerBlob, expected: ContentDigest, actual: String) -> Error {
        HostileInputError("\(blob.label): content does not match its digest: expected \(expected), got \(actual)")
    }
}
