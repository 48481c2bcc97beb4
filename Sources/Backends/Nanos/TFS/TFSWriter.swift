import Core
import Crypto
import Foundation

/// A file system tree to write as a TFS volume: directories, files (content by reference) and
/// symlinks. Names are kept as given; the writer sorts them.
public final class TFSNode {
    public enum Kind {
        case directory
        case file(FileContent)
        case symlink(String)
    }

    public var kind: Kind
    public private(set) var children: [String: TFSNode] = [:]

    public init(_ kind: Kind) { self.kind = kind }

    public static func directory() -> TFSNode { TFSNode(.directory) }

    public var isDirectory: Bool { if case .directory = kind { return true } else { return false } }

    /// The node at `path` (`a/b/c`), or nil.
    public func node(at path: [String]) -> TFSNode? {
        var node = self
        for part in path {
            guard let child = node.children[part] else { return nil }
            node = child
        }
        return node
    }

    /// Creates the directories along `path` (refusing to go through a non-directory) and returns the last.
    public func directory(at path: [String], what: String) throws -> TFSNode {
        var node = self
        for (index, part) in path.enumerated() {
            if let child = node.children[part] {
                guard child.isDirectory else {
                    throw InputError(
                        "\(what): /\(path[...index].joined(separator: "/")) is a file in the image, not a directory",
                        hint: "rename one of them in the manifest")
                }
                node = child
            } else {
                let child = TFSNode.directory()
                node.children[part] = child
                node = child
            }
        }
        return node
    }

    /// Puts `child` at `path`, replacing what was there (a later manifest entry wins, as in ops).
    public func set(_ path: [String], _ child: TFSNode, what: String) throws {
        guard let name = path.last else { throw InputError("\(what): cannot replace the root directory") }
        try TFSPath.check(path, what: what)
        let parent = try directory(at: Array(path.dropLast()), what: what)
        if let existing = parent.children[name], existing.isDirectory, child.isDirectory { return }
        parent.children[name] = child
    }

    public func remove(_ name: String) { children[name] = nil }
}

public enum TFSPath {
    /// Splits an image path into names, refusing `.`/`..` and empty names.
    public static func split(_ path: String, what: String) throws -> [String] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        try check(parts, what: what)
        return parts
    }

    static func check(_ parts: [String], what: String) throws {
        for part in parts where part == "." || part == ".." || part.isEmpty || part.utf8.contains(0) {
            throw InputError(
                "\(what): `\(part)` is not a usable name in an image path",
                hint: "use plain absolute paths like /etc/passwd")
        }
    }
}

/// Writes a TFS v5 volume the way Nanos' kernel reads it (Nanos' src/fs/tlog.c and src/fs/tfs.c):
///
/// - sector 0: the first log extension (header, UUID, label, link to sector 1);
/// - sectors 1…1024: the log, whose one record is the whole tree (as ops and the kernel's own
///   compaction write it), continued in further 1024-sector extensions placed after the data if it
///   does not fit;
/// - sectors 1025…3072: left free, as Nanos' mkfs does, for the two log regions a running kernel
///   allocates before its first file write;
/// - file data from sector 3073, sector-aligned, in path order, one extent per 32 MiB.
///
/// Keys are written in byte order and numbers as integers, and the UUID comes from the content, so
/// the same tree gives the same bytes.
public struct TFSWriter {
    public static let sector: Int64 = 512
    public static let extensionSectors: UInt64 = 1024
    public static let dataStart: UInt64 = 3073
    /// MAX_EXTENT_SIZE: 8192 pages of 4 KiB.
    public static let maximumExtentSectors: UInt64 = 65536

    public var label: String
    /// Root keys besides `children` (program, arguments, environment, mounts, passthrough…).
    public var rootKeys: [(String, TFSValue)]
    /// The volume is at least this many bytes (ops' BaseVolumeSz).
    public var minimumSize: Int64
    /// Free bytes to leave after everything written, for the program's own files.
    public var freeSpace: Int64
    /// The first data sector: 3073 keeps mkfs' two free log regions for a kernel that writes; a
    /// volume the kernel only reads (the boot filesystem) starts data right after the log, at 1025.
    public var dataStart: UInt64

    public init(
        label: String = "", rootKeys: [(String, TFSValue)] = [], minimumSize: Int64 = 0, freeSpace: Int64 = 8 << 20,
        writable: Bool = true
    ) {
        self.label = label
        self.rootKeys = rootKeys
        self.minimumSize = minimumSize
        self.freeSpace = freeSpace
        self.dataStart = writable ? Self.dataStart : 1 + Self.extensionSectors
    }

    public struct Result {
        public var size: Int64
        public var uuid: [UInt8]
        public var dataSectors: UInt64
        public var logExtensions: [UInt64]
    }

    /// Writes the volume into `file` at byte `offset` (a sector multiple) and returns its size. The
    /// caller's file must read as zeros where nothing is written (a new file, or one truncated).
    public func write(_ tree: TFSNode, to file: SharedFile, at offset: Int64) throws -> Result {
        guard tree.isDirectory else { throw InputError("the root of a TFS volume must be a directory") }
        guard label.utf8.count < 32, !label.utf8.contains(0) else {
            throw InputError("volume label `\(label)` is longer than 31 bytes", hint: "use a shorter label")
        }
        let copier = DataCopier()
        var next = dataStart
        // Reserving the data region up front spares the file system an allocation per write.
        func dataSectors(_ node: TFSNode) -> Int64 {
            switch node.kind {
            case .directory: return node.children.values.reduce(0) { $0 + dataSectors($1) }
            case .file(let content): return (content.size + Self.sector - 1) / Self.sector
            case .symlink: return 0
            }
        }
        let reserve = dataSectors(tree) * Self.sector
        if reserve > 0 { _ = posix_fallocate(file.fd, off_t(offset + Int64(dataStart) * Self.sector), off_t(reserve)) }

        // Data first: it fixes the extents the metadata records.
        func metadata(_ node: TFSNode, path: String) throws -> TFSTuple {
            switch node.kind {
            case .directory:
                let children = TFSTuple()
                let names = node.children.keys.map { (name: $0, bytes: Array($0.utf8)) }.sorted {
                    $0.bytes.lexicographicallyPrecedes($1.bytes)
                }
                for (name, bytes) in names {
                    children[bytes] = .tuple(try metadata(node.children[name]!, path: path + "/" + name))
                }
                return TFSTuple([("children", .tuple(children))])
            case .symlink(let target):
                guard !target.isEmpty else {
                    throw InputError("symlink \(path) has an empty target; TFS cannot store one")
                }
                return TFSTuple([("linktarget", .string(target))])
            case .file(let content):
                let size = content.size
                let sectors = UInt64((size + Self.sector - 1) / Self.sector)
                let start = next
                let written = try copier.copy(content, to: file, at: offset + Int64(start) * Self.sector, path: path)
                guard written == size else {
                    throw InputError(
                        "\(path) changed size while the image was being written",
                        hint: "build again once it no longer changes")
                }
                let tail = Int(size % Self.sector)
                if tail != 0 {
                    // The rest of the last sector is zero even when the output file was not.
                    let zeros = [UInt8](repeating: 0, count: Int(Self.sector) - tail)
                    try zeros.withUnsafeBytes { try file.write($0, at: offset + Int64(start) * Self.sector + size) }
                }
                next += sectors
                let extents = TFSTuple()
                var done: UInt64 = 0
                while done < sectors {
                    let length = min(Self.maximumExtentSectors, sectors - done)
                    extents[String(done)] = .tuple(
                        TFSTuple([
                            ("allocated", .integer(Int64(length))), ("length", .integer(Int64(length))),
                            ("offset", .integer(Int64(start + done)))
                        ]))
                    done += length
                }
                return TFSTuple([("extents", .tuple(extents)), ("filelength", .integer(size))])
            }
        }
        let root = try metadata(tree, path: "")
        for (key, value) in rootKeys {
            guard key != "children" else {
                throw InputError("the root key `children` is the file tree; it cannot be set directly")
            }
            root[key] = value
        }
        var encoder = TFSEncoder()
        let record = encoder.encode(root)
        var hasher = SHA256()
        hasher.update(data: copier.finish())
        hasher.update(data: record)
        hasher.update(data: Array(label.utf8))
        let uuid = Array(hasher.finalize().prefix(16))

        // The log: the record in the extension at sector 1, continued after the data if needed.
        var extensions: [UInt64] = [1]
        let dataEnd = next
        let frames = Self.frame(record) {
            extensions.append(next)
            next += Self.extensionSectors
            return next - Self.extensionSectors
        }
        for (index, bytes) in frames.enumerated() {
            try bytes.withUnsafeBytes { try file.write($0, at: offset + Int64(extensions[index]) * Self.sector) }
        }
        // Sector 0: the first extension, one sector long, names the volume and links to sector 1.
        var first = Self.extensionHeader(sectors: 1) + uuid + Array(label.utf8) + [0]
        Self.appendLink(to: 1, into: &first)
        first.append(1)
        first += [UInt8](repeating: 0, count: Int(Self.sector) - first.count)
        try first.withUnsafeBytes { try file.write($0, at: offset) }

        let used = Int64(next) * Self.sector
        let region = Int64(Self.extensionSectors) * Self.sector
        let size = max(minimumSize, (used + freeSpace + region - 1) / region * region)
        return Result(size: size, uuid: uuid, dataSectors: dataEnd - dataStart, logExtensions: extensions)
    }

    /// `NVMTFS`, the TFS version and the extension's length in sectors (`log_extension_init`).
    static func extensionHeader(sectors: UInt64) -> [UInt8] {
        var bytes = TFSEncoding.magic
        TFSEncoding.appendVarint(TFSEncoding.version, to: &bytes)
        TFSEncoding.appendVarint(sectors, to: &bytes)
        return bytes
    }

    /// LOG_EXTENSION_LINK to the next extension, always 1024 sectors long.
    static func appendLink(to start: UInt64, into bytes: inout [UInt8]) {
        bytes.append(5)
        TFSEncoding.appendVarint(start, to: &bytes)
        TFSEncoding.appendVarint(extensionSectors, to: &bytes)
    }

    /// Splits one record over 1024-sector extensions exactly as `log_write_internal` does: a frame
    /// header never splits, and 21 + 21 bytes stay free at the end of every extension for a link
    /// and a record header. Returns each extension's bytes, padded to its full size.
    static func frame(_ record: [UInt8], allocate: () -> UInt64) -> [[UInt8]] {
        let size = Int(extensionSectors) * Int(sector)
        var done: [[UInt8]] = []
        var staging = extensionHeader(sectors: extensionSectors)
        var written = 0
        while written < record.count {
            if staging.count + 21 + 53 >= size {
                appendLink(to: allocate(), into: &staging)
                done.append(staging + [UInt8](repeating: 0, count: size - staging.count))
                staging = extensionHeader(sectors: extensionSectors)
            }
            let available = size - (staging.count + 21 + 21)
            let length = min(available, record.count - written)
            if written == 0 {
                staging.append(2)
                TFSEncoding.appendVarint(UInt64(record.count), to: &staging)
            } else {
                staging.append(3)
            }
            TFSEncoding.appendVarint(UInt64(length), to: &staging)
            staging += record[written..<written + length]
            written += length
        }
        staging.append(1)
        done.append(staging + [UInt8](repeating: 0, count: size - staging.count))
        return done
    }
}

/// Encodes a tree as one log value (`encode_tuple_internal`): depth first, every tuple and vector
/// immediate, each symbol written by name once and by dictionary index after that. The dictionary
/// counts immediate tuples, vectors and symbols from 1, so the root is entry 1.
struct TFSEncoder {
    private var symbols: [[UInt8]: UInt64] = [:]
    private var count: UInt64 = 0
    private var out: [UInt8] = []

    mutating func encode(_ root: TFSTuple) -> [UInt8] {
        out = []
        encode(.tuple(root))
        return out
    }

    private mutating func encode(_ value: TFSValue) {
        switch value {
        case .tuple(let tuple):
            count += 1
            let pairs = tuple.sortedPairs
            TFSEncoding.appendHeader(
                immediate: true, type: TFSEncoding.typeTuple, length: UInt64(pairs.count), to: &out)
            for (key, item) in pairs {
                if let index = symbols[key] {
                    TFSEncoding.appendHeader(immediate: false, type: TFSEncoding.typeBuffer, length: index, to: &out)
                } else {
                    count += 1
                    symbols[key] = count
                    TFSEncoding.appendHeader(
                        immediate: true, type: TFSEncoding.typeBuffer, length: UInt64(key.count), to: &out)
                    out += key
                }
                encode(item)
            }
        case .vector(let items):
            count += 1
            TFSEncoding.appendHeader(
                immediate: true, type: TFSEncoding.typeVector, length: UInt64(items.count), to: &out)
            for item in items { encode(item) }
        case .string(let bytes):
            TFSEncoding.appendHeader(
                immediate: true, type: TFSEncoding.typeString, length: UInt64(bytes.count), to: &out)
            out += bytes
        case .integer(let number):
            TFSEncoding.appendHeader(
                immediate: true, type: TFSEncoding.typeInteger, length: number < 0 ? 1 : 0, to: &out)
            TFSEncoding.appendVarint(number.magnitude, to: &out)
        case .buffer(let bytes):
            TFSEncoding.appendHeader(
                immediate: true, type: TFSEncoding.typeBuffer, length: UInt64(bytes.count), to: &out)
            out += bytes
        }
    }
}
