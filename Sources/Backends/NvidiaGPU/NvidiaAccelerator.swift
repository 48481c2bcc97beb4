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

    public func validate(_ plan: BuildPlan) throws {
        switch plan.backend {
        case "linuxvm":
            for flag in ["nvidia-klib", "nvidia-firmware"] where plan.options[flag] != nil {
                throw InputError("--\(flag) is for Nanos images", hint: "drop it; Linux VM images get the driver's modules and firmware from Debian")
            }
            _ = try NvidiaOptions(plan.options)
        case "nanos":
            try NvidiaNanosImage.checkOptions(plan.options)
        default:
            throw InputError("--accel nvidia does not support the \(plan.backend) backend")
        }
    }

    public func contribute(to plan: BuildPlan, target: BuildTarget, context: BuildContext) throws -> AcceleratorContribution {
        try validate(plan)
        switch plan.backend {
        case "linuxvm":
            let options = try NvidiaOptions(plan.options)
            guard let kernel = target.kernel else {
                throw InputError("the linuxvm backend did not say which kernel the image boots, so the NVIDIA modules cannot be matched to it")
            }
            guard let tree = plan.image?.tree else { throw InputError("--accel nvidia needs the image's source") }
            return try NvidiaLinuxImage(options: options, kernel: kernel, context: context).contribution(tree: tree)
        case "nanos":
            return try NvidiaNanosImage(options: plan.options, target: target, context: context).contribution()
        default:
            throw InputError("--accel nvidia does not support the \(plan.backend) backend")
        }
    }
}
