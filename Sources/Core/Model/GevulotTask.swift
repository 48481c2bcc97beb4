import Foundation

/// A Gevulot task file (`kind: Task`, `version: v0`), the one `gvltctl tasks create` sends to the
/// network and `gvltctl local-run -f` runs locally. Only `spec` matters for a local run; `metadata`
/// and `status` are accepted and ignored. Field names are gevulot-rs's (`inputContexts`, …), and
/// unknown keys are errors naming the closest known one.
public struct GevulotTask: Equatable, Sendable {
    public struct InputContext: Equatable, Sendable {
        public var source: String
        public var target: String
        public init(source: String, target: String) {
            self.source = source
            self.target = target
        }
    }

    public struct OutputContext: Equatable, Sendable {
        public var source: String
        public var retentionPeriod: Int?
        public init(source: String, retentionPeriod: Int? = nil) {
            self.source = source
            self.retentionPeriod = retentionPeriod
        }
    }

    public static let inputRoot = "/mnt/gevulot/input"
    public static let outputRoot = "/mnt/gevulot/output"

    /// `spec.image`: where the VM image is (a path or `file://` locally; a URL or CID on the network).
    public var image: String?
    /// `spec.command`: the program and its first arguments; empty keeps the image's.
    public var command: [String] = []
    public var args: [String] = []
    public var env: [RunSpec.EnvVar] = []
    public var inputContexts: [InputContext] = []
    public var outputContexts: [OutputContext] = []
    public var millicores: Int?
    public var gpuMillicores: Int?
    public var memoryBytes: UInt64?
    /// `resources.time`: the run's time limit in seconds; 0 or absent means none.
    public var timeSeconds: Double?
    public var storeStdout = false
    public var storeStderr = false

    public init() {}

    public init(path: String) throws {
        let text = try ConfigFile.text(path, what: "task file \(path)", hint: "check the -f/--file path")
        try self.init(yaml: text, location: path)
    }

    public init(yaml text: String, location: String) throws {
        let top = try StrictObject(
            JSONValue.parseYAML(text, what: "task file \(location)"), location: location,
            allowed: ["kind", "version", "metadata", "spec", "status"])
        guard try top.string("kind", required: true) == "Task" else {
            throw InputError(
                "\(location): kind is `\(try top.string("kind") ?? "")`, not Task",
                hint: "gvlt run -f takes a Gevulot task file (kind: Task, version: v0)")
        }
        guard try top.string("version", required: true) == "v0" else {
            throw InputError(
                "\(location): version `\(try top.string("version") ?? "")` is not supported",
                hint: "gvlt reads task files of version v0")
        }
        guard let specValue = top.fields["spec"] else { throw InputError("\(location): missing required key `spec`") }
        let spec = try StrictObject(
            specValue, location: location + ": spec",
            allowed: [
                "image", "command", "args", "env", "inputContexts", "outputContexts", "resources",
                "storeStdout", "storeStderr"
            ])
        image = try spec.string("image")
        command = try spec.strings("command") ?? []
        args = try spec.strings("args") ?? []
        env = try Self.list(spec, "env").enumerated().map { index, item in
            let variable = try StrictObject(
                item, location: "\(spec.location).env[\(index)]", allowed: ["name", "value"])
            let name = try variable.string("name", required: true)!
            guard !name.isEmpty, !name.contains("=") else {
                throw InputError("\(variable.location).name: `\(name)` is not a variable name")
            }
            return RunSpec.EnvVar(key: name, value: try Self.scalar(variable, "value") ?? "")
        }
        inputContexts = try Self.list(spec, "inputContexts").enumerated().map { index, item in
            let context = try StrictObject(
                item, location: "\(spec.location).inputContexts[\(index)]", allowed: ["source", "target"])
            let target = try context.string("target", required: true)!
            _ = try Self.relative(target, under: Self.inputRoot, at: context.location + ".target")
            return InputContext(source: try context.string("source", required: true)!, target: target)
        }
        outputContexts = try Self.list(spec, "outputContexts").enumerated().map { index, item in
            let context = try StrictObject(
                item, location: "\(spec.location).outputContexts[\(index)]", allowed: ["source", "retentionPeriod"])
            let source = try context.string("source", required: true)!
            _ = try Self.relative(source, under: Self.outputRoot, at: context.location + ".source")
            return OutputContext(source: source, retentionPeriod: try context.integer("retentionPeriod"))
        }
        if let value = spec.fields["resources"], value != .null {
            let resources = try StrictObject(
                value, location: spec.location + ".resources", allowed: ["cpus", "gpus", "memory", "time"])
            // gevulot-rs's zero values are its defaults (gvltctl's task template writes `cpus: 0`,
            // `memory: 0`, `time: 0`): zero means "not set", and the run's defaults apply.
            millicores = try resources.fields["cpus"].map {
                try TaskUnits.millicores($0, at: resources.location + ".cpus")
            }.flatMap { $0 == 0 ? nil : $0 }
            gpuMillicores = try resources.fields["gpus"].map {
                try TaskUnits.millicores($0, at: resources.location + ".gpus")
            }
            memoryBytes = try resources.fields["memory"].map {
                try TaskUnits.bytes($0, at: resources.location + ".memory")
            }.flatMap { $0 == 0 ? nil : $0 }
            timeSeconds = try resources.fields["time"].map {
                try TaskUnits.seconds($0, at: resources.location + ".time")
            }
        }
        storeStdout = try spec.bool("storeStdout") ?? false
        storeStderr = try spec.bool("storeStderr") ?? false
    }

    /// `path` (absolute under `root`, or relative to it, as gvltctl takes them) as a path relative to
    /// `root`, with no `..` leaving it.
    public static func relative(_ path: String, under root: String, at location: String) throws -> String {
        let inside: Substring
        if path.hasPrefix("/") {
            guard path.hasPrefix(root + "/") else {
                throw InputError(
                    "\(location): \(path) is not under \(root)",
                    hint: "the worker only shares \(root); write \(root)/NAME or a relative path")
            }
            inside = path.dropFirst(root.count + 1)
        } else {
            inside = Substring(path)
        }
        guard case .success(let parts) = TreePath.components(String(inside)), !parts.isEmpty else {
            throw InputError("\(location): \(path) must name a file inside \(root), without `..`")
        }
        return TreePath.join(parts)
    }

    private static func list(_ object: StrictObject, _ key: String) throws -> [JSONValue] {
        switch object.fields[key] {
        case nil, .null?: return []
        case .array(let items)?: return items
        case let other?: throw InputError("\(object.location).\(key): expected a list, found \(other.typeName)")
        }
    }

    /// A YAML scalar as text: env values such as `true` or `8` are strings to the program.
    private static func scalar(_ object: StrictObject, _ key: String) throws -> String? {
        guard let value = object.fields[key], value != .null else { return nil }
        switch value {
        case .string(let text): return text
        case .number, .bool: return value.text
        default: throw InputError("\(object.location).\(key): expected a string, found \(value.typeName)")
        }
    }
}

extension GevulotTask {
    /// A task's path or `file://` URL. Remote sources are fetched before a run (`RemoteTaskFiles`);
    /// one that reaches here was not.
    public static func localPath(_ source: String, what: String) throws -> String {
        switch TaskSource.classify(source) {
        case .local(let path):
            guard FileManager.default.fileExists(atPath: path) else {
                throw InputError(
                    "\(what) \(path) does not exist", hint: "give a local path, a file:// or an http(s):// URL")
            }
            return path
        case .ipfs(let cid):
            throw UnsupportedError(
                "\(what) \(cid) is an IPFS CID, which is not supported", hint: "give a URL or a local path")
        case .url, .unsupported:
            throw InputError(
                "\(what) \(source) is remote and was not fetched",
                hint:
                    "download it and give its local path (or pass it with \(what.contains("image") ? "gvlt run IMAGE" : "--input FILE:TARGET"))"
            )
        }
    }
}
