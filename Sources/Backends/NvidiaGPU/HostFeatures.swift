import Core

extension NvidiaAccelerator {
    /// The host programs `--accel nvidia` runs for Linux images. The compiler is the kernel's own
    /// (`gcc-12` for Debian 12's kernels), known only once the kernel is: doctor checks plain gcc.
    public static let hostFeatures: [HostFeature] = [
        HostFeature(
            "--accel nvidia (linuxvm)", .optional,
            tools: [
                [NvidiaModuleBuild.make],
                [HostTool("gcc", apt: "gcc", purpose: "building the NVIDIA kernel modules")],
                [NvidiaModuleBuild.strip], [NvidiaModuleBuild.tar]
            ])
    ]
}
