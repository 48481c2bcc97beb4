import Foundation
import Logging

/// The transport of a plugin request: a process (`exec`) or a library in this process (`dylib`).
protocol PluginTransport {
    func call(_ method: String, params: [String: Any], progress: ProgressReporter?, logger: Logger?) throws -> [String: Any]
}

extension ExecPlugin: PluginTransport {}

/// A backend that is an `exec` or `dylib` plugin. `describe` is asked once, when the backend is chosen; `build`
/// gets the flattened root as a tar the host writes, the run spec, the accelerators' contributions,
/// the options, and an output directory of its own. The host checks every artifact the plugin
/// claims (it exists, lies in that directory, has the claimed sha256) and writes the image to `-o`
/// atomically itself, so a failed plugin leaves the output path untouched.
public final class ExternalBackend: ImageBackend {
    public let entry: PluginEntry
    public let name: String
    public let description: String
    public let capabilities: BackendCapabilities
    /// What `describe` said, for `gvlt plugins describe`.
    public let described: [String: Any]
    /// The transport for a request with this timeout (exec plugins are killed past it).
    let transport: (Double) throws -> PluginTransport
    let buildTimeout: Double

    public init(entry: PluginEntry) throws {
        self.entry = entry
        if let declared = entry.protocol { try PluginProtocol.check(declared, plugin: entry.name) }
        switch entry.kind {
        case .exec: transport = { ExecPlugin(entry: entry, timeout: $0) }
        case .dylib:
            let library = try DylibPlugin(entry: entry)
            transport = { _ in library }
        case .builtin: preconditionFailure("builtin backends are not external")
        }
        let timeouts = Self.timeouts(entry)
        buildTimeout = timeouts.build
        let result = try transport(timeouts.describe).call("describe", params: [:], progress: nil, logger: nil)
        guard let spoken = result["protocol"] as? String else {
            throw InputError("plugin `\(entry.name)`'s describe result has no `protocol`")
        }
        try PluginProtocol.check(spoken, plugin: entry.name)
        guard (result["role"] as? String) == "backend" else {
            throw InputError("plugin `\(entry.name)` is listed as a backend in \(entry.origin), but describes itself as `\(result["role"] as? String ?? "nothing")`")
        }
        described = result
        name = entry.name
        description = entry.description ?? (result["description"] as? String) ?? "external backend \(entry.name)"
        let capabilities = result["capabilities"] as? [String: Any] ?? [:]
        self.capabilities = BackendCapabilities(inputs: capabilities["inputs"] as? [String] ?? ["rootfs-tree"],
                                                outputs: capabilities["outputs"] as? [String] ?? [],
                                                accelerators: capabilities["accelerators"] as? [String] ?? [],
                                                reproducible: capabilities["reproducible"] as? Bool ?? false, buildsImages: true)
        for component in result["components"] as? [String] ?? [] {
            throw UnsupportedError("plugin `\(entry.name)` wants the host component `\(component)`, and this version of gvlt provides none to plugins yet",
                                   hint: "use a plugin that needs only the root tree and run spec")
        }
    }

    /// `options.timeout` in plugins.json: seconds for a build (default 3600); describe gets 30 s.
    static func timeouts(_ entry: PluginEntry) -> (describe: Double, build: Double) {
        if case .number(let seconds)? = entry.options?["timeout"], seconds > 0 { return (min(30, seconds), seconds) }
        return (30, 3600)
    }

    public func validate(_ plan: BuildPlan) throws {
        if capabilities.inputs.contains("rootfs-tree") && plan.image == nil && plan.program == nil {
            throw InputError("the \(name) backend needs a source", hint: "pass --container, --containerfile or --rootfs-dir")
        }
    }

    public func build(_ plan: BuildPlan, context: BuildContext) throws -> BuildReport {
        let scratch = context.scratch.path + "/plugin-\(name)"
        let outputDirectory = scratch + "/output"
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        var params: [String: Any] = ["scratch": scratch, "output_dir": outputDirectory,
                                     "output_name": URL(fileURLWithPath: plan.output).lastPathComponent]
        if let image = plan.image {
            let tar = scratch + "/root.tar"
            try context.progress.step("writing the root tree for \(name)") {
                _ = try TarExporter().export(image.tree, to: tar, force: true)
            }
            params["root_tar"] = tar
            params["run_spec"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(image.runSpec))
        }
        if let program = plan.program { params["program"] = program }
        var options: [String: Any] = [:]
        for (key, value) in entry.options ?? [:] where key != "timeout" {
            options[key] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
        }
        for (key, value) in plan.options { options[key] = value }
        params["options"] = options
        params["contributions"] = try plan.contributions.sorted { $0.key < $1.key }.map { name, contribution -> [String: Any] in
            try Self.encode(contribution, accelerator: name)
        }
        let result = try context.progress.step("building with plugin \(name)") {
            try transport(buildTimeout).call("build", params: params, progress: context.progress, logger: context.logger)
        }
        for diagnostic in result["diagnostics"] as? [String] ?? [] { context.logger.warning("\(name): \(diagnostic)") }
        guard let artifacts = result["artifacts"] as? [[String: Any]], let main = artifacts.first else {
            throw InputError("plugin `\(name)` reported no artifacts", hint: "a build result lists what it wrote under `artifacts`")
        }
        let base = URL(fileURLWithPath: outputDirectory).resolvingSymlinksInPath().path
        for artifact in artifacts {
            guard let path = artifact["path"] as? String else { throw InputError("plugin `\(name)` reported an artifact without a `path`") }
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard resolved.hasPrefix(base + "/") else {
                throw InputError("plugin `\(name)` claims an artifact outside its output directory: \(path)", hint: "plugins write only under the `output_dir` they are given")
            }
            var st = stat()
            guard lstat(resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                throw InputError("plugin `\(name)` claims an artifact that does not exist or is not a file: \(path)")
            }
            if let claimed = artifact["sha256"] as? String, claimed.lowercased() != (try SHA256Hex.of(file: resolved)) {
                throw InputError("plugin `\(name)`'s artifact \(path) does not have the sha256 it claims (\(claimed))")
            }
        }
        // The first artifact is the image; the host puts it at -o itself, atomically.
        let source = URL(fileURLWithPath: main["path"] as! String).resolvingSymlinksInPath().path
        let output = try AtomicOutput(path: plan.output, force: plan.force)
        do {
            let input = try SharedFile.openRegular(source, what: "plugin artifact", followSymlinks: false)
            var offset: Int64 = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while offset < input.size {
                let count = try buffer.withUnsafeMutableBytes { try input.read(into: $0, at: offset) }
                if count == 0 { break }
                var written = 0
                while written < count {
                    let n = buffer.withUnsafeBytes { pwrite(output.fd, $0.baseAddress! + written, count - written, off_t(offset) + off_t(written)) }
                    guard n > 0 else { throw SystemError("cannot write", path: output.temporaryPath, errno: errno) }
                    written += n
                }
                offset += Int64(count)
            }
            try output.commit()
        } catch {
            output.abandon()
            throw error
        }
        return BuildReport(backend: name, output: URL(fileURLWithPath: plan.output).standardizedFileURL.path,
                           sha256: try SHA256Hex.of(file: plan.output), bytes: Int64((try? FileManager.default.attributesOfItem(atPath: plan.output)[.size] as? Int) ?? 0),
                           steps: context.progress.timings.map { BuildReport.Step(name: $0.step, seconds: $0.seconds) })
    }

    /// A contribution as plugins see it; file contents are given as host paths.
    static func encode(_ contribution: AcceleratorContribution, accelerator: String) throws -> [String: Any] {
        let files = try contribution.files.map { file -> [String: Any] in
            var item: [String: Any] = ["path": file.path, "mode": Int(file.metadata.permissions), "uid": Int(file.metadata.uid), "gid": Int(file.metadata.gid)]
            switch file.kind {
            case .regularFile(.hostFile(let path, _, _)): item["type"] = "file"; item["source"] = path
            case .regularFile(.empty): item["type"] = "file"
            case .symlink(let target): item["type"] = "symlink"; item["target"] = target
            case .directory: item["type"] = "dir"
            default: throw UnsupportedError("accelerator \(accelerator)'s file \(file.path) (\(file.kind.name)) cannot be passed to a plugin backend yet")
            }
            return item
        }
        return ["accelerator": accelerator, "files": files, "kernel_modules": contribution.kernelModules, "klibs": contribution.klibs,
                "env": contribution.env.map { ["key": $0.key, "value": $0.value] }, "resources": contribution.resources]
    }
}
