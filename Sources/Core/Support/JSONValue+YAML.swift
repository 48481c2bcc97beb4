import Foundation
import Yams

extension JSONValue {
    /// Parses YAML (JSON is YAML too) into the same data model, so YAML files get the same strict,
    /// key-by-key checking as JSON ones. An empty document is an empty object.
    public static func parseYAML(_ text: String, what: String) throws -> JSONValue {
        let node: Any?
        do {
            node = try Yams.load(yaml: text)
        } catch {
            throw InputError("\(what) is not valid YAML or JSON: \(error)", hint: "fix the syntax")
        }
        return try value(of: node, what: what)
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
