import Foundation

/// The names of one tar entry exactly as its PAX records spell them.
///
/// libarchive hands PAX `path`/`linkpath` values over as C strings, so a NUL inside one cuts the name
/// short ("etc/passwd\0ignored" arrives as "etc/passwd"), and it rewrites them to composed Unicode (NFC),
/// so two distinct names can arrive as one. Neither can be turned off. `TarHeaderAudit` reads the header
/// bytes libarchive parsed for each entry, refuses a NUL inside a name, and gives back the names' bytes.
public struct TarRawNames: Equatable {
    /// `GNU.sparse.name` if present (libarchive lets it win), else the last `path` record.
    public var path: [UInt8]?
    public var linkpath: [UInt8]?

    public init(path: [UInt8]? = nil, linkpath: [UInt8]? = nil) {
        self.path = path
        self.linkpath = linkpath
    }
}

/// A NUL inside a length-delimited name: the name libarchive reports is not the one the archive holds.
public struct TarNameProblem: Error, Equatable {
    public var record: String
    /// Where the NUL sits in the name.
    public var offset: Int
    /// What libarchive would have used: the bytes before the NUL.
    public var prefix: [UInt8]
}

/// Parses the header blocks libarchive consumed for one entry: its GNU long-name blocks, PAX extended
/// headers and finally its own ustar header. The region comes from libarchive's own positions (where it
/// finished the previous entry, where it starts this entry's data), so the audit cannot fall out of step
/// with the reader whose names it checks.
public enum TarHeaderAudit {
    static let block = 512

    /// Every PAX record and long name in `region`; stops at the entry's own header.
    /// A region that libarchive accepted but that does not parse here is left alone: libarchive refuses
    /// malformed records itself (as warnings, which `ArchiveReader` treats as errors).
    public static func names(in region: UnsafeRawBufferPointer) throws(TarNameProblem) -> TarRawNames {
        var names = TarRawNames()
        var sparseName: [UInt8]?
        var position = 0
        while region.count - position >= block {
            let header = UnsafeRawBufferPointer(rebasing: region[position..<position + block])
            guard let size = number(UnsafeRawBufferPointer(rebasing: header[124..<136])) else { break }
            let bodyStart = position + block
            guard size <= region.count - bodyStart else { break }
            let body = UnsafeRawBufferPointer(rebasing: region[bodyStart..<bodyStart + size])
            switch header[156] {
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                try records(body) { key, value throws(TarNameProblem) in
                    switch key {
                    case "path": names.path = try exact(value, record: "PAX path")
                    case "linkpath": names.linkpath = try exact(value, record: "PAX linkpath")
                    case "GNU.sparse.name": sparseName = try exact(value, record: "PAX GNU.sparse.name")
                    default: break
                    }
                }
            case UInt8(ascii: "L"):
                names.path = try terminated(body, record: "GNU long name")
            case UInt8(ascii: "K"):
                names.linkpath = try terminated(body, record: "GNU long link name")
            case UInt8(ascii: "g"), UInt8(ascii: "V"), UInt8(ascii: "A"):
                break
            default:
                // The entry's own header: what follows (sparse maps, data) is not names.
                if let sparseName { names.path = sparseName }
                return names
            }
            // checked: size <= region.count, so the rounding cannot overflow
            position = bodyStart + (size + block - 1) / block * block
        }
        if let sparseName { names.path = sparseName }
        return names
    }

    /// A tar numeric field as libarchive reads it: octal digits (leading spaces, ended by space or NUL),
    /// or base-256 when the top bit of the first byte is set. Nil if it does not fit an Int.
    static func number(_ field: UnsafeRawBufferPointer) -> Int? {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            guard first & 0x40 == 0 else { return nil }  // negative
            // checked: UInt8 values widen to Int
            var value = Int(first & 0x3f)
            for byte in field.dropFirst() {
                let (shifted, overflow) = value.multipliedReportingOverflow(by: 256)
                guard !overflow else { return nil }
                // checked: UInt8 widens; shifted has its low 8 bits clear
                value = shifted | Int(byte)
            }
            return value
        }
        var value = 0
        var index = 0
        while index < field.count, field[index] == UInt8(ascii: " ") { index += 1 }
        while index < field.count, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(field[index]) {
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 8)
            guard !overflow else { return nil }
            // checked: an octal digit (0...7) widens to Int; the sum is overflow-checked
            let (sum, carry) = shifted.addingReportingOverflow(Int(field[index] - UInt8(ascii: "0")))
            guard !carry else { return nil }
            value = sum
            index += 1
        }
        return value
    }

    /// PAX records: "LEN key=value\n", LEN counting the whole record. Stops at the first malformed one.
    static func records(
        _ body: UnsafeRawBufferPointer, _ visit: (String, UnsafeRawBufferPointer) throws(TarNameProblem) -> Void
    ) throws(TarNameProblem) {
        var start = 0
        while start < body.count {
            var cursor = start
            var length = 0
            while cursor < body.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(body[cursor]) {
                let (shifted, overflow) = length.multipliedReportingOverflow(by: 10)
                guard !overflow, shifted <= body.count else { return }
                // checked: a decimal digit widens to Int; shifted <= body.count, so the sum fits
                length = shifted + Int(body[cursor] - UInt8(ascii: "0"))
                cursor += 1
            }
            guard cursor > start, cursor < body.count, body[cursor] == UInt8(ascii: " "),
                length <= body.count - start, length > cursor + 1 - start
            else { return }
            let end = start + length
            guard body[end - 1] == UInt8(ascii: "\n") else { return }
            let record = UnsafeRawBufferPointer(rebasing: body[(cursor + 1)..<(end - 1)])
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else { return }
            let key = String(decoding: UnsafeRawBufferPointer(rebasing: record[..<equals]), as: UTF8.self)
            try visit(key, UnsafeRawBufferPointer(rebasing: record[(equals + 1)...]))
            start = end
        }
    }

    private static func exact(_ value: UnsafeRawBufferPointer, record: String) throws(TarNameProblem) -> [UInt8] {
        if let nul = value.firstIndex(of: 0) {
            throw TarNameProblem(record: record, offset: nul, prefix: Array(value[..<nul]))
        }
        return Array(value)
    }

    /// A GNU long name is a C string padded with NULs; a byte after the first NUL means two names.
    private static func terminated(_ body: UnsafeRawBufferPointer, record: String) throws(TarNameProblem)
        -> [UInt8]
    {
        guard let nul = body.firstIndex(of: 0) else { return Array(body) }
        if body[nul...].contains(where: { $0 != 0 }) {
            throw TarNameProblem(record: record, offset: nul, prefix: Array(body[..<nul]))
        }
        return Array(body[..<nul])
    }
}

/// The stream a tar `ArchiveReader` reads, keeping the bytes of the entry headers being parsed.
///
/// While libarchive parses headers the window holds everything from the region's start; while it reads
/// data, the window keeps only what libarchive has not consumed yet, so it stays at about one chunk.
final class TarHeaderWindow: ByteSource {
    /// More header bytes than this before one entry is refused: libarchive allows 1 MiB per special
    /// header, and nothing real chains dozens of them.
    static let limit = 64 << 20

    private let inner: ByteSource
    private var storage: [UInt8] = []
    /// Offset in the stream of `storage[dropped]`.
    private var base: Int64 = 0
    private var dropped = 0
    /// Stream offset of the header region being kept; nil while data is read.
    private var holdFrom: Int64? = 0
    /// Bytes libarchive has consumed; set once the reader exists.
    var consumed: (() -> Int64)?
    let label: String

    init(inner: ByteSource, label: String) {
        self.inner = inner
        self.label = label
    }

    func nextChunk() throws -> UnsafeRawBufferPointer {
        let chunk = try inner.nextChunk()
        drop(below: holdFrom ?? consumed?() ?? base)
        let kept = storage.count - dropped
        if holdFrom != nil, kept + chunk.count > Self.limit {
            throw HostileInputError(
                "\(label): the headers of one entry take more than \(Self.limit >> 20) MiB (special headers chained without end)"
            )
        }
        storage.append(contentsOf: chunk)
        return chunk
    }

    /// What is kept now, for tests.
    var keptCount: Int { storage.count - dropped }

    /// From here on keep everything: libarchive is about to parse headers starting at `offset`.
    func hold(from offset: Int64) {
        drop(below: offset)
        holdFrom = offset
    }

    /// The header region `[holdFrom, end)`, then back to keeping only unconsumed bytes.
    func release<T>(through end: Int64, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let start = holdFrom ?? end
        holdFrom = nil
        // checked: base <= start <= end <= base + storage.count - dropped (libarchive consumed them
        // from this stream); clamped anyway so a surprise cannot trap
        let lower = dropped + Int(clamping: max(0, start - base))
        let upper = max(lower, min(storage.count, dropped + Int(clamping: max(0, end - base))))
        return try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[lower..<upper])) }
    }

    private func drop(below offset: Int64) {
        // checked: clamped to what is stored
        let count = Int(clamping: min(Int64(storage.count - dropped), max(0, offset - base)))
        dropped += count
        // checked: Int to Int64 widens
        base += Int64(count)
        if dropped > 1 << 20, dropped * 2 > storage.count {
            storage.removeFirst(dropped)
            dropped = 0
        }
    }
}
