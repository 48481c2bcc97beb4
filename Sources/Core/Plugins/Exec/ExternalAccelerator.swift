import Foundation

/// An accelerator that is an `exec` or `dylib` plugin. `contribute` gets the backend's name, what
/// it prepared (the kernel release and modules tree, the Nanos klib directory), the run spec, the
/// options and a scratch directory, and the root tree when `describe`'s `input` asks for it
/// (`rootfs-tar` or `file-listing`). Its answer is read as strictly as a builtin's contribution is built: each
/// file, module name, command-line word and env key is checked before any backend sees it.
public final class ExternalAccelerator: Accelerator {
    public let plugin: ExternalPlugin
    public let name: String
    public let description: String
    public let supportedBackends: [String]
    let inputForm: ExternalPlugin.InputForm

    public init(plugin: ExternalPlugin) throws {
        self.plugin = plugin
        name = plugin.name
        description = plugin.description(default: "external accelerator \(plugin.name)")
        guard let backends = plugin.capabilities["backends"] as? [String], !backends.isEmpty else {
            throw InputError(
                "plugin `\(plugin.name)` is an accelerator, and its describe result lists no `capabilities.backends`",
                hint: "an accelerator names the backends it can contribute to, e.g. \"backends\": [\"linuxvm\"]")
        }
        supportedBackends = backends
        inputForm = try plugin.inputForm(default: .none)
    }

    /// What `describe` declares; nil (any key no one else claims) when it declares none.
    public var optionKeys: [String]? { plugin.declaredOptions }

    public func settings(from options: BuildOptions) throws -> BuildOptions { options }

    public func contribute(_ settings: BuildOptions, to request: ContributionRequest, context: BuildContext) throws
        -> AcceleratorContribution
    {
        let scratch = try plugin.scratch(context)
        var params: [String: Any] = [
            "backend": request.backend, "scratch": scratch, "options": try plugin.options(settings),
            "target": Self.encode(request.target)
        ]
        if let image = request.input.image {
            params["run_spec"] = try ExternalPlugin.runSpec(image)
            if let (key, path) = try plugin.rootParameter(inputForm, image: image, scratch: scratch, context: context) {
                params[key] = path
            }
        }
        if let program = request.input.program { params["program"] = program }
        let result = try context.progress.step("adding accelerator \(name)") {
            try plugin.call("contribute", params: params, context: context)
        }
        let value = try JSONValue.parse(
            try JSONSerialization.data(withJSONObject: result), what: "plugin `\(name)`'s contribution")
        return try ContributionCoding.decode(value, location: "plugin `\(name)` (contribute)", scratch: scratch)
    }

    static func encode(_ target: BuildTarget) -> [String: Any] {
        switch target {
        case .linuxKernel(let kernel):
            var item: [String: Any] = ["release": kernel.release, "origin": kernel.origin]
            item["modules_dir"] = kernel.modulesDirectory
            item["debian_package"] = kernel.debianPackage
            item["debian_version"] = kernel.debianVersion
            return ["kernel": item]
        case .nanosRelease(let release):
            return release.klibDirectory.map { ["klib_dir": $0] } ?? [:]
        case .generic:
            return [:]
        }
    }
}
