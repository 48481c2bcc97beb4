import Foundation

/// Where a task's image or input comes from, as `spec.image` and `inputContexts[].source` name it.
public enum TaskSource: Equatable, Sendable {
    /// A path, or a `file://` URL's path.
    case local(String)
    /// An `http://` or `https://` URL, without its `#fragment`; `sha256` from a `#sha256=HEX` fragment.
    case url(String, sha256: String?)
    /// An IPFS CID (Firestarter's private network stores images and inputs there).
    case ipfs(String)
    /// Another scheme (`s3://`, `ftp://`).
    case unsupported(String)

    public static func classify(_ text: String) -> TaskSource {
        let lower = text.lowercased()
        if lower.hasPrefix("file://") { return .local(String(text.dropFirst("file://".count))) }
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            guard let hash = text.firstIndex(of: "#") else { return .url(text, sha256: nil) }
            let fragment = text[text.index(after: hash)...]
            let sha = fragment.hasPrefix("sha256=") ? String(fragment.dropFirst("sha256=".count)).lowercased() : nil
            return .url(String(text[..<hash]), sha256: sha)
        }
        if lower.hasPrefix("ipfs://") || lower.hasPrefix("ipns://") || text.hasPrefix("/ipfs/") { return .ipfs(text) }
        if text.contains("://") { return .unsupported(text) }
        if !FileManager.default.fileExists(atPath: text), isCID(text) { return .ipfs(text) }
        return .local(text)
    }

    /// CIDv0 (`Qm` + 44 base58 characters) or CIDv1 in base32 (`b…`) or base58 (`z…`).
    static func isCID(_ text: String) -> Bool {
        let base58 = Set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
        let base32 = Set("abcdefghijklmnopqrstuvwxyz234567")
        if text.count == 46, text.hasPrefix("Qm") { return text.allSatisfy(base58.contains) }
        if text.count >= 50, text.hasPrefix("b") { return text.dropFirst().allSatisfy(base32.contains) }
        if text.count >= 48, text.hasPrefix("z") { return text.dropFirst().allSatisfy(base58.contains) }
        return false
    }
}
