import CHost

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
