import Foundation

/// An accelerator contribution as JSON, the one shape both directions use: what an external
/// accelerator answers to `contribute`, and what an external backend gets in `build`'s
/// `contributions`. File contents travel as host paths (`source`) or inline `text`.
public enum ContributionCoding {
    static let keys = [
        "accelerator", "files", "kernel_modules", "kernel_cmdline", "klibs", "klib_files", "env", "resources"
    ]
    static let fileKeys = ["path", "type", "source", "text", "target", "mode", "uid", "gid"]

    public static func encode(_ contribution: AcceleratorContribution, accelerator: String) throws -> [String: Any] {
        let files = try contribution.files.map { file -> [String: Any] in
            var item: [String: Any] = [
                "path": file.path, "mode": Int(file.metadata.permissions), "uid": Int(file.metadata.uid),
                "gid": Int(file.metadata.gid)
            ]
            switch file.kind {
            case .regularFile(.hostFile(let path, _, _)): item["type"] = "file"; item["source"] = path
            case .regularFile(.empty): item["type"] = "file"; item["text"] = ""
            case .symlink(let target): item["type"] = "symlink"; item["target"] = target
            case .directory: item["type"] = "dir"
            default:
                throw UnsupportedError(
                    "accelerator \(accelerator)'s file \(file.path) (\(file.kind.name)) cannot be passed to a plugin backend"
                )
            }
            return item
        }
        return [
            "accelerator": accelerator, "files": files, "kernel_modules": contribution.linux.kernelModules,
            "kernel_cmdline": contribution.linux.kernelCommandLine, "klibs": contribution.nanos.klibs,
            "klib_files": contribution.nanos.klibFiles,
            "env": contribution.env.map { ["key": $0.key, "value": $0.value] }, "resources": contribution.resources
        ]
    }

    /// Reads a contribution, checking every part: paths inside the image, host files that exist,
    /// module names, command-line words, env keys. `location` names the plugin and method for
    /// errors; inline `text` files are written under `scratch`.
    public static func decode(
        _ value: JSONValue, location: String, scratch: String, mtime: Timestamp = .sourceDateEpoch
    ) throws -> AcceleratorContribution {
        let object = try StrictObject(value, location: location, allowed: keys)
        let files = GuestFiles(mtime: mtime)
        if let items = object.fields["files"] {
            guard case .array(let list) = items else {
                throw InputError("\(location).files: expected a list, found \(items.typeName)")
            }
            for (index, item) in list.enumerated() {
                try decodeFile(
                    item, location: "\(location).files[\(index)]", into: files, index: index, scratch: scratch)
            }
        }
        var contribution = AcceleratorContribution(files: files.entries)
        contribution.linux.kernelModules = try object.strings("kernel_modules") ?? []
        for name in contribution.linux.kernelModules where !ModuleTree.isModuleName(name) {
            throw InputError(
                "\(location).kernel_modules: `\(name)` is not a module name",
                hint: "give names like virtio_balloon, without .ko or a path")
        }
        contribution.linux.kernelCommandLine = try object.strings("kernel_cmdline") ?? []
        for word in contribution.linux.kernelCommandLine
        where word.isEmpty || word.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) {
            throw InputError(
                "\(location).kernel_cmdline: `\(word)` is not one command-line word",
                hint: "give one word per item, e.g. [\"iommu=pt\", \"quiet\"]")
        }
        contribution.nanos.klibs = try object.strings("klibs") ?? []
        for (name, path) in try stringMap(object, "klib_files", location: location) {
            guard FileManager.default.fileExists(atPath: path) else {
                throw InputError("\(location).klib_files.\(name): \(path) does not exist")
            }
            contribution.nanos.klibFiles[name] = path
        }
        if let items = object.fields["env"] {
            guard case .array(let list) = items else {
                throw InputError("\(location).env: expected a list, found \(items.typeName)")
            }
            contribution.env = try list.enumerated().map { index, item in
                let pair = try StrictObject(item, location: "\(location).env[\(index)]", allowed: ["key", "value"])
                let key = try pair.string("key", required: true)!
                guard !key.isEmpty, !key.contains("="), !key.contains("\0") else {
                    throw InputError("\(location).env[\(index)].key: `\(key)` is not an environment variable name")
                }
                return RunSpec.EnvVar(key: key, value: try pair.string("value", required: true)!)
            }
        }
        contribution.resources = try stringMap(object, "resources", location: location, numbersToo: true)
        return contribution
    }

    static func decodeFile(_ item: JSONValue, location: String, into files: GuestFiles, index: Int, scratch: String)
        throws
    {
        let file = try StrictObject(item, location: location, allowed: fileKeys)
        let rawPath = try file.string("path", required: true)!
        let components = rawPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains("."), !rawPath.contains("\0") else {
            throw InputError(
                "\(location).path: `\(rawPath)` is not a path inside the image",
                hint: "give paths like etc/app.conf (no `..`)")
        }
        let path = components.joined(separator: "/")
        let type = try file.enumeration("type", values: ["file", "dir", "symlink"]) ?? "file"
        let mode = try file.integer("mode")
        if let mode, !(0...0o7777).contains(mode) {
            throw InputError("\(location).mode: \(mode) is not a permission mode (0 to 4095, i.e. 0o7777)")
        }
        let uid = try file.integer("uid") ?? 0, gid = try file.integer("gid") ?? 0
        guard uid >= 0, gid >= 0, uid <= Int(UInt32.max), gid <= Int(UInt32.max) else {
            throw InputError("\(location): uid and gid must be 0 to 2^32-1")
        }
        switch type {
        case "dir":
            files.directory(path, permissions: UInt16(mode ?? 0o755), uid: UInt32(uid), gid: UInt32(gid))
        case "symlink":
            guard let target = try file.string("target"), !target.isEmpty else {
                throw InputError("\(location): a symlink needs a `target`")
            }
            files.link(path, to: target, uid: UInt32(uid), gid: UInt32(gid))
        default:
            let source = try file.string("source"), text = try file.string("text")
            var host: String
            switch (source, text) {
            case (let source?, nil):
                guard source.hasPrefix("/") else {
                    throw InputError("\(location).source: `\(source)` must be an absolute host path")
                }
                host = source
            case (nil, let text?):
                host = scratch + "/contributed-\(index)"
                try Data(text.utf8).write(to: URL(fileURLWithPath: host))
            default:
                throw InputError(
                    "\(location): a file needs exactly one of `source` (a host path) and `text` (its contents)")
            }
            var st = stat()
            guard stat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                throw InputError(
                    "\(location).source: \(host) is not a readable regular file",
                    hint: "write the file before answering, e.g. in `scratch`")
            }
            try files.add(host: host, at: path, permissions: UInt16(mode ?? 0o644), uid: UInt32(uid), gid: UInt32(gid))
        }
    }

    static func stringMap(_ object: StrictObject, _ key: String, location: String, numbersToo: Bool = false) throws
        -> [String: String]
    {
        guard let value = object.fields[key], value != .null else { return [:] }
        guard case .object(let fields) = value else {
            throw InputError("\(location).\(key): expected an object, found \(value.typeName)")
        }
        return try fields.mapValues { item in
            switch item {
            case .string(let text): return text
            case .number(let number) where numbersToo: return number.jsonText
            default:
                throw InputError(
                    "\(location).\(key): values must be strings\(numbersToo ? " or numbers" : ""), found \(item.typeName)"
                )
            }
        }
    }
}
