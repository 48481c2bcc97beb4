import Foundation
import Yams

extension JSONValue {
    /// Parses YAML (JSON is YAML too) into the same data model, so YAML files get the same strict,
    /// key-by-key checking as JSON ones. An empty document is an empty object.
    ///
    /// libyaml's composer and Yams' constructor recurse once per level of nesting, and aliases can
    /// repeat a subtree without end ("billion laughs"). So the text's possible depth is bounded
    /// first, parsing runs on a thread whose stack holds that depth, and the composed tree is
    /// counted, aliases expanded, before anything is built from it.
    public static func parseYAML(_ text: String, what: String) throws -> JSONValue {
        try YAMLLimits.checkNesting(text, what: what)
        return try YAMLLimits.onLargeStack {
            let node: Node?
            do {
                node = try Yams.compose(yaml: text)
            } catch {
                // libyaml quotes the offending line, which in a hostile file can be megabytes long.
                let detail = "\(error)"
                throw InputError(
                    "\(what) is not valid YAML or JSON: \(detail.count > 600 ? detail.prefix(600) + "…" : detail)",
                    hint: "fix the syntax")
            }
            guard let node else { return .object([:]) }
            try YAMLLimits.checkSize(node, what: what)
            return try value(of: node.any, what: what)
        }
    }

    private static func value(of node: Any?, what: String) throws -> JSONValue {
        switch node {
        case nil: return .object([:])
        case let value as Bool: return .bool(value)
        case let value as Int: return .number(Double(value))
        case let value as Double: return .number(value)
        case let value as String: return .string(value)
        case let value as [Any]: return .array(try value.map { try Self.value(of: $0, what: what) })
        case let value as [String: Any]: return .object(try value.mapValues { try Self.value(of: $0, what: what) })
        case is NSNull: return .null
        default: throw InputError("\(what): unsupported value \(String(describing: node))")
        }
    }
}

/// The bounds on YAML documents, far above any real config.
enum YAMLLimits {
    /// Flow collections (`[`, `{`) in the whole text, each of which may open a level.
    static let flowOpenings = 16_384
    /// Indentation and block indicators (`- `, `? `, `: `) leading one line: block levels.
    static let lineIndent = 1_024
    /// Values in the document once aliases are expanded.
    static let values = 100_000

    /// Bounds the depth from above without parsing: every level is a `[`/`{` somewhere or a column
    /// of indentation on some line, so counting those needs no YAML rules (quotes, comments) to be
    /// right.
    static func checkNesting(_ text: String, what: String) throws {
        var openings = 0
        var line = 1
        var leading = 0
        var atLineStart = true
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                leading = 0
                atLineStart = true
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                openings += 1
                guard openings <= flowOpenings else {
                    throw InputError(
                        "\(what) opens more than \(flowOpenings) `[`/`{` collections (line \(line)); no real config nests that deep",
                        hint: "check that the path names a config file")
                }
            default: break
            }
            if atLineStart {
                if [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":")]
                    .contains(byte)
                {
                    leading += 1
                    guard leading <= lineIndent else {
                        throw InputError(
                            "\(what) line \(line) is indented more than \(lineIndent) columns; no real config nests that deep",
                            hint: "check that the path names a config file")
                    }
                } else {
                    atLineStart = false
                }
            }
        }
    }

    /// Counts the document's values with aliases expanded, stopping at the bound.
    static func checkSize(_ root: Node, what: String) throws {
        var pending = [root]
        var count = 0
        while let node = pending.popLast() {
            count += 1
            guard count <= values else {
                throw InputError(
                    "\(what) expands to more than \(values) values (YAML aliases repeating a subtree?)",
                    hint: "write the values out; configs do not need aliases")
            }
            switch node {
            case .scalar: break
            case .sequence(let sequence): pending.append(contentsOf: sequence)
            case .mapping(let mapping):
                for (key, value) in mapping {
                    pending.append(key)
                    pending.append(value)
                }
            }
        }
    }

    /// Runs `body` on a thread with a 256 MiB stack (reserved, touched only as deep as the
    /// document goes): deep enough for the nesting `checkNesting` lets through.
    static func onLargeStack<T>(_ body: @escaping () throws -> T) throws -> T {
        try startThread(stackSize: 256 << 20, body)()
    }
}
