import CHost
import Foundation

extension Array where Element == UInt8 {
    /// Where `needle` first occurs, by glibc's memmem (the arrays can be megabytes).
    public func firstOffset(of needle: [UInt8]) -> Int? {
        withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                guard let found = memmem(h.baseAddress, h.count, n.baseAddress, n.count) else { return nil }
                return h.baseAddress!.distance(to: UnsafeRawPointer(found))
            }
        }
    }
}

extension Data {
    /// The index of the first `byte` at or after `start`, by memchr: plugin output is searched for
    /// newlines as it arrives, and a runaway line can be tens of megabytes.
    func firstIndex(of byte: UInt8, from start: Index) -> Index? {
        guard start < endIndex else { return nil }
        return self[start...].withUnsafeBytes { raw -> Index? in
            guard let base = raw.baseAddress, let found = memchr(base, Int32(byte), raw.count) else { return nil }
            return start + base.distance(to: UnsafeRawPointer(found))
        }
    }
}
