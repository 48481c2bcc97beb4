import Foundation

/// A parsed JSON (or YAML) document kept as data, for configuration files whose keys we check one by
/// one so that errors can name the exact key, its location and the closest valid key.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Parses JSON; a syntax error names the line and column.
    public static func parse(_ data: Data, what: String) throws -> JSONValue {
        if let (location, detail) = syntaxProblem(in: data) {
            throw InputError("\(what) is not valid JSON\(location): \(detail)", hint: "fix the syntax\(location)")
        }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw InputError("\(what) is not valid JSON: \(error)")
        }
    }

    /// Where `data` stops being JSON, as (" at line L, column C", what the parser expected), or nil
    /// when it is JSON. Nesting past 512 levels is such a problem too.
    static func syntaxProblem(in data: Data) -> (String, String)? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            var location = ""
            if let range = detail.range(of: #"character (\d+)"#, options: .regularExpression),
                let offset = Int(detail[range].split(separator: " ").last!)
            {
                let (line, column) = lineAndColumn(data, offset: offset)
                location = " at line \(line), column \(column)"
            }
            return (location, detail)
        }
    }

    static func lineAndColumn(_ data: Data, offset: Int) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}

/// Reads keys of a config object strictly: unknown keys are errors that suggest the closest known key,
/// and type errors name the key and the type expected.
public struct StrictObject {
    public let fields: [String: JSONValue]
    /// Where this object is, for messages: "plugins.json: plugins[2]".
    public let location: String

    public init(_ value: JSONValue, location: String, allowed: [String]) throws {
        guard case .object(let fields) = value else {
            throw InputError("\(location): expected an object, found \(value.typeName)")
        }
        for key in fields.keys.sorted() where !allowed.contains(key) {
            let suggestion = Suggestions.closest(to: key, in: allowed).map { "did you mean `\($0)`? " } ?? ""
            throw InputError(
                "\(location): unknown key `\(key)`",
                hint: "\(suggestion)valid keys: \(allowed.joined(separator: ", "))")
        }
        self.fields = fields
        self.location = location
    }

    public func string(_ key: String, required: Bool = false) throws -> String? {
        switch fields[key] {
        case nil, .null?:
            if required { throw InputError("\(location): missing required key `\(key)` (a string)") }
            return nil
        case .string(let value)?: return value
        case let other?: throw InputError("\(location).\(key): expected a string, found \(other.typeName)")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        case let other?: throw InputError("\(location).\(key): expected true or false, found \(other.typeName)")
        }
    }

    public func integer(_ key: String) throws -> Int? {
        switch fields[key] {
        case nil, .null?: return nil
        case .number(let value)? where Int(exactly: value) != nil: return Int(exactly: value)!
        case .number(let value)?: throw InputError("\(location).\(key): expected an integer, found \(value.jsonText)")
        case let other?: throw InputError("\(location).\(key): expected an integer, found \(other.typeName)")
        }
    }

    public func strings(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let value)?: return [value]
        case .array(let items)?:
            return try items.enumerated().map { index, item in
                guard case .string(let value) = item else {
                    throw InputError("\(location).\(key)[\(index)]: expected a string, found \(item.typeName)")
                }
                return value
            }
        case let other?: throw InputError("\(location).\(key): expected a list of strings, found \(other.typeName)")
        }
    }

    public func enumeration(_ key: String, values: [String], required: Bool = false) throws -> String? {
        guard let value = try string(key, required: required) else { return nil }
        guard values.contains(value) else {
            let suggestion = Suggestions.closest(to: value, in: values).map { "did you mean `\($0)`? " } ?? ""
            throw InputError(
                "\(location).\(key): `\(value)` is not one of \(values.joined(separator: ", "))",
                hint: suggestion.isEmpty ? nil : suggestion)
        }
        return value
    }
}

public enum Suggestions {
    /// The candidate closest to `word` by edit distance (case-insensitive), if it is close enough.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        let lowered = Array(word.lowercased())
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, Array(candidate.lowercased()))
            if distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
        }
        guard let (candidate, distance) = best, distance <= max(2, word.count / 3) else { return nil }
        return candidate
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension Double {
    /// A JSON number as written, for messages and string options: a whole number without a
    /// fraction (`3`, not `3.0`), anything else (`0.5`, `1e+300`) as Swift prints it. Whole numbers
    /// beyond Int64 are printed as doubles too: converting them would trap.
    public var jsonText: String {
        if let whole = Int64(exactly: self) { return String(whole) }
        return String(self)
    }
}

// Literals, so that settings and tests can write option values as they read.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}
