import Core
import Foundation

/// The linuxvm backend's parts, offered to plugin backends that ask for them in `describe`
/// (docs/plugins.md, "Host components"): a third-party VM backend then boots the same kernel,
/// initramfs and init as a Firestarter image, and only writes its own disk format.
public final class LinuxVMComponents: HostComponentProvider {
    let backend: LinuxVMBackend

    public init(backend: LinuxVMBackend) {
        self.backend = backend
    }

    public let components = ["kernel", "initramfs", "init", "guest-root"]

    public let componentDescriptions = [
        "kernel":
            "the kernel image, its release, modules tree and the command line to boot it with (--kernel chooses it)",
        "initramfs":
            "an initramfs that loads the drivers the root needs, finds the partition holding the gvlt root by its content and starts the init there",
        "init": "gvlt-init, the guest's PID 1, and where it goes in the root",
        "guest-root":
            "root_tar completed as a Firestarter root: the accelerators' files and modules, the mount points, the init and the baked runtime config"
    ]

    public var optionKeys: [String] { LinuxVMBackend.Settings.optionKeys }

    public func session(options: BuildOptions) throws -> HostComponentSession {
        Session(backend: backend, settings: try LinuxVMBackend.Settings.decode(options))
    }

    /// One build's components: the linuxvm settings, and the kernel once `prepare` resolved it.
    final class Session: HostComponentSession {
        let backend: LinuxVMBackend
        let settings: LinuxVMBackend.Settings
        var kernel: KernelBundle?

        init(backend: LinuxVMBackend, settings: LinuxVMBackend.Settings) {
            self.backend = backend
            self.settings = settings
        }

        func prepare(context: BuildContext) throws -> BuildTarget {
            let kernel = try backend.resolveKernel(settings, context: context)
            self.kernel = kernel
            return LinuxVMBackend.target(kernel)
        }

        func resolve(_ wanted: [String], input: BuildInput, contributions: [NamedContribution], context: BuildContext)
            throws
            -> [String: [String: Any]]
        {
            let kernel = try self.kernel ?? backend.resolveKernel(settings, context: context)
            let modules = try kernel.moduleTree()
            let initBinary = try ImageRoot.locateInit(option: settings.initBinary)
            let mtime = Timestamp.sourceDateEpoch
            var extraCommandLine = contributions.flatMap(\.contribution.linux.kernelCommandLine)
            var result: [String: [String: Any]] = [:]
            if wanted.contains("guest-root") {
                guard let image = input.image else {
                    throw InputError(
                        "the guest-root component needs a root tree",
                        hint: "pass --container, --containerfile or --rootfs-dir")
                }
                extraCommandLine = try LinuxVMBackend.completeRoot(
                    image, contributions: contributions, settings: settings, kernel: kernel,
                    modules: modules, initBinary: initBinary, mtime: mtime,
                    scratch: context.scratch.path)
                result["guest-root"] = ["init": "/" + ImageRoot.initPath, "config": "/" + ImageRoot.configPath]
            }
            if wanted.contains("kernel") {
                var item: [String: Any] = [
                    "image": kernel.image, "release": kernel.release, "origin": kernel.origin,
                    "command_line": ([settings.commandLine] + extraCommandLine).joined(separator: " ")
                ]
                item["modules_dir"] = kernel.modulesDirectory
                result["kernel"] = item
            }
            if wanted.contains("initramfs") {
                let order = try KernelValidator.validate(
                    kernel.config, modules: modules, root: settings.root, kernel: kernel.origin)
                let path = try context.progress.step("writing the initramfs (\(order.count) modules)") {
                    try LinuxVMBackend.writeInitramfs(
                        kernel: kernel, modules: modules, order: order, initBinary: initBinary,
                        mtime: mtime, scratch: context.scratch.path, context: context)
                }
                result["initramfs"] = ["path": path, "modules": order]
            }
            if wanted.contains("init") {
                result["init"] = ["path": initBinary, "guest_path": "/" + ImageRoot.initPath]
            }
            return result
        }
    }
}
