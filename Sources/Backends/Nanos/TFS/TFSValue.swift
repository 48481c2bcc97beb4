/// A value of Nanos' metadata tree (src/runtime/tuple.c, encoding version 5): tuples of symbol →
/// value, vectors, strings, integers and untyped buffers.
///
/// Tuples are objects, not values: the log refers back to a tuple by its dictionary index to add or
/// remove keys (that is how Nanos' own mkfs writes extents), so the reader must update the very tuple
/// it made earlier.
public final class TFSTuple {
    // Pairs in insertion order; an index by key once the tuple is big enough for lookups to matter
    // (directories), so small tuples (files, extents) cost one array.
    private var pairs: [(key: [UInt8], value: TFSValue)] = []
    private var index: [[UInt8]: Int]?

    public init() {}

    public init(_ pairs: [(String, TFSValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    /// Forgets every pair: how the reader breaks the cycles of a crafted log it refused.
    func removeAllPairs() {
        pairs = []
        index = nil
    }

    /// Keys in the order the log gave them (the dump sorts, the writer sorts).
    public var keys: [[UInt8]] { pairs.map(\.key) }

    private func position(of key: [UInt8]) -> Int? {
        if let index { return index[key] }
        if pairs.count > 16 {
            var built: [[UInt8]: Int] = [:]
            for (position, pair) in pairs.enumerated() { built[pair.key] = position }
            index = built
            return built[key]
        }
        return pairs.firstIndex { $0.key == key }
    }

    public subscript(key: [UInt8]) -> TFSValue? {
        get { position(of: key).map { pairs[$0].value } }
        set {
            if let at = position(of: key) {
                if let newValue {
                    pairs[at].value = newValue
                } else {
                    pairs.remove(at: at)
                    index = nil
                }
            } else if let newValue {
                pairs.append((key, newValue))
                index?[key] = pairs.count - 1
            }
        }
    }

    public subscript(key: String) -> TFSValue? {
        get { self[Array(key.utf8)] }
        set { self[Array(key.utf8)] = newValue }
    }

    public var count: Int { pairs.count }

    /// Pairs in byte order of keys: the order the writer uses and the dump prints.
    public var sortedPairs: [(key: [UInt8], value: TFSValue)] {
        var sorted = true
        for position in pairs.indices.dropFirst()
        where !pairs[position - 1].key.lexicographicallyPrecedes(pairs[position].key) {
            sorted = false
            break
        }
        return sorted ? pairs : pairs.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }

    public func tuple(_ key: String) -> TFSTuple? {
        if case .tuple(let tuple)? = self[key] { return tuple }
        return nil
    }

    /// A string, symbol-like buffer or integer value as text (Nanos accepts numbers in either form).
    public func text(_ key: String) -> String? { self[key]?.text }

    /// Structural equality (a tree compare; the log's sharing does not matter).
    public func isEqual(to other: TFSTuple) -> Bool {
        guard count == other.count else { return false }
        for pair in pairs {
            guard let theirs = other[pair.key], pair.value == theirs else { return false }
        }
        return true
    }
}

public indirect enum TFSValue: Equatable, CustomStringConvertible {
    case tuple(TFSTuple)
    case vector([TFSValue])
    /// Type 4: a typed string.
    case string([UInt8])
    /// Type 3.
    case integer(Int64)
    /// Type 0 as a value: untyped bytes (`81 00` is Nanos' null value).
    case buffer([UInt8])

    public static func string(_ text: String) -> TFSValue { .string(Array(text.utf8)) }

    public static func == (a: TFSValue, b: TFSValue) -> Bool {
        switch (a, b) {
        case (.tuple(let x), .tuple(let y)): return x === y || x.isEqual(to: y)
        case (.vector(let x), .vector(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.buffer(let x), .buffer(let y)): return x == y
        default: return false
        }
    }

    public var text: String? {
        switch self {
        case .string(let bytes), .buffer(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// The unsigned number a value stands for: an integer, or a decimal string (what ops writes).
    public var unsigned: UInt64? {
        switch self {
        case .integer(let value): return value >= 0 ? UInt64(value) : nil
        case .string(let bytes), .buffer(let bytes): return UInt64(String(decoding: bytes, as: UTF8.self))
        default: return nil
        }
    }

    public var description: String { TFSDump.text(of: self) }
}
