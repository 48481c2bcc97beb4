import Core

extension LinuxVMBackend {
    /// The host programs linuxvm builds and inspections run (`gvlt doctor`, the package's dependencies).
    public static let hostFeatures: [HostFeature] = [
        HostFeature(
            "linuxvm images", .required,
            tools: [
                [SquashfsImage.tar2sqfs, SquashfsImage.mksquashfs],
                [Ext4Image.mke2fs], [Ext4Image.debugfs], [Ext4Image.e2fsck]
            ] + BootPartition.tools.map { [$0] } + [
                [HostTool(DiskImage.mbrCode, apt: "syslinux-common", purpose: "the MBR boot code")],
                [HostTool("apt-get", apt: "apt", purpose: "the Debian kernel provider")]
            ]),
        HostFeature("kernel modules without BTF (a faster boot)", .optional, tools: [[ModuleSlimmer.objcopy]]),
        HostFeature("--kernel VERSION / --kernel-url", .optional, tools: [[GitKernelSource.git]]),
        HostFeature(
            "--kernel source:DIR (a kernel built from source)", .optional,
            tools: SourceKernelProvider.tools.map { [$0] })
    ]
}
