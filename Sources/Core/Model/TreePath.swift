/// Turns an archive member name into path components relative to the image root, refusing anything
/// that could name a place outside it. Leading `./`, repeated and trailing slashes are normal in tar
/// files and are accepted; `..` and absolute names are not, wherever they appear.
///
/// Everything here works on UTF-8 bytes, never on Swift `Character`s: a `/` followed by a combining
/// mark is one Character but still a separator to the kernel, and canonically equivalent spellings of
/// a name are different files on disk.
public enum TreePath {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case absolute
        case parentReference
        case empty
        case tooLong

        public var description: String {
            switch self {
            case .absolute: return "absolute member names are refused"
            case .parentReference: return "`..` components are refused"
            case .empty: return "the name is empty"
            case .tooLong:
                return
                    "names longer than \(TreePath.maximumLength) bytes or with components longer than \(TreePath.maximumComponentLength) bytes are refused (Linux limits)"
            }
        }
    }

    /// Linux's PATH_MAX and NAME_MAX: nothing longer can exist in a guest file system.
    public static let maximumLength = 4096
    public static let maximumComponentLength = 255

    static let slash = UInt8(ascii: "/")
    static let dot = UInt8(ascii: ".")

    /// Components of `name`; the empty array is the root (`.` or `./`).
    public static func components(_ name: String) -> Result<[String], Problem> {
        let bytes = name.utf8
        if bytes.isEmpty { return .failure(.empty) }
        if bytes.first == slash { return .failure(.absolute) }
        if bytes.count > maximumLength { return .failure(.tooLong) }
        var parts: [String] = []
        for part in bytes.split(separator: slash, omittingEmptySubsequences: true) {
            if part.elementsEqual([dot]) { continue }
            if part.elementsEqual([dot, dot]) { return .failure(.parentReference) }
            if part.count > maximumComponentLength { return .failure(.tooLong) }
            parts.append(String(decoding: part, as: UTF8.self))
        }
        return .success(parts)
    }

    public static func join(_ components: [String]) -> String {
        components.joined(separator: "/")
    }

    /// Byte-wise prefix test (`String.hasPrefix` compares Characters).
    public static func hasPrefix(_ name: String, _ prefix: String) -> Bool {
        name.utf8.starts(with: prefix.utf8)
    }
}
