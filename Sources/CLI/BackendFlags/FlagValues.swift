import Core

/// How a flag group writes its values into `BuildOptions`: under the option's key, with the flag's
/// own spelling as the origin, so that errors name the flag the user typed.
extension BuildOptions {
    mutating func flag(_ key: String, _ value: String?) {
        if let value { set(key, .string(value), origin: "--" + key) }
    }

    mutating func flag(_ key: String, _ values: [String]) {
        if !values.isEmpty { set(key, .array(values.map(JSONValue.string)), origin: "--" + key) }
    }

    mutating func flag(_ key: String, _ isSet: Bool) {
        if isSet { set(key, .bool(true), origin: "--" + key) }
    }
}
