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
        "kernel": "the kernel image, its release, modules tree and the command line to boot it with (--kernel chooses it)",
        "initramfs": "an initramfs that loads the drivers the root needs, finds the partition holding the gvlt root by its content and starts the init there",
        "init": "gvlt-init, the guest's PID 1, and where it goes in the root",
        "guest-root": "root_tar completed as a Firestarter root: the accelerators' files and modules, the mount points, the init and the baked runtime config",
    ]

    public func prepare(_ plan: BuildPlan, context: BuildContext) throws -> BuildTarget {
        try backend.prepare(plan, context: context)
    }

    public func resolve(_ wanted: [String], plan: BuildPlan, image: LoadedImage?, context: BuildContext) throws -> [String: [String: Any]] {
        let settings = try LinuxVMBackend.Settings(plan.options)
        let kernel = try (plan.target?.backendState as? KernelBundle) ?? backend.resolveKernel(settings, context: context)
        let modules = try kernel.moduleTree()
        let initBinary = try ImageRoot.locateInit(option: settings.initBinary)
        let mtime = Timestamp.sourceDateEpoch
        var extraCommandLine = plan.contributions.sorted { $0.key < $1.key }.flatMap(\.value.kernelCommandLine)
        var result: [String: [String: Any]] = [:]
        if wanted.contains("guest-root") {
            guard let image else { throw InputError("the guest-root component needs a root tree", hint: "pass --container, --containerfile or --rootfs-dir") }
            extraCommandLine = try LinuxVMBackend.completeRoot(image, contributions: plan.contributions, settings: settings, kernel: kernel,
                                                               modules: modules, initBinary: initBinary, mtime: mtime, scratch: context.scratch.path)
            result["guest-root"] = ["init": "/" + ImageRoot.initPath, "config": "/" + ImageRoot.configPath]
        }
        if wanted.contains("kernel") {
            var item: [String: Any] = ["image": kernel.image, "release": kernel.release, "origin": kernel.origin,
                                       "command_line": ([settings.commandLine] + extraCommandLine).joined(separator: " ")]
            item["modules_dir"] = kernel.modulesDirectory
            result["kernel"] = item
        }
        if wanted.contains("initramfs") {
            let order = try KernelValidator.validate(kernel.config, modules: modules, root: settings.root, kernel: kernel.origin)
            let path = try LinuxVMBackend.writeInitramfs(kernel: kernel, modules: modules, order: order, initBinary: initBinary,
                                                         mtime: mtime, scratch: context.scratch.path, context: context)
            result["initramfs"] = ["path": path, "modules": order]
        }
        if wanted.contains("init") {
            result["init"] = ["path": initBinary, "guest_path": "/" + ImageRoot.initPath]
        }
        return result
    }
}
