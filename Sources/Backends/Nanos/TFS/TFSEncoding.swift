import Core

/// The byte-level pieces of TFS v5 (src/runtime/buffer.h and tuple.c): varints and value headers.
enum TFSEncoding {
    static let magic = Array("NVMTFS".utf8)
    static let version: UInt64 = 5
    static let typeBuffer: UInt8 = 0, typeTuple: UInt8 = 1, typeVector: UInt8 = 2, typeInteger: UInt8 = 3,
        typeString: UInt8 = 4

    /// Big-endian 7-bit groups, 0x80 on every byte but the last (push_varint).
    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var groups: [UInt8] = [UInt8(value & 0x7f)]
        var rest = value >> 7
        while rest != 0 {
            groups.append(0x80 | UInt8(rest & 0x7f))
            rest >>= 7
        }
        out.append(contentsOf: groups.reversed())
    }

    /// Header byte: immediate bit, type in bits 6..4, "more" bit 3, the length's high bits in 2..0,
    /// then 7-bit groups (push_header), using the fewest groups.
    static func appendHeader(immediate: Bool, type: UInt8, length: UInt64, to out: inout [UInt8]) {
        let bits = length == 0 ? 1 : 64 - length.leadingZeroBitCount
        let words = bits > 3 ? (bits - 3 + 6) / 7 : 0
        out.append(
            (immediate ? 0x80 : 0) | type << 4 | (words > 0 ? 0x08 : 0)
                | UInt8(truncatingIfNeeded: length >> UInt64(words * 7)))
        var index = words
        while index > 0 {
            index -= 1
            out.append(UInt8((length >> UInt64(index * 7)) & 0x7f) | (index > 0 ? 0x80 : 0))
        }
    }
}

/// Reads varints and headers from a byte array, failing with a clear error past its end.
struct TFSCursor {
    let bytes: [UInt8]
    var position: Int
    let what: String

    init(_ bytes: [UInt8], at position: Int = 0, what: String) {
        self.bytes = bytes
        self.position = position
        self.what = what
    }

    var remaining: Int { bytes.count - position }

    func corrupt(_ detail: String) -> Error {
        InputError(
            "\(what): \(detail) at byte \(position)", hint: "the image is truncated or corrupt, or not a TFS volume")
    }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw corrupt("the log ends in the middle of a value") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int) throws -> [UInt8] {
        guard count >= 0, count <= remaining else {
            throw corrupt("a value claims \(count) bytes but only \(remaining) remain")
        }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// `take` for a length read from the image: refused before it becomes an Int.
    mutating func take(_ count: UInt64) throws -> [UInt8] {
        guard count <= UInt64(remaining) else {
            throw corrupt("a value claims \(count) bytes but only \(remaining) remain")
        }
        // checked: count <= remaining, an Int (guard above)
        return try take(Int(count))
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<10 {
            let b = try byte()
            guard value >> 57 == 0 else { throw corrupt("a varint does not fit 64 bits") }
            value = value << 7 | UInt64(b & 0x7f)
            if b & 0x80 == 0 { return value }
        }
        throw corrupt("a varint is longer than 10 bytes")
    }

    mutating func header() throws -> (immediate: Bool, type: UInt8, length: UInt64) {
        let first = try byte()
        var length = UInt64(first & 0x07)
        if first & 0x08 != 0 {
            for count in 0... {
                guard count < 10 else { throw corrupt("a header length is longer than 10 bytes") }
                let b = try byte()
                guard length >> 57 == 0 else { throw corrupt("a header length does not fit 64 bits") }
                length = length << 7 | UInt64(b & 0x7f)
                if b & 0x80 == 0 { break }
            }
        }
        return (first & 0x80 != 0, (first >> 4) & 0x07, length)
    }
}
