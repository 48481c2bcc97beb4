import Core
import Foundation

/// glibc's `/etc/ld.so.cache` (format `glibc-ld.so.cache1.1`, optionally after the old `ld.so-1.7.0`
/// table): soname → path, as `ldconfig` recorded it. Only x86_64 libc6 entries are kept.
public struct LdSoCache: Sendable {
    public private(set) var entries: [String: String] = [:]

    static let oldMagic = Array("ld.so-1.7.0".utf8)
    static let newMagic = Array("glibc-ld.so.cache1.1".utf8)
    /// FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 (glibc's sysdeps/generic/ldconfig.h).
    static let x8664Libc6: Int32 = 0x0303

    public init() {}

    /// The cache at `path`, or an empty one when there is none (a root without ldconfig).
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            self.init()
            return
        }
        try self.init(bytes: Array(data), path: path)
    }

    public init(bytes: [UInt8], path: String) throws {
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        var start = 0
        if bytes.starts(with: Self.oldMagic) {
            // Old table: magic, nlibs, 12-byte entries; the new table follows, 8-byte aligned.
            guard bytes.count >= 16 else { throw Self.corrupt(path) }
            // checked: UInt32 to Int widens; every offset is bounds-checked before use
            start = (16 + Int(u32(12)) * 12 + 7) & ~7
        }
        guard bytes.count >= start + 48, Array(bytes[start..<start + 20]) == Self.newMagic else {
            throw InputError(
                "\(path) is not a glibc ld.so.cache (format 1.1)",
                hint: "regenerate it with ldconfig, or list the libraries with Files")
        }
        // checked: UInt32 to Int widens; the table size is checked against the file next
        let count = Int(u32(start + 20))
        guard start + 48 + count * 24 <= bytes.count else { throw Self.corrupt(path) }
        func string(_ offset: UInt32) throws -> String {
            // String offsets count from the start of the new-format header.
            // checked: UInt32 to Int widens; `at` is checked against the file next
            let at = start + Int(offset)
            guard at < bytes.count else { throw Self.corrupt(path) }
            return String(decoding: bytes[at...].prefix { $0 != 0 }, as: UTF8.self)
        }
        for index in 0..<count {
            let entry = start + 48 + index * 24
            guard Int32(bitPattern: u32(entry)) == Self.x8664Libc6 else { continue }
            let key = try string(u32(entry + 4))
            // ldconfig sorts entries by preference; the first one for a name is the one ld.so takes.
            if entries[key] == nil { entries[key] = try string(u32(entry + 8)) }
        }
    }

    static func corrupt(_ path: String) -> Error {
        InputError("\(path) is truncated or corrupt", hint: "regenerate it with ldconfig")
    }
}
