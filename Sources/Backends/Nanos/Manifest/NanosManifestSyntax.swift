import Core
import Foundation

/// Nanos' manifest syntax, the text its mkfs reads (`(name:value …)` tuples, `[…]` vectors, bare
/// or double-quoted strings, `#` comments), as Nanos' tuple parser defines it: a bare name ends at
/// whitespace, `()[]`, `:`, `|` or `/`; a bare value at whitespace or `()[]`; a quoted string has no
/// escapes, so a `"` cannot be written at all. `write` quotes what needs it and refuses what cannot
/// be said; `parse` reads the text back, so that what gvlt prints is checked against the grammar.
public enum NanosManifestSyntax {
    /// `value` as manifest text, indented two spaces per level; `what` names it in errors.
    public static func write(_ value: TFSValue, what: String) throws -> String {
        var out = ""
        try write(value, indent: 0, into: &out, what: what)
        return out
    }

    static func write(_ value: TFSValue, indent: Int, into out: inout String, what: String) throws {
        switch value {
        case .tuple(let tuple):
            let pairs = tuple.sortedPairs
            if pairs.isEmpty {
                out += "()"
                return
            }
            out += "("
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out += "\n" + String(repeating: " ", count: indent + 1) }
                let name = String(decoding: pair.key, as: UTF8.self)
                out += try quoted(name, bare: isBareName, what: "\(what): name `\(name)`") + ":"
                try write(pair.value, indent: indent + 1, into: &out, what: "\(what).\(name)")
            }
            out += ")"
        case .vector(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += " " }
                try write(item, indent: indent + 1, into: &out, what: "\(what)[\(index)]")
            }
            out += "]"
        case .string(let bytes):
            let text = String(decoding: bytes, as: UTF8.self)
            out += try quoted(text, bare: isBareValue, what: "\(what): `\(text)`")
        case .integer(let number):
            out += String(number)
        case .buffer:
            throw InputError("\(what) is raw bytes, which a Nanos manifest cannot hold")
        }
    }

    static func quoted(_ text: String, bare: (String) -> Bool, what: String) throws -> String {
        if bare(text) { return text }
        guard !text.contains("\"") else {
            throw InputError(
                "\(what) holds a double quote, which Nanos' manifest syntax cannot write",
                hint: "the image itself can hold it; only --print-manifest cannot show it")
        }
        return "\"" + text + "\""
    }

    static func isBareName(_ text: String) -> Bool {
        !text.isEmpty && text.first != "#" && text.first != "\""
            && !text.unicodeScalars.contains { " \n\t()[]:|/".unicodeScalars.contains($0) }
    }

    static func isBareValue(_ text: String) -> Bool {
        !text.isEmpty && text.first != "#" && text.first != "\"" && text.first != "(" && text.first != "["
            && !text.unicodeScalars.contains { " \n\t()[]".unicodeScalars.contains($0) }
    }

    /// Reads manifest text: one value, comments and whitespace around it. Vectors come back as
    /// `.vector`, every string as `.string`.
    public static func parse(_ text: String) throws -> TFSValue {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.at == parser.bytes.count else { throw parser.error("text after the manifest's value") }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        var at = 0

        func error(_ what: String) -> InputError { InputError("manifest syntax, byte \(at): \(what)") }

        mutating func skipSpace() {
            while at < bytes.count {
                switch bytes[at] {
                case 0x20, 0x0A, 0x09: at += 1
                case UInt8(ascii: "#"):
                    while at < bytes.count && bytes[at] != 0x0A { at += 1 }
                default: return
                }
            }
        }

        mutating func value() throws -> TFSValue {
            guard at < bytes.count else { throw error("a value is missing") }
            switch bytes[at] {
            case UInt8(ascii: "("):
                at += 1
                let tuple = TFSTuple()
                while true {
                    skipSpace()
                    guard at < bytes.count else { throw error("an unclosed (") }
                    if bytes[at] == UInt8(ascii: ")") {
                        at += 1
                        return .tuple(tuple)
                    }
                    let name = try string(endingAt: Array(" \n\t()[]:|/".utf8))
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else {
                        throw error("`:` expected after \(name)")
                    }
                    at += 1
                    skipSpace()
                    tuple[Array(name.utf8)] = try value()
                }
            case UInt8(ascii: "["):
                at += 1
                var items: [TFSValue] = []
                while true {
                    skipSpace()
                    guard at < bytes.count else { throw error("an unclosed [") }
                    if bytes[at] == UInt8(ascii: "]") {
                        at += 1
                        return .vector(items)
                    }
                    items.append(try value())
                }
            default:
                return .string(try string(endingAt: Array(" \n\t()[]".utf8)))
            }
        }

        mutating func string(endingAt terminals: [UInt8]) throws -> String {
            if at < bytes.count, bytes[at] == UInt8(ascii: "\"") {
                at += 1
                let start = at
                while at < bytes.count && bytes[at] != UInt8(ascii: "\"") { at += 1 }
                guard at < bytes.count else { throw error("an unclosed quote") }
                defer { at += 1 }
                return String(decoding: bytes[start..<at], as: UTF8.self)
            }
            let start = at
            while at < bytes.count && !terminals.contains(bytes[at]) { at += 1 }
            guard at > start else { throw error("a name or value is missing") }
            return String(decoding: bytes[start..<at], as: UTF8.self)
        }
    }
}
