import Foundation
import Logging

/// The transport of a plugin request: a process (`exec`) or a library in this process (`dylib`).
protocol PluginTransport {
    func call(_ method: String, params: [String: Any], progress: ProgressReporter?, logger: Logger?) throws -> [String:
        Any]
}

extension ExecPlugin: PluginTransport {}

/// An `exec` or `dylib` plugin after `describe`: how to reach it, and what it said about itself,
/// checked against its plugins.json entry (protocol version and role). Backends and accelerators
/// are both built on it.
public final class ExternalPlugin {
    public let entry: PluginEntry
    /// The `describe` result, as the plugin sent it.
    public let described: [String: Any]
    /// The transport for a request with this timeout (exec plugins are killed past it).
    let transport: (Double) throws -> PluginTransport
    let requestTimeout: Double

    public init(entry: PluginEntry) throws {
        self.entry = entry
        if let declared = entry.protocol { try PluginProtocol.check(declared, plugin: entry.name) }
        switch entry.kind {
        case .exec where entry.stream == true:
            let session = ExecStream(entry: entry)
            transport = { timeout in
                session.timeout = timeout
                return session
            }
        case .exec: transport = { ExecPlugin(entry: entry, timeout: $0) }
        case .dylib:
            let library = try DylibPlugin(entry: entry)
            transport = { _ in library }
        case .builtin: preconditionFailure("builtin plugins are not external")
        }
        let timeouts = Self.timeouts(entry)
        requestTimeout = timeouts.request
        let result = try transport(timeouts.describe).call("describe", params: [:], progress: nil, logger: nil)
        guard let spoken = result["protocol"] as? String else {
            throw InputError("plugin `\(entry.name)`'s describe result has no `protocol`")
        }
        try PluginProtocol.check(spoken, plugin: entry.name)
        guard (result["role"] as? String) == entry.role.rawValue else {
            throw InputError(
                "plugin `\(entry.name)` is listed as \(entry.role == .backend ? "a backend" : "an accelerator") in \(entry.origin), but describes itself as `\(result["role"] as? String ?? "nothing")`",
                hint: "fix `role` in \(entry.origin)")
        }
        described = result
    }

    /// `options.timeout` in plugins.json: seconds for a build or contribute request (default 3600);
    /// describe gets at most 30 s.
    static func timeouts(_ entry: PluginEntry) -> (describe: Double, request: Double) {
        if case .number(let seconds)? = entry.options?["timeout"], seconds > 0 { return (min(30, seconds), seconds) }
        return (30, 3600)
    }

    /// How the plugin wants the root tree (describe's `input`).
    public enum InputForm: String, CaseIterable {
        /// `root_tar`: the tree as a POSIX tar, contents included.
        case rootfsTar = "rootfs-tar"
        /// `root_listing`: one JSON line per entry with its metadata and no contents.
        case fileListing = "file-listing"
        /// Neither.
        case none
    }

    /// describe's `input`, or `fallback` when it names none.
    func inputForm(default fallback: InputForm) throws -> InputForm {
        guard let text = described["input"] as? String else { return fallback }
        guard let form = InputForm(rawValue: text) else {
            throw InputError(
                "plugin `\(name)` asks for the input `\(text)`, which gvlt does not provide",
                hint: "describe's `input` is one of \(InputForm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return form
    }

    /// The root tree in the form the plugin asked for, as its request parameter.
    func rootParameter(_ form: InputForm, image: LoadedImage, scratch: String, context: BuildContext) throws -> (
        String, String
    )? {
        switch form {
        case .rootfsTar: return ("root_tar", try writeRootTar(image, scratch: scratch, context: context))
        case .fileListing: return ("root_listing", try writeRootListing(image, scratch: scratch))
        case .none: return nil
        }
    }

    /// The root tree as JSON lines, for plugins that need its shape but not its bytes (an SBOM, a
    /// policy check): path, type, mode, owner, time, size, link target, device numbers, xattr names.
    func writeRootListing(_ image: LoadedImage, scratch: String) throws -> String {
        let path = scratch + "/root-listing.jsonl"
        var text = Data()
        for entry in image.tree.entries() where !entry.path.isEmpty {
            var item: [String: Any] = [
                "path": entry.path, "type": entry.kind.name, "mode": Int(entry.metadata.permissions),
                "uid": Int(entry.metadata.uid), "gid": Int(entry.metadata.gid),
                "mtime": Int(entry.metadata.mtime.seconds)
            ]
            switch entry.kind {
            case .regularFile(let content): item["size"] = Int(content.size)
            case .symlink(let target), .hardlink(let target): item["target"] = target
            case .characterDevice(let major, let minor), .blockDevice(let major, let minor):
                item["major"] = Int(major); item["minor"] = Int(minor)
            default: break
            }
            if !entry.metadata.xattrs.isEmpty { item["xattrs"] = entry.metadata.xattrs.keys.sorted() }
            text.append(
                try JSONSerialization.data(withJSONObject: item, options: [.sortedKeys, .withoutEscapingSlashes]))
            text.append(0x0A)
        }
        try text.write(to: URL(fileURLWithPath: path))
        return path
    }

    public var name: String { entry.name }
    public var capabilities: [String: Any] { described["capabilities"] as? [String: Any] ?? [:] }
    /// The host components `describe` asked for.
    public var components: [String] { described["components"] as? [String] ?? [] }

    public func description(default fallback: String) -> String {
        entry.description ?? (described["description"] as? String) ?? fallback
    }

    /// The image roles describe's `roles` offers beyond building (`inspect`).
    public var roles: [String] { described["roles"] as? [String] ?? [] }

    /// A request outside a build (`recognize`, `inspect`), with the entry's timeout.
    func request(_ method: String, params: [String: Any]) throws -> [String: Any] {
        try transport(requestTimeout).call(method, params: params, progress: nil, logger: nil)
    }

    /// A request other than describe, with the entry's timeout.
    func call(_ method: String, params: [String: Any], context: BuildContext) throws -> [String: Any] {
        try transport(requestTimeout).call(method, params: params, progress: context.progress, logger: context.logger)
    }

    /// What the plugin gets as `options`: the entry's own (less the host's `timeout`), then the
    /// build's (flags and the build config file's `options`), which win.
    func options(_ build: BuildOptions) throws -> [String: Any] {
        var options: [String: Any] = [:]
        for (key, value) in entry.options ?? [:] where key != "timeout" {
            options[key] = try Self.object(value)
        }
        // Scalars reach the plugin as strings, as flags give them; lists stay lists.
        for (key, value) in build.json {
            switch value {
            case .string(let text): options[key] = text
            case .number(let number): options[key] = number.jsonText
            case .bool(let flag): options[key] = String(flag)
            default: options[key] = try Self.object(value)
            }
        }
        return options
    }

    static func object(_ value: JSONValue) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
    }

    /// The option names `describe` declares (`options: [{name, …}]`); nil when it declares none.
    public var declaredOptions: [String]? {
        guard let items = described["options"] as? [[String: Any]] else { return nil }
        let names = items.compactMap { $0["name"] as? String }
        return names.isEmpty ? nil : names
    }

    /// A scratch directory of the plugin's own inside the build's.
    func scratch(_ context: BuildContext) throws -> String {
        let path = context.scratch.path + "/plugin-\(name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes the root tree once as a tar for the plugin.
    func writeRootTar(_ image: LoadedImage, scratch: String, context: BuildContext) throws -> String {
        let tar = scratch + "/root.tar"
        try context.progress.step("writing the root tree for \(name)") {
            _ = try TarExporter().export(image.tree, to: tar, force: true)
        }
        return tar
    }

    static func runSpec(_ image: LoadedImage) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(image.runSpec))
    }
}
