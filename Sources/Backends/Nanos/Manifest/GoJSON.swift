import Foundation

/// JSON as Go's `encoding/json` reads it, which is how ops reads `-c` files: a strict RFC 8259 grammar
/// (no trailing commas, no comments), members kept in order with their lines so that the decoding rules
/// on top (case-folded keys, the last duplicate wins) can be applied and reported, and only the first
/// value read (`json.Decoder` ignores whatever follows it).
enum GoJSON {
    indirect enum Value: Equatable {
        case null
        case bool(Bool)
        /// The literal as written: Go decides by the target type whether `1e2` is acceptable.
        case number(String)
        case string(String)
        case array([Value])
        case object([Member])

        /// The kind of JSON value, as Go names it in "cannot unmarshal X into …".
        var goKind: String {
            switch self {
            case .null: return "null"
            case .bool: return "bool"
            case .number: return "number"
            case .string: return "string"
            case .array: return "array"
            case .object: return "object"
            }
        }
    }

    struct Member: Equatable {
        var key: String
        var value: Value
        var line: Int
        var column: Int
    }

    /// Go's own wording ("invalid character '}' looking for beginning of object key string"), and where.
    struct SyntaxError: Error, Equatable {
        var message: String
        var line: Int
        var column: Int
    }

    struct Document {
        var value: Value
        /// Where non-blank content after the first value starts, if there is any.
        var trailing: (line: Int, column: Int)?
    }

    /// Go's `maxNestingDepth`.
    static let maximumDepth = 10000

    static func parse(_ data: Data) throws(SyntaxError) -> Document {
        var parser = Parser(bytes: [UInt8](data))
        return try parser.document()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        private enum Frame {
            case array([Value])
            case object([Member], key: String, line: Int, column: Int)
        }

        mutating func document() throws(SyntaxError) -> Document {
            let value = try value()
            skipSpace()
            guard index < bytes.count else { return Document(value: value, trailing: nil) }
            let (line, column) = position(of: index)
            return Document(value: value, trailing: (line, column))
        }

        /// One value, iteratively, so that nesting costs heap, not stack.
        private mutating func value() throws(SyntaxError) -> Value {
            var stack: [Frame] = []
            while true {
                skipSpace()
                var completed: Value
                guard index < bytes.count else { throw endOfInput() }
                switch bytes[index] {
                case UInt8(ascii: "{"):
                    guard stack.count < GoJSON.maximumDepth else { throw error("exceeded max depth") }
                    index += 1
                    skipSpace()
                    if peek == UInt8(ascii: "}") {
                        index += 1
                        completed = .object([])
                    } else {
                        let (key, line, column) = try key(after: "looking for beginning of object key string")
                        stack.append(.object([], key: key, line: line, column: column))
                        continue
                    }
                case UInt8(ascii: "["):
                    guard stack.count < GoJSON.maximumDepth else { throw error("exceeded max depth") }
                    index += 1
                    skipSpace()
                    if peek == UInt8(ascii: "]") {
                        index += 1
                        completed = .array([])
                    } else {
                        stack.append(.array([]))
                        continue
                    }
                case UInt8(ascii: "\""):
                    completed = .string(try string())
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    completed = .number(try number())
                case UInt8(ascii: "t"):
                    try literal("true")
                    completed = .bool(true)
                case UInt8(ascii: "f"):
                    try literal("false")
                    completed = .bool(false)
                case UInt8(ascii: "n"):
                    try literal("null")
                    completed = .null
                default:
                    throw invalid("looking for beginning of value")
                }
                // Hand the value to its container; close every container that ends here.
                while true {
                    guard let frame = stack.popLast() else { return completed }
                    skipSpace()
                    switch frame {
                    case .array(var items):
                        items.append(completed)
                        guard index < bytes.count else { throw endOfInput() }
                        if bytes[index] == UInt8(ascii: ",") {
                            index += 1
                            stack.append(.array(items))
                        } else if bytes[index] == UInt8(ascii: "]") {
                            index += 1
                            completed = .array(items)
                            continue
                        } else {
                            throw invalid("after array element")
                        }
                    case .object(var members, let pendingKey, let line, let column):
                        members.append(Member(key: pendingKey, value: completed, line: line, column: column))
                        guard index < bytes.count else { throw endOfInput() }
                        if bytes[index] == UInt8(ascii: ",") {
                            index += 1
                            skipSpace()
                            let (next, nextLine, nextColumn) = try key(
                                after: "looking for beginning of object key string")
                            stack.append(.object(members, key: next, line: nextLine, column: nextColumn))
                        } else if bytes[index] == UInt8(ascii: "}") {
                            index += 1
                            completed = .object(members)
                            continue
                        } else {
                            throw invalid("after object key:value pair")
                        }
                    }
                    break
                }
            }
        }

        private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        /// A member's key and its colon.
        private mutating func key(after context: String) throws(SyntaxError) -> (String, Int, Int) {
            guard index < bytes.count else { throw endOfInput() }
            guard bytes[index] == UInt8(ascii: "\"") else { throw invalid(context) }
            let (line, column) = position(of: index)
            let key = try string()
            skipSpace()
            guard index < bytes.count else { throw endOfInput() }
            guard bytes[index] == UInt8(ascii: ":") else { throw invalid("after object key") }
            index += 1
            return (key, line, column)
        }

        private mutating func skipSpace() {
            while index < bytes.count,
                bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D
            {
                index += 1
            }
        }

        private mutating func literal(_ word: String) throws(SyntaxError) {
            for expected in word.utf8 {
                guard index < bytes.count else { throw endOfInput() }
                guard bytes[index] == expected else {
                    throw invalid("in literal \(word) (expecting \(Self.quote(expected)))")
                }
                index += 1
            }
        }

        private mutating func number() throws(SyntaxError) -> String {
            let start = index
            func digits(_ parser: inout Parser) -> Bool {
                let first = parser.index
                while let byte = parser.peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                    parser.index += 1
                }
                return parser.index > first
            }
            if peek == UInt8(ascii: "-") { index += 1 }
            guard let first = peek else { throw endOfInput() }
            if first == UInt8(ascii: "0") {
                index += 1
            } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(first) {
                _ = digits(&self)
            } else {
                throw invalid("in numeric literal")
            }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard peek != nil else { throw endOfInput() }
                guard digits(&self) else { throw invalid("after decimal point in numeric literal") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard peek != nil else { throw endOfInput() }
                guard digits(&self) else { throw invalid("in exponent of numeric literal") }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        /// A string literal; invalid UTF-8 and lone surrogates become U+FFFD, as Go decodes them.
        private mutating func string() throws(SyntaxError) -> String {
            index += 1  // the opening quote
            var raw: [UInt8] = []
            var scalars = String.UnicodeScalarView()
            func flush(_ raw: inout [UInt8], into scalars: inout String.UnicodeScalarView) {
                guard !raw.isEmpty else { return }
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            while true {
                guard index < bytes.count else { throw endOfInput() }
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    flush(&raw, into: &scalars)
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    index += 1
                    guard index < bytes.count else { throw endOfInput() }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): raw.append(escape)
                    case UInt8(ascii: "b"): raw.append(0x08)
                    case UInt8(ascii: "f"): raw.append(0x0C)
                    case UInt8(ascii: "n"): raw.append(0x0A)
                    case UInt8(ascii: "r"): raw.append(0x0D)
                    case UInt8(ascii: "t"): raw.append(0x09)
                    case UInt8(ascii: "u"):
                        flush(&raw, into: &scalars)
                        let unit = try hex4()
                        if (0xD800..<0xDC00).contains(unit), bytes.count - index >= 6,
                            bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        {
                            let save = index
                            index += 2
                            let low = try hex4()
                            if (0xDC00..<0xE000).contains(low) {
                                let combined = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                                scalars.append(Unicode.Scalar(combined) ?? "\u{FFFD}")
                                continue
                            }
                            index = save  // not a pair: the second escape is read on its own
                            scalars.append("\u{FFFD}")
                            continue
                        }
                        scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                    default:
                        index -= 1
                        throw invalid("in string escape code")
                    }
                case 0..<0x20:
                    throw invalid("in string literal")
                default:
                    raw.append(byte)
                    index += 1
                }
            }
        }

        private mutating func hex4() throws(SyntaxError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard index < bytes.count else { throw endOfInput() }
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw invalid("in \\u hexadecimal character escape")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        private func position(of offset: Int) -> (Int, Int) {
            var line = 1
            var lineStart = 0
            for (at, byte) in bytes[..<min(offset, bytes.count)].enumerated() where byte == 0x0A {
                line += 1
                lineStart = at + 1
            }
            return (line, offset - lineStart + 1)
        }

        private func error(_ message: String) -> SyntaxError {
            let (line, column) = position(of: index)
            return SyntaxError(message: message, line: line, column: column)
        }

        private func invalid(_ context: String) -> SyntaxError {
            error("invalid character \(Self.quote(bytes[index])) \(context)")
        }

        private func endOfInput() -> SyntaxError { error("unexpected end of JSON input") }

        /// Go's `quoteChar`: `'x'`, with escapes for quotes and control characters.
        static func quote(_ byte: UInt8) -> String {
            switch byte {
            case UInt8(ascii: "'"): return "'\\''"
            case UInt8(ascii: "\""): return "'\"'"
            case 0x0A: return "'\\n'"
            case 0x0D: return "'\\r'"
            case 0x09: return "'\\t'"
            case 0..<0x20, 0x7F: return "'\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16) + "'"
            case 0x80...: return "'\\x" + String(byte, radix: 16) + "'"
            default: return "'" + String(UnicodeScalar(byte)) + "'"
            }
        }
    }
}
