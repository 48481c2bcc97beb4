import Core

/// Firestarter Linux VM images (DESIGN.md §4).
///
/// This version registers the backend and checks its inputs; the disk writer (boot partition, root
/// file system, kernel, init) is not in this build, and `build` says so instead of writing anything.
public final class LinuxVMBackend: ImageBackend {
    public let name = "linuxvm"
    public let description = "Firestarter Linux VM images from a container image, Containerfile or rootfs directory"
    public let capabilities = BackendCapabilities(inputs: ["rootfs-tree"], outputs: ["raw-disk"], accelerators: ["nvidia"],
                                                  reproducible: true, buildsImages: false)

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(backend: LinuxVMBackend())
    }

    public func validate(_ plan: BuildPlan) throws {
        guard plan.image != nil else {
            throw InputError("the linuxvm backend needs a source",
                             hint: "pass --container TRANSPORT:REF, --containerfile FILE or --rootfs-dir DIR")
        }
    }

    public func build(_ plan: BuildPlan, context: BuildContext) throws -> BuildReport {
        throw UnsupportedError("the linuxvm backend cannot write images in this version of gvlt: the disk image writer is not implemented yet",
                               hint: "`gvlt export` produces the image's root tree as a tar today")
    }
}
