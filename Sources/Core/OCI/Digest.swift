/// A validated content digest. The grammar is checked before a digest is ever used to build a path,
/// so `sha256:../../etc/passwd` can never name a file.
public struct ContentDigest: Hashable, Sendable, CustomStringConvertible, Codable {
    public let algorithm: String
    public let hex: String

    public init(_ string: String, context: @autoclosure () -> String) throws {
        let parts = string.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw HostileInputError("\(context()): `\(string)` is not a digest (expected sha256:<64 hex digits>)")
        }
        guard parts[0] == "sha256" else {
            throw UnsupportedError(
                "\(context()): digest algorithm `\(parts[0])` is not supported",
                hint: "only sha256 digests are supported; re-push or re-export the image with sha256")
        }
        let hex = parts[1]
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw HostileInputError(
                "\(context()): `\(string)` is not a valid sha256 digest (expected 64 lowercase hex digits)")
        }
        algorithm = "sha256"
        self.hex = String(hex)
    }

    public var description: String { "\(algorithm):\(hex)" }
    /// For messages: `sha256:0123456789ab`.
    public var short: String { "\(algorithm):\(hex.prefix(12))" }

    public init(from decoder: Decoder) throws {
        let string = try decoder.singleValueContainer().decode(String.self)
        try self.init(string, context: "digest")
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
