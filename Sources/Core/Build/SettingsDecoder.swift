import Foundation

/// Decodes `BuildSettings` from option values. Flags and `--option` give strings, the config file
/// gives JSON/YAML values, so a scalar is read leniently: `"true"` is a boolean, `"512"` a
/// number, and a single string is a one-item list. A wrong type is an `InputError` that names
/// where the value was written.
public enum SettingsDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from options: BuildOptions) throws -> T {
        try T(from: OptionsDecoder(options: options))
    }

    /// `true`/`false` (also `yes`/`no`, as the config file's YAML spells them), from either form.
    static func bool(_ value: JSONValue, origin: String) throws -> Bool {
        switch value {
        case .bool(let flag): return flag
        case .string(let text):
            if let flag = ["true": true, "false": false, "yes": true, "no": false][text.lowercased()] { return flag }
            throw InputError("\(origin): `\(text)` is not true or false")
        default: throw InputError("\(origin): expected true or false, found \(value.typeName)")
        }
    }

    static func string(_ value: JSONValue, origin: String) throws -> String {
        switch value {
        case .string(let text): return text
        case .number(let number): return number.jsonText
        case .bool(let flag): return String(flag)
        default: throw InputError("\(origin): expected a string, found \(value.typeName)")
        }
    }

    static func integer(_ value: JSONValue, origin: String) throws -> Int {
        switch value {
        case .number(let number):
            if let integer = Int(exactly: number) { return integer }
            throw InputError("\(origin): expected a whole number, found \(number.jsonText)")
        case .string(let text):
            if let integer = Int(text) { return integer }
            throw InputError("\(origin): `\(text)` is not a whole number")
        default: throw InputError("\(origin): expected a whole number, found \(value.typeName)")
        }
    }

    static func strings(_ value: JSONValue, origin: String) throws -> [String] {
        switch value {
        case .array(let items): return try items.enumerated().map { try string($1, origin: "\(origin)[\($0)]") }
        default: return [try string(value, origin: origin)]
        }
    }
}

private struct OptionsDecoder: Decoder {
    let options: BuildOptions
    var codingPath: [CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(OptionsContainer<Key>(options: options))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        throw UnsupportedError("settings are a mapping of options, not a list")
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer {
        throw UnsupportedError("settings are a mapping of options, not one value")
    }
}

private struct OptionsContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let options: BuildOptions
    var codingPath: [CodingKey] = []
    var allKeys: [Key] { options.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { options[key.stringValue] != nil }

    func value(_ key: Key) throws -> (JSONValue, String) {
        guard let value = options[key.stringValue] else {
            throw InputError("option `\(key.stringValue)` is required")
        }
        return (value, options.origin(of: key.stringValue))
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        options[key.stringValue] == nil || options[key.stringValue] == .null
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        let (value, origin) = try self.value(key)
        return try SettingsDecoder.bool(value, origin: origin)
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        let (value, origin) = try self.value(key)
        return try SettingsDecoder.string(value, origin: origin)
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        let (value, origin) = try self.value(key)
        return try SettingsDecoder.integer(value, origin: origin)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let (value, origin) = try self.value(key)
        if T.self == [String].self { return try SettingsDecoder.strings(value, origin: origin) as! T }
        if T.self == JSONValue.self { return value as! T }
        throw UnsupportedError("\(origin): settings of type \(T.self) cannot be decoded from options")
    }

    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { throw unsupported(type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw unsupported(type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { throw unsupported(type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { throw unsupported(type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { throw unsupported(type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { throw unsupported(type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { throw unsupported(type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { throw unsupported(type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { throw unsupported(type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { throw unsupported(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { throw unsupported(type, key) }

    func unsupported(_ type: Any.Type, _ key: Key) -> Error {
        UnsupportedError("option `\(key.stringValue)`: settings of type \(type) cannot be decoded from options")
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        throw unsupported(type, key)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        throw unsupported([Any].self, key)
    }
    func superDecoder() throws -> Decoder { throw UnsupportedError("settings have no superclass") }
    func superDecoder(forKey key: Key) throws -> Decoder { throw unsupported(Decoder.self, key) }
}
