import Foundation

/// `gvlt build --config FILE`: YAML or JSON whose keys mirror the long flags (`rootfs-dir`, `accel`, …).
/// Flags given on the command line win over the file.
public struct BuildConfigFile {
    public static let keys = [
        "backend", "container", "containerfile", "context", "build-arg", "rootfs-dir", "platform",
        "storage-driver", "output", "accel", "force", "json", "program", "options"
    ]

    public var backend: String?
    public var container: String?
    public var containerfile: String?
    public var context: String?
    public var buildArgs: [String]?
    public var rootfsDir: String?
    public var platform: String?
    public var storageDriver: String?
    public var output: String?
    public var accel: [String]?
    public var force: Bool?
    public var json: Bool?
    public var program: String?
    /// The backend's and accelerators' options, as written (a list stays a list).
    public var options = BuildOptions()

    public init() {}

    public init(path: String) throws {
        let text = try ConfigFile.text(path, what: "build config \(path)", hint: "check the --config path")
        let object = try StrictObject(
            JSONValue.parseYAML(text, what: "build config \(path)"), location: path, allowed: Self.keys)
        // Relative paths in the file are relative to the file, not to wherever gvlt runs.
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ value: String?) -> String? {
            value.map { $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).path }
        }
        func resolveTransport(_ value: String?) -> String? {
            guard let value, let colon = value.firstIndex(of: ":") else { return value }
            let transport = value[..<colon]
            guard ["oci", "oci-archive", "docker-archive"].contains(transport) else { return value }
            return "\(transport):" + resolve(String(value[value.index(after: colon)...]))!
        }
        backend = try object.string("backend")
        container = resolveTransport(try object.string("container"))
        containerfile = resolve(try object.string("containerfile"))
        context = resolve(try object.string("context"))
        buildArgs = try object.strings("build-arg")
        rootfsDir = resolve(try object.string("rootfs-dir"))
        platform = try object.string("platform")
        storageDriver = try object.string("storage-driver")
        output = resolve(try object.string("output"))
        accel = try object.strings("accel")
        force = try object.bool("force")
        json = try object.bool("json")
        program = resolve(try object.string("program"))
        if let value = object.fields["options"] {
            guard case .object(let fields) = value else { throw InputError("\(path): options: expected a mapping") }
            for (key, item) in fields {
                switch item {
                case .string, .number, .bool, .array: options.set(key, item, origin: "\(path): options.\(key)")
                default: throw InputError("\(path): options.\(key): expected a string, number, boolean or list")
                }
            }
        }
    }
}
