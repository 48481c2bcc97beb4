/// A reader of the TOML that containers' configuration files use (registries.conf): comments,
/// `key = value` with bare, quoted and dotted keys, `[table]` and `[[array of tables]]` headers, and
/// values that are strings (basic, literal and both multi-line forms), booleans, integers, arrays and
/// inline tables. Floats and dates are refused by name, so a file using them gets a clear error
/// instead of a wrong reading. No Swift TOML library is available to this build: TOMLKit needs a
/// package that is not mirrored here.
///
/// Tables become `.object`, arrays of tables `.array` of `.object`, integers `.number`.
public struct TOMLReader {
    public struct SyntaxError: Error, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var message: String
        public var description: String { "line \(line), column \(column): \(message)" }
    }

    private let bytes: [UInt8]
    private var position = 0
    private var line = 1
    private var lineStart = 0
    private var root = Table()

    /// Tables keep their order of definition and whether a header or a dotted key made them.
    private final class Table {
        var keys: [String] = []
        var values: [String: Node] = [:]
        /// Defined by a `[header]` of its own (a second one is an error).
        var explicit = false
        /// Made by an inline table or a plain value: closed to later headers and keys.
        var frozen = false
    }

    private enum Node {
        case value(JSONValue)
        case table(Table)
        case tables([Table])
    }

    public static let maximumDepth = 64

    public static func parse(_ text: String) throws -> JSONValue {
        var reader = TOMLReader(bytes: Array(text.utf8))
        try reader.document()
        return Self.json(reader.root)
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private static func json(_ table: Table) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for key in table.keys {
            switch table.values[key]! {
            case .value(let value): object[key] = value
            case .table(let nested): object[key] = json(nested)
            case .tables(let list): object[key] = .array(list.map(json))
            }
        }
        return .object(object)
    }

    private func fail(_ message: String) -> SyntaxError {
        SyntaxError(line: line, column: position - lineStart + 1, message: message)
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func advance() {
        if bytes[position] == 0x0a {
            line += 1
            lineStart = position + 1
        }
        position += 1
    }

    private mutating func skipBlanks() {
        while let b = current, b == 0x20 || b == 0x09 { position += 1 }
    }

    /// Blanks, comments and newlines (between array items and statements).
    private mutating func skipWhitespaceAndComments() throws {
        while let b = current {
            if b == 0x20 || b == 0x09 || b == 0x0a {
                advance()
            } else if b == 0x0d, position + 1 < bytes.count, bytes[position + 1] == 0x0a {
                position += 1
            } else if b == 0x23 {
                try skipComment()
            } else {
                return
            }
        }
    }

    private mutating func skipComment() throws {
        while let b = current, b != 0x0a {
            if b < 0x20 && b != 0x09 && b != 0x0d { throw fail("control character in a comment") }
            position += 1
        }
    }

    /// After a statement: blanks, an optional comment, then the end of the line or the file.
    private mutating func endOfLine() throws {
        skipBlanks()
        if current == 0x23 { try skipComment() }
        if current == 0x0d { position += 1 }
        guard let b = current else { return }
        guard b == 0x0a else { throw fail("expected the end of the line, found `\(Character(Unicode.Scalar(b)))`") }
        advance()
    }

    private mutating func document() throws {
        var table = root
        while true {
            try skipWhitespaceAndComments()
            guard let b = current else { return }
            if b == 0x5b {
                table = try header()
            } else {
                let (path, value) = try keyValue(depth: 0)
                try assign(value, at: path, in: table)
            }
            try endOfLine()
        }
    }

    private mutating func header() throws -> Table {
        position += 1
        let isArray = current == 0x5b
        if isArray { position += 1 }
        skipBlanks()
        let path = try key()
        skipBlanks()
        guard current == 0x5d else { throw fail("expected `]` to close the table header") }
        position += 1
        if isArray {
            guard current == 0x5d else { throw fail("expected `]]` to close the array of tables header") }
            position += 1
        }
        var table = root
        for (index, part) in path.enumerated() {
            let last = index == path.count - 1
            switch table.values[part] {
            case nil:
                let made = Table()
                made.explicit = last
                if last && isArray {
                    table.keys.append(part)
                    table.values[part] = .tables([made])
                    made.explicit = true
                    return made
                }
                table.keys.append(part)
                table.values[part] = .table(made)
                table = made
            case .table(let existing)?:
                if last {
                    if isArray { throw fail("`\(path.joined(separator: "."))` is a table, not an array of tables") }
                    if existing.explicit || existing.frozen {
                        throw fail("table `\(path.joined(separator: "."))` is defined twice")
                    }
                    existing.explicit = true
                }
                if existing.frozen { throw fail("`\(part)` is an inline table and cannot be extended") }
                table = existing
            case .tables(let list)?:
                if last {
                    guard isArray else { throw fail("`\(path.joined(separator: "."))` is an array of tables") }
                    let made = Table()
                    made.explicit = true
                    table.values[part] = .tables(list + [made])
                    return made
                }
                table = list[list.count - 1]
            case .value?:
                throw fail("`\(path.prefix(index + 1).joined(separator: "."))` is a value, not a table")
            }
        }
        return table
    }

    private mutating func assign(_ value: JSONValue, at path: [String], in start: Table) throws {
        var table = start
        for part in path.dropLast() {
            switch table.values[part] {
            case nil:
                let made = Table()
                table.keys.append(part)
                table.values[part] = .table(made)
                table = made
            case .table(let existing)?:
                if existing.frozen || existing.explicit && existing !== start {
                    throw fail("dotted key `\(path.joined(separator: "."))` extends a table defined elsewhere")
                }
                table = existing
            default:
                throw fail("`\(part)` in `\(path.joined(separator: "."))` is not a table")
            }
        }
        let last = path[path.count - 1]
        guard table.values[last] == nil else { throw fail("key `\(path.joined(separator: "."))` is defined twice") }
        table.keys.append(last)
        table.values[last] = .value(value)
    }

    private mutating func keyValue(depth: Int) throws -> ([String], JSONValue) {
        let path = try key()
        skipBlanks()
        guard current == 0x3d else { throw fail("expected `=` after the key `\(path.joined(separator: "."))`") }
        position += 1
        skipBlanks()
        return (path, try value(depth: depth))
    }

    /// `a`, `"a b"`, `'a'`, `a.b."c"`.
    private mutating func key() throws -> [String] {
        var parts: [String] = []
        while true {
            skipBlanks()
            guard let b = current else { throw fail("expected a key") }
            if b == 0x22 {
                parts.append(try basicString())
            } else if b == 0x27 {
                parts.append(try literalString())
            } else {
                let start = position
                while let c = current,
                    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f
                        || c == 0x2d
                {
                    position += 1
                }
                guard position > start else { throw fail("expected a key") }
                parts.append(String(decoding: bytes[start..<position], as: UTF8.self))
            }
            skipBlanks()
            guard current == 0x2e else { return parts }
            // Each part is a level of tables; the bound keeps the nesting (and its recursion) shallow.
            guard parts.count < Self.maximumDepth else { throw fail("a key has more than \(Self.maximumDepth) parts") }
            position += 1
        }
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        guard depth < Self.maximumDepth else { throw fail("values nest more than \(Self.maximumDepth) deep") }
        guard let b = current else { throw fail("expected a value") }
        switch b {
        case 0x22:
            if starts(with: "\"\"\"") { return .string(try multiLineBasicString()) }
            return .string(try basicString())
        case 0x27:
            if starts(with: "'''") { return .string(try multiLineLiteralString()) }
            return .string(try literalString())
        case 0x5b: return try array(depth: depth)
        case 0x7b: return try inlineTable(depth: depth)
        default:
            let start = position
            while let c = current, c != 0x20, c != 0x09, c != 0x0a, c != 0x0d, c != 0x2c, c != 0x5d, c != 0x7d,
                c != 0x23
            {
                position += 1
            }
            let word = String(decoding: bytes[start..<position], as: UTF8.self)
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            if let number = Self.integer(word) { return .number(Double(number)) }
            position = start
            if word.contains("-") && word.first?.isNumber == true || word.contains(":") {
                throw fail("`\(word)`: dates and times are not supported here")
            }
            let numeric = word.first.map { $0.isNumber || $0 == "+" || $0 == "-" } ?? false
            if numeric
                && (word.contains(".") || word.contains("e") || word.contains("E") || word.hasSuffix("inf")
                    || word.hasSuffix("nan"))
                || word == "inf" || word == "nan"
            {
                throw fail("`\(word)`: floating-point values are not supported here")
            }
            throw fail(word.isEmpty ? "expected a value" : "`\(word)` is not a value (strings are quoted)")
        }
    }

    /// Decimal (with `_` between digits), `0x`, `0o`, `0b`; within Int64.
    static func integer(_ word: String) -> Int64? {
        var text = Substring(word)
        var radix = 10
        var negative = false
        if text.hasPrefix("+") || text.hasPrefix("-") {
            negative = text.first == "-"
            text = text.dropFirst()
        } else if text.count > 2, text.hasPrefix("0x") || text.hasPrefix("0o") || text.hasPrefix("0b") {
            radix = text.hasPrefix("0x") ? 16 : text.hasPrefix("0o") ? 8 : 2
            text = text.dropFirst(2)
        }
        guard let first = text.first, let last = text.last, first != "_", last != "_", !text.contains("__") else {
            return nil
        }
        if radix == 10 && text.count > 1 && first == "0" { return nil }
        guard let magnitude = Int64(text.replacingOccurrences(of: "_", with: ""), radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }

    private func starts(with text: String) -> Bool {
        let pattern = Array(text.utf8)
        return position + pattern.count <= bytes.count && Array(bytes[position..<position + pattern.count]) == pattern
    }

    private mutating func array(depth: Int) throws -> JSONValue {
        position += 1
        var items: [JSONValue] = []
        while true {
            try skipWhitespaceAndComments()
            guard let b = current else { throw fail("an array is not closed with `]`") }
            if b == 0x5d {
                position += 1
                return .array(items)
            }
            items.append(try value(depth: depth + 1))
            try skipWhitespaceAndComments()
            if current == nil { throw fail("an array is not closed with `]`") }
            if current == 0x2c {
                position += 1
            } else if current != 0x5d {
                throw fail("expected `,` or `]` in an array")
            }
        }
    }

    private mutating func inlineTable(depth: Int) throws -> JSONValue {
        position += 1
        let table = Table()
        skipBlanks()
        if current == 0x7d {
            position += 1
            return .object([:])
        }
        while true {
            skipBlanks()
            let (path, value) = try keyValue(depth: depth + 1)
            try assign(value, at: path, in: table)
            skipBlanks()
            guard let b = current else { throw fail("an inline table is not closed with `}`") }
            position += 1
            if b == 0x7d { break }
            guard b == 0x2c else { throw fail("expected `,` or `}` in an inline table") }
        }
        return Self.json(table)
    }

    private mutating func literalString() throws -> String {
        position += 1
        let start = position
        while let b = current, b != 0x27 {
            if b == 0x0a || (b < 0x20 && b != 0x09) { throw fail("a literal string is not closed on its line") }
            position += 1
        }
        guard current == 0x27 else { throw fail("a literal string is not closed with `'`") }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        position += 1
        return text
    }

    private mutating func multiLineLiteralString() throws -> String {
        position += 3
        if current == 0x0a { advance() } else if starts(with: "\r\n") { position += 2 }
        let start = position
        while position < bytes.count {
            if starts(with: "'''") {
                var end = position + 3
                while end < bytes.count, bytes[end] == 0x27, end - position < 5 { end += 1 }
                let text = String(decoding: bytes[start..<(end - 3)], as: UTF8.self)
                position = end
                return text
            }
            advance()
        }
        throw fail("a multi-line literal string is not closed with `'''`")
    }

    private mutating func basicString() throws -> String {
        position += 1
        var out: [UInt8] = []
        while let b = current {
            if b == 0x22 {
                position += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b == 0x0a || (b < 0x20 && b != 0x09) { throw fail("a string is not closed on its line") }
            if b == 0x5c {
                try escape(into: &out)
            } else {
                out.append(b)
                position += 1
            }
        }
        throw fail("a string is not closed with `\"`")
    }

    private mutating func multiLineBasicString() throws -> String {
        position += 3
        if current == 0x0a { advance() } else if starts(with: "\r\n") { position += 2 }
        var out: [UInt8] = []
        while let b = current {
            if starts(with: "\"\"\"") {
                var end = position + 3
                while end < bytes.count, bytes[end] == 0x22, end - position < 5 {
                    out.append(0x22)
                    end += 1
                }
                position = end
                return String(decoding: out, as: UTF8.self)
            }
            if b == 0x5c {
                // A backslash at the end of a line trims the newline and the blanks after it.
                var look = position + 1
                while look < bytes.count, bytes[look] == 0x20 || bytes[look] == 0x09 || bytes[look] == 0x0d {
                    look += 1
                }
                if look < bytes.count, bytes[look] == 0x0a {
                    position = look
                    while let c = current, c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d { advance() }
                    continue
                }
                try escape(into: &out)
            } else {
                out.append(b)
                advance()
            }
        }
        throw fail("a multi-line string is not closed with `\"\"\"`")
    }

    private mutating func escape(into out: inout [UInt8]) throws {
        position += 1
        guard let b = current else { throw fail("a string ends in `\\`") }
        position += 1
        switch b {
        case 0x62: out.append(0x08)
        case 0x74: out.append(0x09)
        case 0x6e: out.append(0x0a)
        case 0x66: out.append(0x0c)
        case 0x72: out.append(0x0d)
        case 0x22: out.append(0x22)
        case 0x5c: out.append(0x5c)
        case 0x75, 0x55:
            let count = b == 0x75 ? 4 : 8
            guard position + count <= bytes.count,
                let code = UInt32(String(decoding: bytes[position..<position + count], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(code)
            else { throw fail("`\\\(Character(Unicode.Scalar(b)))` is not followed by a Unicode scalar value") }
            position += count
            out += Array(String(Character(scalar)).utf8)
        default:
            throw fail("`\\\(Character(Unicode.Scalar(b)))` is not a TOML escape")
        }
    }
}
