/// The config fragment `--kernel source:DIR` merges into the base config: everything the runtime
/// needs (KernelRequirement, for every root file system and compressor) built in, so the kernel
/// boots without an initramfs, plus what a prover's userland and the init expect of any Linux.
/// The second part makes even a `tinyconfig` base usable; on a defconfig base it is already set.
public enum KernelFragment {
    /// Options the runtime needs, all `=y`.
    public static var runtime: [String] {
        var options: [String] = []
        for root in [RootFilesystem.ext4] + RootFilesystem.SquashfsCompressor.allCases.map(RootFilesystem.squashfs) {
            for requirement in KernelRequirement.requirements(for: root) where !options.contains(requirement.option) {
                options.append(requirement.option)
            }
        }
        return options
    }

    /// Parents of the runtime's options (menus and buses kconfig hides them behind) and the baseline
    /// a static init and ordinary programs need.
    public static let baseline: [String] = [
        "CONFIG_64BIT", "CONFIG_SMP", "CONFIG_PRINTK", "CONFIG_BUG", "CONFIG_MULTIUSER", "CONFIG_BINFMT_ELF",
        "CONFIG_BINFMT_SCRIPT", "CONFIG_TTY", "CONFIG_UNIX98_PTYS", "CONFIG_SYSVIPC", "CONFIG_POSIX_TIMERS",
        "CONFIG_FUTEX",
        "CONFIG_EPOLL", "CONFIG_SIGNALFD", "CONFIG_TIMERFD", "CONFIG_EVENTFD", "CONFIG_SHMEM", "CONFIG_AIO",
        "CONFIG_FILE_LOCKING", "CONFIG_INOTIFY_USER", "CONFIG_PROC_FS", "CONFIG_SYSFS", "CONFIG_BLK_DEV_INITRD",
        "CONFIG_BLOCK", "CONFIG_PCI", "CONFIG_PCI_MSI", "CONFIG_HYPERVISOR_GUEST", "CONFIG_PARAVIRT",
        "CONFIG_KVM_GUEST",
        "CONFIG_VIRTIO_MENU", "CONFIG_SCSI_LOWLEVEL", "CONFIG_BLK_DEV", "CONFIG_NET", "CONFIG_UNIX", "CONFIG_INET",
        "CONFIG_NETWORK_FILESYSTEMS", "CONFIG_MISC_FILESYSTEMS", "CONFIG_SQUASHFS_XATTR", "CONFIG_MODULES",
        // The config travels with the kernel, so the image's kernel can be checked again later
        // (`--kernel file:` reads it back).
        "CONFIG_IKCONFIG", "CONFIG_IKCONFIG_PROC"
    ]

    public static var options: [String] { baseline + runtime.filter { !baseline.contains($0) } }

    public static var text: String {
        "# gvlt: what the Firestarter runtime needs, built in\n" + options.map { "\($0)=y\n" }.joined()
    }

    /// `base` with every fragment option set to `=y`, replacing what the base said of it. Kconfig
    /// then fills in what these imply (`make olddefconfig`).
    public static func merge(into base: String) -> String {
        let wanted = Set(options)
        let kept = base.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            if line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") {
                return !wanted.contains(String(line[..<eq]))
            }
            if line.hasPrefix("# CONFIG_"), line.hasSuffix(" is not set") {
                return !wanted.contains(String(line.dropFirst(2).dropLast(" is not set".count)))
            }
            return true
        }
        var merged = kept.joined(separator: "\n")
        if !merged.isEmpty && !merged.hasSuffix("\n") { merged += "\n" }
        return merged + text
    }
}
