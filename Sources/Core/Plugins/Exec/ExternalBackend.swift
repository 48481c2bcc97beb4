import Foundation
import Logging

/// A backend that is an `exec` or `dylib` plugin. `describe` is asked once, when the backend is chosen; `build`
/// gets the root tree in the form it asked for (a tar the host writes, by default), the run spec, the
/// accelerators' contributions, the options, the host components it asked for, and an output
/// directory of its own. The host
/// checks every artifact the plugin claims (it exists, lies in that directory, has the claimed
/// sha256) and writes the image to `-o` atomically itself, so a failed plugin leaves the output
/// path untouched.
public final class ExternalBackend: ImageBackend {
    /// The plugin's own options, and the host components' session when it asked for components.
    public struct Settings {
        public var options: BuildOptions
        public var components: HostComponentSession?
    }

    public let plugin: ExternalPlugin
    public let name: String
    public let description: String
    public let capabilities: BackendCapabilities
    let componentProvider: HostComponentProvider?
    let inputForm: ExternalPlugin.InputForm

    public init(plugin: ExternalPlugin, components provider: HostComponentProvider?) throws {
        self.plugin = plugin
        name = plugin.name
        description = plugin.description(default: "external backend \(plugin.name)")
        let capabilities = plugin.capabilities
        self.capabilities = BackendCapabilities(
            inputs: capabilities["inputs"] as? [String] ?? ["rootfs-tree"],
            outputs: capabilities["outputs"] as? [String] ?? [],
            accelerators: capabilities["accelerators"] as? [String] ?? [],
            reproducible: capabilities["reproducible"] as? Bool ?? false, buildsImages: true)
        let offered = provider?.components ?? []
        for component in plugin.components where !offered.contains(component) {
            throw UnsupportedError(
                "plugin `\(name)` wants the host component `\(component)`, which gvlt does not provide",
                hint: offered.isEmpty
                    ? "use a plugin that needs only the root tree and run spec"
                    : "gvlt provides: \(offered.joined(separator: ", "))")
        }
        componentProvider = plugin.components.isEmpty ? nil : provider
        inputForm = try plugin.inputForm(default: .rootfsTar)
    }

    /// The plugin's declared options, plus the host components' when it asked for components; nil
    /// (any key) when it declares none.
    public var optionKeys: [String]? {
        guard let declared = plugin.declaredOptions else { return nil }
        return declared + (componentProvider?.optionKeys ?? [])
    }

    /// A plugin that builds on host components takes the kernel's options (`--kernel`, …) too.
    public var targetKind: TargetKind { componentProvider == nil ? .generic : .linuxKernel }

    public func settings(from options: BuildOptions) throws -> Settings {
        guard let provider = componentProvider else { return Settings(options: options, components: nil) }
        let hostKeys = Set(provider.optionKeys)
        let own = plugin.declaredOptions.map { Set($0) } ?? Set(options.keys).subtracting(hostKeys)
        return Settings(options: options.only(own), components: try provider.session(options: options.only(hostKeys)))
    }

    /// A plugin that builds on host components gets the kernel resolved here, so that accelerators
    /// can match it.
    public func prepare(_ settings: Settings, input: BuildInput, context: BuildContext) throws -> Preparation<Void> {
        Preparation(target: try settings.components?.prepare(context: context) ?? .generic, state: ())
    }

    public func build(_ job: BackendJob<Settings, Void>, context: BuildContext) throws -> BuildReport {
        let scratch = try plugin.scratch(context)
        let outputDirectory = scratch + "/output"
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        var params: [String: Any] = [
            "scratch": scratch, "output_dir": outputDirectory,
            "output_name": URL(fileURLWithPath: job.output).lastPathComponent
        ]
        // Components first: `guest-root` completes the tree that the root tar is written from.
        if let session = job.settings.components {
            params["components"] = try session.resolve(
                plugin.components, input: job.input, contributions: job.contributions, context: context)
        }
        if let image = job.input.image {
            if let (key, path) = try plugin.rootParameter(inputForm, image: image, scratch: scratch, context: context) {
                params[key] = path
            }
            params["run_spec"] = try ExternalPlugin.runSpec(image)
        }
        if let program = job.input.program { params["program"] = program }
        params["options"] = try plugin.options(job.settings.options)
        params["contributions"] = try job.contributions.map {
            try ContributionCoding.encode($0.contribution, accelerator: $0.accelerator)
        }
        let result = try context.progress.step("building with plugin \(name)") {
            try plugin.call("build", params: params, context: context)
        }
        for diagnostic in result["diagnostics"] as? [String] ?? [] { context.logger.warning("\(name): \(diagnostic)") }
        guard let artifacts = result["artifacts"] as? [[String: Any]], let main = artifacts.first else {
            throw InputError(
                "plugin `\(name)` reported no artifacts", hint: "a build result lists what it wrote under `artifacts`")
        }
        let base = URL(fileURLWithPath: outputDirectory).resolvingSymlinksInPath().path
        for artifact in artifacts {
            guard let path = artifact["path"] as? String else {
                throw InputError("plugin `\(name)` reported an artifact without a `path`")
            }
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard resolved.hasPrefix(base + "/") else {
                throw InputError(
                    "plugin `\(name)` claims an artifact outside its output directory: \(path)",
                    hint: "plugins write only under the `output_dir` they are given")
            }
            var st = stat()
            guard lstat(resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                throw InputError("plugin `\(name)` claims an artifact that does not exist or is not a file: \(path)")
            }
            if let claimed = artifact["size"] as? Int, Int64(claimed) != Int64(st.st_size) {
                throw InputError(
                    "plugin `\(name)`'s artifact \(path) is \(st.st_size) bytes, not the \(claimed) it claims")
            }
            if let claimed = artifact["sha256"] as? String, claimed.lowercased() != (try SHA256Hex.of(file: resolved)) {
                throw InputError("plugin `\(name)`'s artifact \(path) does not have the sha256 it claims (\(claimed))")
            }
        }
        // The first artifact is the image; the host puts it at -o itself, atomically, hashing it as
        // it goes rather than reading -o back.
        let source = URL(fileURLWithPath: main["path"] as! String).resolvingSymlinksInPath().path
        let output = try AtomicOutput(path: job.output, force: job.force)
        let sink: FileSink
        do {
            let input = try SharedFile.openRegular(source, what: "plugin artifact", followSymlinks: false)
            sink = FileSink(fd: output.fd, displayName: output.path, direct: true)
            try FileContent.blobRange(file: input, offset: 0, length: input.size).stream { try sink.write($0) }
            try sink.finish()
            try output.commit()
        } catch {
            output.abandon()
            throw error
        }
        // Plugin backends report the bare hex digest, as they always have.
        return BuildReport(
            backend: name, output: URL(fileURLWithPath: job.output).standardizedFileURL.path,
            sha256: String(sink.digest().dropFirst("sha256:".count)), bytes: sink.byteCount, steps: context.steps)
    }
}
