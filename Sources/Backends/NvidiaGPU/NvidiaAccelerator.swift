import Core

/// `--accel nvidia`: NVIDIA driver, firmware and device setup for both backends.
///
/// This version registers the accelerator; the driver packaging is not in this build, and
/// `contribute` says so rather than producing an image without a working GPU stack.
public final class NvidiaAccelerator: Accelerator {
    public let name = "nvidia"
    public let description = "NVIDIA GPU driver, GSP firmware and device nodes with matching versions"
    public let supportedBackends = ["linuxvm", "nanos"]

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(accelerator: NvidiaAccelerator())
    }

    public func contribute(to plan: BuildPlan) throws -> AcceleratorContribution {
        throw UnsupportedError("--accel nvidia is not available in this version of gvlt: NVIDIA driver packaging is not implemented yet",
                               hint: "build without --accel nvidia")
    }
}
