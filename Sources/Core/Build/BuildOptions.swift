/// The option values of one build, before any backend or accelerator has read them: from flags,
/// the build config file's `options:` and `--option KEY=VALUE`. Each value remembers where it was
/// written, so that an error about it can point there.
public struct BuildOptions: Sendable, Equatable {
    public struct Value: Sendable, Equatable {
        public var json: JSONValue
        /// As the user wrote it: `--kernel`, `--option kernel`, `build.yaml: options.kernel`.
        public var origin: String

        public init(_ json: JSONValue, origin: String) {
            self.json = json
            self.origin = origin
        }
    }

    public private(set) var values: [String: Value] = [:]

    public init() {}

    /// Values that all come from one place, e.g. a test's or a plugin entry's.
    public init(_ values: [String: JSONValue], origin: String = "options") {
        for (key, value) in values { self.values[key] = Value(value, origin: "\(origin).\(key)") }
    }

    /// Sets `key`; a later value replaces an earlier one (flags are set last, so they win).
    public mutating func set(_ key: String, _ value: JSONValue, origin: String) {
        values[key] = Value(value, origin: origin)
    }

    public var keys: [String] { values.keys.sorted() }
    public var isEmpty: Bool { values.isEmpty }

    public subscript(key: String) -> JSONValue? { values[key]?.json }

    public func origin(of key: String) -> String { values[key]?.origin ?? "option `\(key)`" }

    /// The values whose keys are in `keys`.
    public func only(_ keys: Set<String>) -> BuildOptions {
        var result = BuildOptions()
        result.values = values.filter { keys.contains($0.key) }
        return result
    }

    public var json: [String: JSONValue] { values.mapValues(\.json) }
}

/// Typed settings of a backend or an accelerator, decoded once from `BuildOptions` with
/// `SettingsDecoder`. `CodingKeys` is the key list: a key outside it is an error that names the
/// closest one.
public protocol BuildSettings: Decodable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

extension BuildSettings {
    public static var optionKeys: [String] { CodingKeys.allCases.map(\.stringValue) }

    public static func decode(_ options: BuildOptions) throws -> Self {
        try SettingsDecoder.decode(Self.self, from: options)
    }
}
