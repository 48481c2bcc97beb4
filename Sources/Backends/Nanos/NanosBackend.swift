import Core

/// Nanos unikernel images from Ops manifests (DESIGN.md §5).
///
/// This version registers the backend and checks its inputs; the image writer (TFS, boot sectors,
/// ELF dependency resolution) is not in this build, and `build` says so instead of writing anything.
public final class NanosBackend: ImageBackend {
    public let name = "nanos"
    public let description = "Nanos unikernel images from an Ops-style manifest (ops build compatible)"
    public let capabilities = BackendCapabilities(inputs: ["elf-program"], outputs: ["raw-disk"], accelerators: ["nvidia"],
                                                  reproducible: true, buildsImages: false)

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(backend: NanosBackend())
    }

    public func validate(_ plan: BuildPlan) throws {
        guard plan.program != nil else {
            throw InputError("the nanos backend needs a PROGRAM (an ELF executable)",
                             hint: "gvlt build --backend nanos ./my_prover -c manifest.json")
        }
    }

    public func build(_ plan: BuildPlan, context: BuildContext) throws -> BuildReport {
        throw UnsupportedError("the nanos backend cannot write images in this version of gvlt: the Nanos image writer is not implemented yet",
                               hint: "use `ops build` for Nanos images until gvlt's Nanos writer lands")
    }
}
