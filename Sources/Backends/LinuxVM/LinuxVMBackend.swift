import Core
import Foundation

/// Firestarter Linux VM images (DESIGN.md §4): an MBR disk with a SYSLINUX-booted FAT partition
/// (kernel, initramfs) and a read-only SquashFS root holding the source tree, gvlt-init and the baked
/// runtime config.
public final class LinuxVMBackend: ImageBackend {
    public let name = "linuxvm"
    public let description = "Firestarter Linux VM images from a container image, Containerfile or rootfs directory"
    public let capabilities = BackendCapabilities(inputs: ["rootfs-tree"], outputs: ["raw-disk"], accelerators: ["nvidia"],
                                                  reproducible: true, buildsImages: true)

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(backend: LinuxVMBackend())
    }

    /// The backend's settings, from `plan.options` (flags or the build config file).
    struct Settings {
        var kernel: KernelChoice
        var root: RootFilesystem
        var initOption: String?
        var commandLine: String

        init(_ options: [String: String]) throws {
            let kernelText = options["kernel-file"].map { "file:" + $0 } ?? options["kernel"] ?? "debian"
            kernel = try KernelChoice.parse(kernelText, modules: options["kernel-modules"], config: options["kernel-config"])
            switch options["root-fs"] ?? "squashfs" {
            case "squashfs":
                let name = options["squashfs-compressor"] ?? "zstd"
                guard let compressor = RootFilesystem.SquashfsCompressor(rawValue: name) else {
                    throw InputError("--squashfs-compressor `\(name)` is not one of \(RootFilesystem.SquashfsCompressor.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                root = .squashfs(compressor)
            case "ext4":
                root = .ext4
            case let other:
                throw InputError("--root-fs `\(other)` is not squashfs or ext4")
            }
            initOption = options["init"]
            commandLine = options["kernel-cmdline"] ?? "console=ttyS0 panic=-1 quiet"
        }
    }

    public func validate(_ plan: BuildPlan) throws {
        guard plan.image != nil else {
            throw InputError("the linuxvm backend needs a source",
                             hint: "pass --container TRANSPORT:REF, --containerfile FILE or --rootfs-dir DIR")
        }
        _ = try Settings(plan.options)
    }

    /// Resolves the kernel, so that accelerators can build and check modules against it.
    public func prepare(_ plan: BuildPlan, context: BuildContext) throws -> BuildTarget {
        let settings = try Settings(plan.options)
        let kernel = try resolveKernel(settings, context: context)
        return BuildTarget(kernel: TargetKernel(release: kernel.release, modulesDirectory: kernel.modulesDirectory,
                                                debianPackage: kernel.debianPackage?.name, debianVersion: kernel.debianPackage?.version,
                                                origin: kernel.origin),
                           backendState: kernel)
    }

    func resolveKernel(_ settings: Settings, context: BuildContext) throws -> KernelBundle {
        try context.progress.step("resolving the kernel") {
            switch settings.kernel {
            case .debian(let version):
                return try DebianKernelProvider(cache: context.cache, version: version, progress: context.progress).bundle()
            case .file(let path, let modules, let config):
                return try FileKernelProvider.bundle(image: path, modules: modules, config: config)
            case .source(let directory, let config):
                return try SourceKernelProvider(directory: directory, baseConfig: config, cache: context.cache,
                                                progress: context.progress).bundle()
            }
        }
    }

    public func build(_ plan: BuildPlan, context: BuildContext) throws -> BuildReport {
        guard let image = plan.image else { throw InputError("the linuxvm backend needs a source") }
        let settings = try Settings(plan.options)
        let scratch = context.scratch.path
        let mtime = Timestamp.sourceDateEpoch
        let epoch = mtime.seconds
        let kernel = try (plan.target?.backendState as? KernelBundle) ?? resolveKernel(settings, context: context)
        let modules = try kernel.moduleTree()
        let order = try KernelValidator.validate(kernel.config, modules: modules, root: settings.root, kernel: kernel.origin)
        let initBinary = try ImageRoot.locateInit(option: settings.initOption)

        // source → tree + run spec → accelerator contributions → image.
        var extraEnv: [RunSpec.EnvVar] = []
        var guestModules: [String] = []
        for (_, contribution) in plan.contributions.sorted(by: { $0.key < $1.key }) {
            extraEnv += contribution.env
            guestModules += contribution.kernelModules
            for file in contribution.files {
                try image.tree.setLeaf(file.path.split(separator: "/").map(String.init), kind: file.kind, metadata: file.metadata)
            }
        }
        let config = RuntimeConfigFile.baked(from: image.runSpec, extraEnv: extraEnv, kernelModules: guestModules)
        try ImageRoot.complete(image.tree, init: initBinary, config: config, mtime: mtime, scratch: scratch)

        let rootImage = scratch + "/root.fs"
        try context.progress.step("packing the root file system (\(settings.root))") {
            switch settings.root {
            case .squashfs(let compressor):
                try SquashfsImage(compressor: compressor).build(image.tree, to: rootImage)
            case .ext4:
                try Ext4Image(epoch: epoch).build(image.tree, to: rootImage, scratch: scratch)
            }
        }
        var initramfs: String?
        var commandLine = settings.commandLine
        var diskSignature: UInt32?
        if order.isEmpty {
            // Everything is built in: the kernel mounts the root itself and starts the init there. It
            // finds the root by the disk signature, not by a device name that depends on the disk bus
            // and on which other disks the worker attaches.
            let fstype = settings.root == .ext4 ? "ext4" : "squashfs"
            let signature = try DiskImage.diskSignature(root: rootImage)
            diskSignature = signature
            commandLine += " root=PARTUUID=\(String(format: "%08x", signature))-02 rootfstype=\(fstype) ro init=/\(ImageRoot.initPath)"
        } else {
            let path = scratch + "/initrd.img"
            try context.progress.step("writing the initramfs (\(order.count) modules)") {
                var initramfs = Initramfs(release: kernel.release, modules: order.map { ($0, modules!.modules[$0]!) },
                                          modulesDirectory: modules!.directory, initBinary: initBinary, mtime: mtime,
                                          slimInto: scratch + "/modules")
                initramfs.note = { context.logger.warning("\($0)") }
                _ = try initramfs.write(to: path, force: true)
            }
            initramfs = path
        }
        let boot = try context.progress.step("writing the boot partition") {
            try BootPartition(kernel: kernel.image, initramfs: initramfs, commandLine: commandLine, sourceDateEpoch: epoch).build(in: scratch)
        }
        let disk = try context.progress.step("writing \(URL(fileURLWithPath: plan.output).lastPathComponent)") {
            try DiskImage.write(boot: boot, root: rootImage, diskSignature: diskSignature, to: plan.output, force: plan.force)
        }
        return BuildReport(backend: name, output: URL(fileURLWithPath: plan.output).standardizedFileURL.path, sha256: disk.sha256,
                           bytes: disk.bytes, steps: context.progress.timings.map { BuildReport.Step(name: $0.step, seconds: $0.seconds) })
    }
}
