/// Text a server chose (a tag list, an error body, a header) as it may appear in a message: control
/// characters, which could drive the user's terminal, become `?`, and the length is bounded.
public enum ServerText {
    public static func clean(_ text: String, limit: Int = 512) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars.prefix(limit) {
            let value = scalar.value
            out.append(value < 0x20 || (0x7f...0x9f).contains(value) ? "?" : scalar)
        }
        return String(out) + (text.unicodeScalars.count > limit ? "…" : "")
    }

    /// A URL for a message: without user info and query, which may hold a password or a signature.
    public static func url(_ text: String) -> String {
        var cut = Substring(text)
        if let query = cut.firstIndex(where: { $0 == "?" || $0 == "#" }) { cut = cut[..<query] }
        if let schemeEnd = cut.range(of: "://") {
            let rest = cut[schemeEnd.upperBound...]
            let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<hostEnd].lastIndex(of: "@") {
                cut = cut[..<schemeEnd.upperBound] + rest[rest.index(after: at)...]
            }
        }
        return clean(String(cut)) + (cut.count < text.count && text.contains("?") ? "?…" : "")
    }
}
