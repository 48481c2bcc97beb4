import Foundation

/// Backends and accelerators by name: builtins compiled into gvlt, plus the entries of plugins.json.
public final class PluginRegistry {
    public private(set) var builtinBackends: [String: any ImageBackend] = [:]
    public private(set) var builtinAccelerators: [String: any Accelerator] = [:]
    /// Every known entry after merging the plugins files, by name.
    public private(set) var entries: [String: PluginEntry] = [:]
    /// What the host builds for plugin backends that ask (registered by the linuxvm module).
    public private(set) var componentProvider: HostComponentProvider?

    /// The run, inspect and extract roles of the builtin backends, in registration order.
    public private(set) var runners: [any ImageRunning] = []
    public private(set) var inspectors: [any ImageInspecting] = []
    public private(set) var extractors: [any ImageExtracting] = []

    public init() {}

    public func register(runner: any ImageRunning) { runners.append(runner) }
    /// The runner that boots a Firestarter-layout disk, for plugins with a `run` role.
    public private(set) var diskRunner: (any ImageRunning)?
    public func register(diskRunner: any ImageRunning) { self.diskRunner = diskRunner }
    public func register(inspector: any ImageInspecting) { inspectors.append(inspector) }
    public func register(extractor: any ImageExtracting) { extractors.append(extractor) }

    /// The runner most sure that `image` is its kind; unless a builtin is certain, backend plugins
    /// that offer `run` are asked too.
    public func runner(for image: String) throws -> any ImageRunning {
        if let certain = runners.first(where: { $0.recognizes(image: image) == .certain }) { return certain }
        let candidates =
            runners + pluginRoles("run") { plugin in diskRunner.flatMap { ExternalRunner(plugin: plugin, disks: $0) } }
        return try best(
            candidates, image: image, recognizes: { $0.recognizes(image: $1) }, names: candidates.map(\.name),
            verb: "run")
    }

    /// The runner for the request's image, refusing options only another kind of image takes.
    public func runner(for request: RunRequest) throws -> any ImageRunning {
        let runner = try runner(for: request.image)
        let stray = request.options.keys.filter { !runner.runOptionKeys.contains($0) }
        guard !stray.isEmpty else { return runner }
        let origins = stray.map(request.options.origin(of:))
        let owner = runners.first { other in stray.allSatisfy(other.runOptionKeys.contains) }?.imageKind ?? "other"
        throw InputError(
            "\(origins.joined(separator: " and ")) \(stray.count == 1 ? "is" : "are") for \(owner) images; \(request.image) is not one",
            hint:
                "\(runner.imageKind) images take --input/--output, --env and --command; drop \(stray.count == 1 ? "it" : "them")"
        )
    }

    /// The builtin inspector most sure of `image`; unless one is certain, backend plugins that
    /// offer `inspect` are asked too (each one's describe and recognize cost a request).
    public func inspector(for image: String) throws -> any ImageInspecting {
        if let certain = inspectors.first(where: { $0.recognizes(image: image) == .certain }) { return certain }
        let candidates = inspectors + pluginRoles("inspect", ExternalInspector.init(plugin:))
        return try best(
            candidates, image: image, recognizes: { $0.recognizes(image: $1) }, names: candidates.map(\.name),
            verb: "inspect")
    }

    /// A role of each exec and dylib backend in the plugins files; a plugin that fails to load is
    /// skipped with a warning, as it would fail any build too.
    func pluginRoles<Role>(_ verb: String, _ make: (ExternalPlugin) -> Role?) -> [Role] {
        entries(role: .backend).filter { $0.kind != .builtin }.compactMap { entry in
            do {
                return make(try ExternalPlugin(entry: entry))
            } catch {
                FileHandle.standardError.write(
                    Data("warning: skipping plugin `\(entry.name)` for \(verb): \(error)\n".utf8))
                return nil
            }
        }
    }

    public func extractor(for image: String) throws -> any ImageExtracting {
        try best(
            extractors, image: image, recognizes: { $0.recognizes(image: $1) }, names: extractors.map(\.name),
            verb: "extract")
    }

    private func best<Role>(
        _ roles: [Role], image: String, recognizes: (Role, String) -> ImageRecognition, names: [String],
        verb: String
    ) throws -> Role {
        var chosen: (Role, ImageRecognition)?
        for role in roles {
            let recognition = recognizes(role, image)
            if recognition > (chosen?.1 ?? .no) { chosen = (role, recognition) }
        }
        guard let (role, _) = chosen else {
            let kinds = names.joined(separator: " or ")
            throw UnsupportedError(
                "\(image) is not a \(kinds) image; gvlt \(verb) reads \(kinds) images",
                hint: "gvlt inspect \(image) tells what kind of image it is")
        }
        return role
    }

    /// Called by each backend module to make itself available under its name.
    public func register(backend: any ImageBackend) {
        builtinBackends[backend.name] = backend
        entries[backend.name] = PluginEntry(
            name: backend.name, kind: .builtin, role: .backend, description: backend.description,
            origin: "builtin")
    }

    public func register(accelerator: any Accelerator) {
        builtinAccelerators[accelerator.name] = accelerator
        entries[accelerator.name] = PluginEntry(
            name: accelerator.name, kind: .builtin, role: .accelerator,
            description: accelerator.description, origin: "builtin")
    }

    public func register(components provider: HostComponentProvider) {
        componentProvider = provider
    }

    /// Merges plugins files in order; later files override earlier entries with the same name.
    /// Missing files are skipped; malformed ones are errors.
    public func load(files: [String]) throws {
        for file in files where FileManager.default.fileExists(atPath: file) {
            let data = try ConfigFile.read(
                file, what: "plugins file \(file)",
                hint: "fix or remove it; GVLT_PLUGINS lists the plugins files gvlt reads")
            try merge(PluginsFile.parse(data, origin: file))
        }
    }

    public func merge(_ newEntries: [PluginEntry]) throws {
        for entry in newEntries {
            if entry.kind == .builtin {
                let known =
                    entry.role == .backend ? builtinBackends[entry.name] != nil : builtinAccelerators[entry.name] != nil
                guard known else {
                    let names = (entry.role == .backend ? Array(builtinBackends.keys) : Array(builtinAccelerators.keys))
                        .sorted()
                    throw InputError(
                        "\(entry.origin): `\(entry.name)` is not a builtin \(entry.role.rawValue)",
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
        guard entry.kind == .builtin else {
            return try ExternalBackend(plugin: ExternalPlugin(entry: entry), components: componentProvider)
        }
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
