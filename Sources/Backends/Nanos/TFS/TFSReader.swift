import Core
import Foundation

/// A TFS volume read back: its identity, its metadata tree and where its log lives.
public struct TFSVolume {
    public var uuid: [UInt8]
    public var label: String
    public var root: TFSTuple
    /// Log extensions as (start sector, sector count), in the order the log links them.
    public var logExtensions: [(start: UInt64, count: UInt64)]
    /// Where the volume starts in its file, and its length in bytes.
    public var offset: Int64
    public var length: Int64
    public var file: SharedFile

    /// `e49ac1fb-6c9e-2842-700d-bf94b604e587`: the bytes in order, grouped 4-2-2-2-6 (print_uuid).
    public var uuidText: String {
        let hex = uuid.hexString
        let cuts = [8, 12, 16, 20]
        var text = ""
        for (index, character) in hex.enumerated() {
            if cuts.contains(index) { text.append("-") }
            text.append(character)
        }
        return text
    }
}

/// Reads a TFS log (src/fs/tlog.c `log_read_complete`): extension headers, records, the dictionary
/// shared by all records, reference tuples that add or delete keys of earlier tuples, continuations
/// across extensions. The root is dictionary entry 1.
public enum TFSReader {
    static let sector: Int64 = 512

    enum Entry {
        case tuple(TFSTuple)
        case vector
        case symbol([UInt8])
    }

    public static func read(file: SharedFile, offset: Int64 = 0, length: Int64? = nil, what: String) throws -> TFSVolume
    {
        let length = length ?? (file.size - offset)
        func sectors(_ start: UInt64, _ count: UInt64) throws -> [UInt8] {
            // Both numbers come from the image: bound them by the volume before any arithmetic.
            let volumeSectors = UInt64(max(0, length) / sector)
            guard count > 0, count <= volumeSectors, start <= volumeSectors - count else {
                throw InputError(
                    "\(what): a log extension at sector \(start) (\(count) sectors) lies outside the volume",
                    hint: "the image is truncated or corrupt")
            }
            // checked: start and count are bounded by the volume's sectors (guard above), so these fit
            let byteOffset = offset + Int64(start) * sector
            let byteCount = Int64(count) * sector
            var buffer = [UInt8](repeating: 0, count: Int(byteCount))
            let got = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: byteOffset) }
            guard got == buffer.count else {
                throw InputError("\(what): the image ends inside its log", hint: "the image is truncated")
            }
            return buffer
        }

        var cursor = TFSCursor(try sectors(0, 1), what: what)
        guard (try? cursor.take(6)) == TFSEncoding.magic else {
            throw InputError("\(what) is not a TFS volume (no NVMTFS header)", hint: "pass a Nanos image or TFS volume")
        }
        let version = try cursor.varint()
        guard version == TFSEncoding.version else {
            throw UnsupportedError(
                "\(what) is TFS version \(version); gvlt reads version 5 (Nanos 0.1.4x and later)",
                hint: "rebuild the image with a current Nanos/ops or gvlt")
        }
        let firstSize = try cursor.varint()
        let uuid = try cursor.take(16)
        var labelBytes: [UInt8] = []
        while true {
            let b = try cursor.byte()
            if b == 0 { break }
            labelBytes.append(b)
            guard labelBytes.count < 32 else { throw cursor.corrupt("the volume label is longer than 31 bytes") }
        }
        if firstSize > 1 {
            // A first extension longer than one sector holds records too.
            let position = cursor.position
            cursor = TFSCursor(try sectors(0, firstSize), at: position, what: what)
        }
        var extensions: [(UInt64, UInt64)] = [(0, firstSize)]
        var dictionary: [Entry] = []
        // Tuples outside the checked tree, or every tuple when reading fails, may hold reference
        // cycles the log built; emptying them lets them be freed.
        var inTree: Set<ObjectIdentifier> = []
        defer {
            for case .tuple(let tuple) in dictionary where !inTree.contains(ObjectIdentifier(tuple)) {
                tuple.removeAllPairs()
            }
        }
        var pending: [UInt8] = []
        var pendingRemain: UInt64 = 0

        func parseRecord(_ bytes: [UInt8]) throws {
            var record = TFSCursor(bytes, what: what)
            _ = try value(&record, dictionary: &dictionary)
            guard record.remaining == 0 else { throw record.corrupt("a record holds bytes after its value") }
        }

        loop: while true {
            let frame = try cursor.byte()
            switch frame {
            case 1:  // END_OF_LOG
                break loop
            case 4:  // END_OF_SEGMENT
                continue
            case 5:  // LOG_EXTENSION_LINK
                let start = try cursor.varint()
                let count = try cursor.varint()
                guard count > 0 else { throw cursor.corrupt("a log extension link has zero length") }
                guard extensions.count < 1 << 16, !extensions.contains(where: { $0.0 == start }) else {
                    throw cursor.corrupt("the log links back to an extension it already read")
                }
                extensions.append((start, count))
                cursor = TFSCursor(try sectors(start, count), what: "\(what) (log extension at sector \(start))")
                guard (try? cursor.take(6)) == TFSEncoding.magic, try cursor.varint() == TFSEncoding.version else {
                    throw cursor.corrupt("the linked log extension has no NVMTFS version 5 header")
                }
                _ = try cursor.varint()
            case 2:  // TUPLE_AVAILABLE
                guard pendingRemain == 0 else {
                    throw cursor.corrupt("a new record starts before the previous one is complete")
                }
                let total = try cursor.varint()
                let segment = try cursor.varint()
                guard segment <= total else { throw cursor.corrupt("a record segment is longer than its record") }
                let bytes = try cursor.take(segment)
                if segment == total {
                    try parseRecord(bytes)
                } else {
                    pending = bytes
                    pendingRemain = total - segment
                }
            case 3:  // TUPLE_EXTENDED
                let segment = try cursor.varint()
                guard segment <= pendingRemain else {
                    throw cursor.corrupt("a record continuation is longer than what remains of the record")
                }
                pending += try cursor.take(segment)
                pendingRemain -= segment
                if pendingRemain == 0 {
                    try parseRecord(pending)
                    pending = []
                }
            default:
                throw cursor.corrupt("unknown log frame \(frame)")
            }
        }
        guard pendingRemain == 0 else { throw cursor.corrupt("the log ends in the middle of a record") }
        guard case .tuple(let root)? = dictionary.first else {
            throw InputError("\(what): the log holds no root tuple", hint: "the image is corrupt")
        }
        inTree = try checkTree(root, what: what)
        return TFSVolume(
            uuid: uuid, label: String(decoding: labelBytes, as: UTF8.self), root: root,
            logExtensions: extensions, offset: offset, length: length, file: file)
    }

    /// Reference tuples can attach a tuple under a second parent, or under itself or its own
    /// child: a cycle that would send every walker (inspect, extract, ==) into endless recursion.
    /// A Nanos tree has each tuple once (a rename deletes the old key), so a tuple met twice is
    /// refused here, once, and walkers stay simple. The walk is iterative: depth costs no stack.
    @discardableResult
    static func checkTree(_ root: TFSTuple, what: String) throws -> Set<ObjectIdentifier> {
        var seen: Set<ObjectIdentifier> = [ObjectIdentifier(root)]
        var stack: [(TFSTuple, String)] = [(root, "/")]
        while let (tuple, path) = stack.popLast() {
            var values: [(TFSValue, String)] = tuple.sortedPairs.map {
                ($0.value, String(decoding: $0.key, as: UTF8.self))
            }
            while let (value, key) = values.popLast() {
                switch value {
                case .tuple(let child):
                    guard seen.insert(ObjectIdentifier(child)).inserted else {
                        throw InputError(
                            "\(what): the tuple under `\(key)` in \(path) is already in the tree (a reference cycle or a shared tuple)",
                            hint: "the image is corrupt or crafted; Nanos writes each tuple once")
                    }
                    stack.append((child, path == "/" ? "/" + key : path + "/" + key))
                case .vector(let items):
                    values += items.map { ($0, key) }
                default:
                    break
                }
            }
        }
        return seen
    }

    /// One value; nil is Nanos' "no value" (delete the key).
    static func value(_ cursor: inout TFSCursor, dictionary: inout [Entry], depth: Int = 0) throws -> TFSValue? {
        guard depth < 1000 else { throw cursor.corrupt("values nest deeper than 1000 levels") }
        let (immediate, type, length) = try cursor.header()
        func lookup(_ index: UInt64) throws -> Entry {
            guard index >= 1, index <= UInt64(dictionary.count) else {
                throw cursor.corrupt("a reference to dictionary entry \(index), which does not exist")
            }
            // checked: 1 <= index <= dictionary.count (guard above)
            return dictionary[Int(index - 1)]
        }
        switch type {
        case TFSEncoding.typeTuple:
            let tuple: TFSTuple
            if immediate {
                tuple = TFSTuple()
                dictionary.append(.tuple(tuple))
            } else {
                guard case .tuple(let existing) = try lookup(try cursor.varint()) else {
                    throw cursor.corrupt("a tuple reference names a non-tuple")
                }
                tuple = existing
            }
            for _ in 0..<length {
                let (keyImmediate, keyType, keyLength) = try cursor.header()
                guard keyType == TFSEncoding.typeBuffer else { throw cursor.corrupt("a tuple key is not a symbol") }
                let key: [UInt8]
                if keyImmediate {
                    key = try cursor.take(keyLength)
                    dictionary.append(.symbol(key))
                } else {
                    guard case .symbol(let existing) = try lookup(keyLength) else {
                        throw cursor.corrupt("a key reference names a non-symbol")
                    }
                    key = existing
                }
                let item = try value(&cursor, dictionary: &dictionary, depth: depth + 1)
                // `..` is rebuilt in memory by the kernel; never keep a link back up the tree.
                if key == [0x2E, 0x2E] { continue }
                tuple[key] = item
            }
            return .tuple(tuple)
        case TFSEncoding.typeVector:
            guard immediate else {
                throw UnsupportedError("\(cursor.what): a vector reference (never written by Nanos or ops)")
            }
            dictionary.append(.vector)
            var items: [TFSValue] = []
            for _ in 0..<length {
                if let item = try value(&cursor, dictionary: &dictionary, depth: depth + 1) { items.append(item) }
            }
            return .vector(items)
        case TFSEncoding.typeInteger:
            let magnitude = try cursor.varint()
            guard magnitude <= UInt64(Int64.max) else { throw cursor.corrupt("an integer does not fit 64 bits") }
            // checked: magnitude <= Int64.max (guard above)
            return .integer(length > 0 ? -Int64(magnitude) : Int64(magnitude))
        case TFSEncoding.typeString:
            if length == 0 { return nil }
            return .string(try cursor.take(length))
        case TFSEncoding.typeBuffer:
            if !immediate {
                guard case .symbol(let bytes) = try lookup(length) else {
                    throw cursor.corrupt("a buffer reference names a non-symbol")
                }
                return .buffer(bytes)
            }
            if length == 0 { return nil }
            return .buffer(try cursor.take(length))
        default:
            throw cursor.corrupt("unknown value type \(type)")
        }
    }
}
