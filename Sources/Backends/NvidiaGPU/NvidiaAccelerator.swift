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

    public func validate(_ settings: NvidiaSettings, for target: TargetKind) throws {
        switch target {
        case .linuxKernel:
            if let flag = settings.nanosOnly.first {
                throw InputError(
                    "\(flag) is for Nanos images",
                    hint: "drop it; Linux VM images get the driver's modules and firmware from Debian")
            }
            _ = try NvidiaOptions(settings)
        case .nanosRelease:
            try NvidiaNanosImage.check(settings)
        case .generic:
            throw InputError("--accel nvidia needs a backend that boots a Linux kernel or a Nanos release")
        }
    }

    public func contribute(_ settings: NvidiaSettings, to request: ContributionRequest, context: BuildContext) throws
        -> AcceleratorContribution
    {
        try validate(settings, for: request.target.kind)
        switch request.target {
        case .linuxKernel(let kernel):
            guard let tree = request.input.image?.tree else {
                throw InputError("--accel nvidia needs the image's source")
            }
            return try NvidiaLinuxImage(options: try NvidiaOptions(settings), kernel: kernel, context: context)
                .contribution(tree: tree)
        case .nanosRelease(let release):
            return try NvidiaNanosImage(settings: settings, release: release, context: context).contribution()
        case .generic:
            throw InputError(
                "the \(request.backend) backend did not say which kernel the image boots, so the NVIDIA driver cannot be matched to it"
            )
        }
    }
}
