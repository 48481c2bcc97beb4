import Core

/// `--accel nvidia`: the NVIDIA driver, its firmware and user-space libraries, all of one driver
/// version, checked against the image's kernel.
public final class NvidiaAccelerator: Accelerator {
    public let name = "nvidia"
    public let description = "NVIDIA GPU driver, GSP firmware and device nodes with matching versions"
    public let supportedBackends = ["linuxvm", "nanos"]

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(accelerator: NvidiaAccelerator())
    }

    public func contribute(to plan: BuildPlan, target: BuildTarget, context: BuildContext) throws -> AcceleratorContribution {
        let options = try NvidiaOptions(plan.options)
        switch plan.backend {
        case "linuxvm":
            guard let kernel = target.kernel else {
                throw InputError("the linuxvm backend did not say which kernel the image boots, so the NVIDIA modules cannot be matched to it")
            }
            guard let tree = plan.image?.tree else { throw InputError("--accel nvidia needs the image's source") }
            return try NvidiaLinuxImage(options: options, kernel: kernel, context: context).contribution(tree: tree)
        case "nanos":
            throw UnsupportedError("--accel nvidia for the nanos backend is not implemented yet in this version of gvlt",
                                   hint: "build a Linux VM image (--backend linuxvm --accel nvidia), or set up the gpu_nvidia klib in the manifest yourself")
        default:
            throw InputError("--accel nvidia does not support the \(plan.backend) backend")
        }
    }
}
