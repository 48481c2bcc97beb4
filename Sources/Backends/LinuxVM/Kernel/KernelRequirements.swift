import Core

/// What the Firestarter runtime needs from a kernel: the disk and share drivers, the
/// root file system, devtmpfs, the serial console and ACPI power-off.
public struct KernelRequirement: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Must be `=y`.
        case builtIn
        /// `=y`, or `=m` with the module (by its name) in the modules tree.
        case builtInOrModule(module: String)
    }

    public var option: String
    public var kind: Kind
    /// For error messages: why the runtime needs it.
    public var purpose: String

    public static func requirements(for root: RootFilesystem) -> [KernelRequirement] {
        var list: [KernelRequirement] = [
            .init(option: "CONFIG_VIRTIO", kind: .builtInOrModule(module: "virtio"), purpose: "virtio core"),
            .init(
                option: "CONFIG_VIRTIO_PCI", kind: .builtInOrModule(module: "virtio_pci"),
                purpose: "virtio devices on PCI"),
            .init(option: "CONFIG_SCSI", kind: .builtInOrModule(module: "scsi_mod"), purpose: "SCSI core"),
            .init(
                option: "CONFIG_SCSI_VIRTIO", kind: .builtInOrModule(module: "virtio_scsi"),
                purpose: "the worker's virtio-scsi disk"),
            .init(option: "CONFIG_BLK_DEV_SD", kind: .builtInOrModule(module: "sd_mod"), purpose: "SCSI disks"),
            .init(
                option: "CONFIG_VIRTIO_BLK", kind: .builtInOrModule(module: "virtio_blk"), purpose: "virtio-blk disks"),
            .init(
                option: "CONFIG_NET_9P", kind: .builtInOrModule(module: "9pnet"),
                purpose: "9p shares (input, output, rt-config)"),
            .init(
                option: "CONFIG_NET_9P_VIRTIO", kind: .builtInOrModule(module: "9pnet_virtio"),
                purpose: "9p over virtio"),
            .init(option: "CONFIG_9P_FS", kind: .builtInOrModule(module: "9p"), purpose: "mounting 9p shares"),
            .init(option: "CONFIG_DEVTMPFS", kind: .builtIn, purpose: "/dev"),
            .init(option: "CONFIG_SERIAL_8250", kind: .builtIn, purpose: "the serial console"),
            .init(option: "CONFIG_SERIAL_8250_CONSOLE", kind: .builtIn, purpose: "the serial console"),
            .init(option: "CONFIG_ACPI", kind: .builtIn, purpose: "ACPI power-off"),
            .init(
                option: "CONFIG_X86_IOPL_IOPERM", kind: .builtIn,
                purpose: "the init's exit through isa-debug-exit (ioperm)"),
            .init(option: "CONFIG_TMPFS", kind: .builtIn, purpose: "/run, /tmp and /dev/shm")
        ]
        switch root {
        case .squashfs(let compressor):
            list.append(
                .init(
                    option: "CONFIG_SQUASHFS", kind: .builtInOrModule(module: "squashfs"), purpose: "the squashfs root")
            )
            list.append(
                .init(
                    option: compressor.kernelOption, kind: .builtIn,
                    purpose:
                        "squashfs compressed with \(compressor.rawValue) (choose another with --squashfs-compressor)"))
        case .ext4:
            list.append(
                .init(option: "CONFIG_EXT4_FS", kind: .builtInOrModule(module: "ext4"), purpose: "the ext4 root"))
        }
        return list
    }
}
