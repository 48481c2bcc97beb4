import Foundation

/// Backends and accelerators by name: builtins compiled into gvlt, plus the entries of plugins.json.
public final class PluginRegistry {
    public private(set) var builtinBackends: [String: any ImageBackend] = [:]
    public private(set) var builtinAccelerators: [String: any Accelerator] = [:]
    /// Every known entry after merging the plugins files, by name.
    public private(set) var entries: [String: PluginEntry] = [:]
    /// What the host builds for plugin backends that ask (registered by the linuxvm module).
    public private(set) var componentProvider: HostComponentProvider?

    public init() {}

    /// Called by each backend module to make itself available under its name.
    public func register(backend: any ImageBackend) {
        builtinBackends[backend.name] = backend
        entries[backend.name] = PluginEntry(name: backend.name, kind: .builtin, role: .backend, description: backend.description,
                                            origin: "builtin")
    }

    public func register(accelerator: any Accelerator) {
        builtinAccelerators[accelerator.name] = accelerator
        entries[accelerator.name] = PluginEntry(name: accelerator.name, kind: .builtin, role: .accelerator,
                                                description: accelerator.description, origin: "builtin")
    }

    public func register(components provider: HostComponentProvider) {
        componentProvider = provider
    }

    /// Merges plugins files in order; later files override earlier entries with the same name.
    /// Missing files are skipped; malformed ones are errors.
    public func load(files: [String]) throws {
        for file in files where FileManager.default.fileExists(atPath: file) {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw InputError("cannot read \(file)", hint: "check its permissions")
            }
            try merge(PluginsFile.parse(data, origin: file))
        }
    }

    public func merge(_ newEntries: [PluginEntry]) throws {
        for entry in newEntries {
            if entry.kind == .builtin {
                let known = entry.role == .backend ? builtinBackends[entry.name] != nil : builtinAccelerators[entry.name] != nil
                guard known else {
                    let names = (entry.role == .backend ? Array(builtinBackends.keys) : Array(builtinAccelerators.keys)).sorted()
                    throw InputError("\(entry.origin): `\(entry.name)` is not a builtin \(entry.role.rawValue)",
                                     hint: "builtin \(entry.role.rawValue)s: \(names.joined(separator: ", "))")
                }
            }
            var merged = entry
            if merged.description == nil { merged.description = entries[entry.name]?.description }
            entries[entry.name] = merged
        }
    }

    public func entries(role: PluginEntry.Role) -> [PluginEntry] {
        entries.values.filter { $0.role == role }.sorted { $0.name < $1.name }
    }

    public func backend(named name: String) throws -> any ImageBackend {
        guard let entry = entries[name], entry.role == .backend else {
            throw InputError("unknown backend `\(name)`", hint: suggestion(for: name, role: .backend))
        }
        guard entry.kind == .builtin else { return try ExternalBackend(plugin: ExternalPlugin(entry: entry), components: componentProvider) }
        return builtinBackends[name]!
    }

    public func accelerator(named name: String) throws -> any Accelerator {
        guard let entry = entries[name], entry.role == .accelerator else {
            throw InputError("unknown accelerator `\(name)`", hint: suggestion(for: name, role: .accelerator))
        }
        guard entry.kind == .builtin else { return try ExternalAccelerator(plugin: ExternalPlugin(entry: entry)) }
        return builtinAccelerators[name]!
    }

    /// Which builtin outside `names` declares each option key: `the nanos backend`, `--accel nvidia`.
    /// It lets a build that got another party's option say whose it is.
    public func optionOwners(except names: [String]) -> [String: String] {
        var owners: [String: String] = [:]
        for (name, accelerator) in builtinAccelerators.sorted(by: { $0.key < $1.key }) where !names.contains(name) {
            for key in accelerator.optionKeys ?? [] where owners[key] == nil { owners[key] = "--accel \(name)" }
        }
        for (name, backend) in builtinBackends.sorted(by: { $0.key < $1.key }) where !names.contains(name) {
            for key in backend.optionKeys ?? [] where owners[key] == nil { owners[key] = "the \(name) backend" }
        }
        return owners
    }

    public static func status(of entry: PluginEntry) -> String {
        entry.kind == .builtin ? "available" : "available (\(entry.kind.rawValue) plugin, \(PluginProtocol.name))"
    }

    private func suggestion(for name: String, role: PluginEntry.Role) -> String {
        let names = entries(role: role).map(\.name)
        let close = Suggestions.closest(to: name, in: names).map { "did you mean `\($0)`? " } ?? ""
        return "\(close)available \(role.rawValue)s: \(names.joined(separator: ", ")) (see `gvlt backends`)"
    }
}
