/// One challenge of a `WWW-Authenticate` header (RFC 7235): `Bearer realm="…",service="…",scope="…"`
/// or `Basic realm="…"`. A header may carry several challenges; parameters are tokens or quoted
/// strings with `\` escapes.
public struct AuthChallenge: Equatable, Sendable {
    /// Lowercased: `bearer`, `basic`.
    public var scheme: String
    /// Parameter names lowercased.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Every challenge in `header`. Malformed parts end the parse: what was read before stays.
    public static func parse(_ header: String) -> [AuthChallenge] {
        var scanner = Scanner(Array(header.utf8.prefix(16384)))
        var challenges: [AuthChallenge] = []
        while true {
            scanner.skip { $0 == 0x20 || $0 == 0x09 || $0 == 0x2c }
            guard let scheme = scanner.token(), !scheme.isEmpty else { break }
            var challenge = AuthChallenge(scheme: scheme.lowercased(), parameters: [:])
            // auth-params: name = value, separated by commas; a token68 instead is skipped.
            while true {
                let mark = scanner.position
                scanner.skip { $0 == 0x20 || $0 == 0x09 || $0 == 0x2c }
                guard let name = scanner.token(), !name.isEmpty else {
                    scanner.position = mark
                    break
                }
                scanner.skip { $0 == 0x20 || $0 == 0x09 }
                guard scanner.consume(0x3d) else {
                    // A new scheme, not a parameter.
                    scanner.position = mark
                    break
                }
                scanner.skip { $0 == 0x20 || $0 == 0x09 }
                guard let value = scanner.quoted() ?? scanner.token() else { return challenges + [challenge] }
                challenge.parameters[name.lowercased()] = value
            }
            challenges.append(challenge)
            if scanner.atEnd { break }
        }
        return challenges
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { position >= bytes.count }

        mutating func skip(while predicate: (UInt8) -> Bool) {
            while position < bytes.count, predicate(bytes[position]) { position += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        /// RFC 7230 tchar, plus `/` and `=` padding a token68 would not have here.
        static func isTokenByte(_ b: UInt8) -> Bool {
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) { return true }
            return Array("!#$%&'*+-.^_`|~/:".utf8).contains(b)
        }

        mutating func token() -> String? {
            let start = position
            skip(while: Self.isTokenByte)
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        mutating func quoted() -> String? {
            guard position < bytes.count, bytes[position] == 0x22 else { return nil }
            var out: [UInt8] = []
            var index = position + 1
            while index < bytes.count {
                let b = bytes[index]
                if b == 0x5c, index + 1 < bytes.count {
                    out.append(bytes[index + 1])
                    index += 2
                    continue
                }
                if b == 0x22 {
                    position = index + 1
                    return String(decoding: out, as: UTF8.self)
                }
                out.append(b)
                index += 1
            }
            return nil
        }
    }
}
