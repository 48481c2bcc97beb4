/// Turns an archive member name into path components relative to the image root, refusing anything
/// that could name a place outside it. Leading `./`, repeated and trailing slashes are normal in tar
/// files and are accepted; `..` and absolute names are not, wherever they appear.
public enum TreePath {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case absolute
        case parentReference
        case empty
        case notUTF8

        public var description: String {
            switch self {
            case .absolute: return "absolute member names are refused"
            case .parentReference: return "`..` components are refused"
            case .empty: return "the name is empty"
            case .notUTF8: return "the name is not valid UTF-8"
            }
        }
    }

    /// Components of `name`; the empty array is the root (`.` or `./`).
    public static func components(_ name: String) -> Result<[String], Problem> {
        if name.isEmpty { return .failure(.empty) }
        if name.hasPrefix("/") { return .failure(.absolute) }
        var parts: [String] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { return .failure(.parentReference) }
            parts.append(String(part))
        }
        return .success(parts)
    }

    public static func join(_ components: [String]) -> String {
        components.joined(separator: "/")
    }
}
