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
/// The chunk libarchive is reading is only referenced; when the next one is fetched, the part of it
/// still needed is copied aside. While libarchive parses headers that is everything from the region's
/// start; while it reads data, only what it has not consumed yet (a few bytes), so data is not copied.
final class TarHeaderWindow: ByteSource {
    /// More header bytes than this before one entry is refused: libarchive allows 1 MiB per special
    /// header and 32 special headers, so this is never reached by what libarchive accepts.
    static let limit = 64 << 20

    private let inner: ByteSource
    /// Stream bytes `[savedBase, currentBase)`, copied from earlier chunks.
    private var saved: [UInt8] = []
    private var savedBase: Int64 = 0
    /// The chunk handed to libarchive last, at `currentBase`; valid until the next `inner` call.
    private var current = UnsafeRawBufferPointer(start: nil, count: 0)
    // checked: Int to Int64 widens
    private var currentBase: Int64 { savedBase + Int64(saved.count) }
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
        // checked: Int to Int64 widens
        let end = currentBase + Int64(current.count)
        let keep = min(end, holdFrom ?? consumed?() ?? end)
        drop(below: keep)
        // checked: currentBase <= keep <= end, so the offset lies within `current`
        let from = Int(max(0, keep - currentBase))
        if holdFrom != nil, saved.count + (current.count - from) > Self.limit {
            throw HostileInputError(
                "\(label): the headers of one entry take more than \(Self.limit >> 20) MiB (special headers chained without end)"
            )
        }
        if from < current.count {
            if saved.isEmpty { savedBase = keep }
            saved.append(contentsOf: UnsafeRawBufferPointer(rebasing: current[from...]))
        } else if saved.isEmpty {
            savedBase = end
        }
        current = try inner.nextChunk()
        return current
    }

    /// What has been copied aside, for tests.
    var keptCount: Int { saved.count }

    /// From here on keep everything: libarchive is about to parse headers starting at `offset`.
    func hold(from offset: Int64) {
        drop(below: offset)
        holdFrom = offset
    }

    /// The header region `[holdFrom, end)`, then back to keeping only unconsumed bytes.
    func release<T>(through end: Int64, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let start = holdFrom ?? end
        holdFrom = nil
        var region: [UInt8] = []
        // checked: clamped to the bytes held; libarchive consumed [start, end) from this stream, so
        // nothing is cut in practice, and a surprise cannot trap
        let savedFrom = Int(clamping: min(Int64(saved.count), max(0, start - savedBase)))
        let savedTo = Int(clamping: min(Int64(saved.count), max(0, end - savedBase)))
        if savedFrom < savedTo { region += saved[savedFrom..<savedTo] }
        // checked: clamped as above
        let currentFrom = Int(clamping: min(Int64(current.count), max(0, start - currentBase)))
        // checked: clamped as above
        let currentTo = Int(clamping: min(Int64(current.count), max(0, end - currentBase)))
        if currentFrom < currentTo { region += UnsafeRawBufferPointer(rebasing: current[currentFrom..<currentTo]) }
        return try region.withUnsafeBytes(body)
    }

    private func drop(below offset: Int64) {
        // checked: clamped to what is saved
        let count = Int(clamping: min(Int64(saved.count), max(0, offset - savedBase)))
        guard count > 0 else { return }
        saved.removeFirst(count)
        // checked: Int to Int64 widens
        savedBase += Int64(count)
    }
}
