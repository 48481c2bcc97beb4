import Foundation

/// One entry of `plugins.json`.
public struct PluginEntry: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        /// Compiled into gvlt.
        case builtin
        /// A separate program speaking the gvlt-plugin protocol over stdin/stdout.
        case exec
        /// A shared library loaded in-process.
        case dylib
    }

    public enum Role: String, Codable, CaseIterable, Sendable {
        case backend, accelerator
    }

    public var name: String
    public var kind: Kind
    public var role: Role
    public var description: String?
    /// Program or library path (`exec`, `dylib`).
    public var path: String?
    /// Program and leading arguments (`exec`), as an alternative to `path`.
    public var command: [String]?
    /// Declared protocol version, e.g. `gvlt-plugin/1`.
    public var `protocol`: String?
    /// Expected sha256 of the plugin file.
    public var sha256: String?
    /// Free-form options passed through to the plugin.
    public var options: [String: JSONValue]?
    /// `dylib`: the entry points' C declarations, `call` and `free`
    /// (e.g. `"call": "char *myplugin_call(const char *)"`).
    public var symbols: [String: String]?
    /// `exec`: one process answers all of a run's requests, line by line (ExecStream), instead of
    /// one process per request.
    public var stream: Bool?
    /// The file this entry came from.
    public var origin: String
}

/// `plugins.json`: `{"schema": 1, "plugins": [ {name, kind, role, …} ]}`.
public enum PluginsFile {
    public static let schemaVersion = 1
    static let entryKeys = [
        "name", "kind", "role", "description", "path", "command", "protocol", "sha256", "options", "symbols", "stream"
    ]

    public static func parse(_ data: Data, origin: String) throws -> [PluginEntry] {
        let top = try StrictObject(
            try JSONValue.parse(data, what: origin), location: origin, allowed: ["schema", "plugins"])
        guard let schema = try top.integer("schema") else {
            throw InputError(
                "\(origin): missing required key `schema`", hint: "start the file with \"schema\": \(schemaVersion)")
        }
        guard schema == schemaVersion else {
            throw UnsupportedError(
                "\(origin): schema \(schema) is not supported; this gvlt reads schema \(schemaVersion)",
                hint: schema > schemaVersion ? "upgrade gvlt" : "rewrite the file for schema \(schemaVersion)")
        }
        guard case .array(let items)? = top.fields["plugins"] else {
            throw InputError("\(origin): `plugins` must be a list of plugin entries")
        }
        var seen = Set<String>()
        return try items.enumerated().map { index, item in
            let location = "\(origin): plugins[\(index)]"
            let object = try StrictObject(item, location: location, allowed: entryKeys)
            let name = try object.string("name", required: true)!
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw InputError("\(location).name: `\(name)` must be letters, digits, `-` or `_`")
            }
            guard seen.insert(name).inserted else { throw InputError("\(location).name: `\(name)` is listed twice") }
            let kind = PluginEntry.Kind(
                rawValue: try object.enumeration(
                    "kind", values: PluginEntry.Kind.allCases.map(\.rawValue), required: true)!)!
            let role = PluginEntry.Role(
                rawValue: try object.enumeration(
                    "role", values: PluginEntry.Role.allCases.map(\.rawValue), required: true)!)!
            let path = try object.string("path")
            let command = try object.strings("command")
            if kind == .exec && path == nil && command == nil {
                throw InputError("\(location): an exec plugin needs `path` or `command`")
            }
            if kind == .dylib && path == nil { throw InputError("\(location): a dylib plugin needs `path`") }
            let sha256 = try object.string("sha256")
            if let sha256, !(sha256.count == 64 && sha256.allSatisfy(\.isHexDigit)) {
                throw InputError("\(location).sha256: expected 64 hex digits")
            }
            var options: [String: JSONValue]?
            if let value = object.fields["options"] {
                guard case .object(let fields) = value else {
                    throw InputError("\(location).options: expected an object, found \(value.typeName)")
                }
                options = fields
            }
            var symbols: [String: String]?
            if let value = object.fields["symbols"] {
                let table = try StrictObject(value, location: location + ".symbols", allowed: ["call", "free"])
                symbols = [:]
                for key in ["call", "free"] { symbols![key] = try table.string(key, required: true) }
            }
            if kind == .dylib && symbols == nil {
                throw InputError(
                    "\(location): a dylib plugin needs `symbols` with the C declarations of `call` and `free`",
                    hint:
                        "e.g. \"symbols\": {\"call\": \"char *myplugin_call(const char *)\", \"free\": \"void myplugin_free(char *)\"}"
                )
            }
            let stream = try object.bool("stream")
            if stream == true && kind != .exec {
                throw InputError("\(location).stream: only exec plugins stream requests")
            }
            return PluginEntry(
                name: name, kind: kind, role: role, description: try object.string("description"), path: path,
                command: command, protocol: try object.string("protocol"), sha256: sha256, options: options,
                symbols: symbols,
                stream: stream, origin: origin)
        }
    }

    /// The files consulted, lowest precedence first: the copy shipped with gvlt, the user's config,
    /// `./plugins.json`, then each path in `GVLT_PLUGINS` (colon-separated). Later entries override
    /// earlier ones by name.
    public static func searchPath(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        installation: Installation = Installation()
    ) -> [String] {
        var paths: [String] = []
        if let shipped = installation.shippedPluginsFile() { paths.append(shipped.path) }
        let configHome =
            environment["XDG_CONFIG_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? (environment["HOME"].map { $0 + "/.config" } ?? NSHomeDirectory() + "/.config")
        paths.append(configHome + "/gvlt/plugins.json")
        paths.append(FileManager.default.currentDirectoryPath + "/plugins.json")
        if let extra = environment["GVLT_PLUGINS"] {
            paths += extra.split(separator: ":").map(String.init)
        }
        var unique: [String] = []
        for path in paths where !unique.contains(path) { unique.append(path) }
        return unique
    }
}
