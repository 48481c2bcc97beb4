import Core
import Foundation

/// `--accel nvidia` for Linux VM images: the driver's kernel modules (checked against the image's
/// kernel by vermagic), the kernel modules they need from the kernel's own tree, the GSP firmware
/// and user-space libraries of the same driver version, and `/etc/gvlt/nvidia`, which tells
/// gvlt-init what to load and which device nodes to make.
struct NvidiaLinuxImage {
    var options: NvidiaOptions
    var kernel: TargetKernel
    var context: BuildContext

    /// The init reads this file (see GuestInit/NvidiaSetup.swift).
    static let guestConfigPath = "etc/gvlt/nvidia"
    /// Where the driver's modules go in the image: `updates/` is where out-of-tree modules live.
    static let moduleSubdirectory = "updates/nvidia"

    func contribution(tree: FileTree) throws -> AcceleratorContribution {
        guard let modulesDirectory = kernel.modulesDirectory else {
            throw InputError(
                "--accel nvidia needs a kernel that loads modules, and \(kernel.origin) has none",
                hint: "use --kernel debian, or a kernel built with CONFIG_MODULES")
        }
        // The image's own driver libraries are checked before anything is built or downloaded.
        let driver = try resolveDriver()
        let installLibraries = try checkUserspace(tree: tree, driver: driver)
        let moduleDirectory = try driverModulesDirectory(for: driver)
        let kernelTree = try ModuleTree(directory: modulesDirectory)
        guard let vermagic = try kernelTree.vermagic() else {
            throw InputError(
                "cannot tell the vermagic of kernel \(kernel.release): its modules tree \(modulesDirectory) has no modules"
            )
        }
        var modules: [(name: String, host: String)] = []
        var kernelNeeds: [String] = []
        let own = Set(NvidiaOptions.knownModules.map(ModuleTree.canonical))
        for name in options.kernelModules {
            let host = moduleDirectory + "/" + name + ".ko"
            guard FileManager.default.fileExists(atPath: host) else {
                throw InputError(
                    "\(moduleDirectory) has no \(name).ko",
                    hint:
                        "the driver's modules directory must hold \(options.kernelModules.map { $0 + ".ko" }.joined(separator: ", "))"
                )
            }
            let info = try ModuleInfo(module: host)
            guard info.vermagic == vermagic else {
                throw InputError(
                    "\(name).ko was built for another kernel: its vermagic is `\(info.vermagic ?? "(none)")`, and kernel \(kernel.release) has `\(vermagic)`",
                    hint:
                        "build the modules for \(kernel.release) (the default, --nvidia-modules debian, does) or use the kernel they were built for"
                )
            }
            kernelNeeds += info.dependencies.filter { !own.contains(ModuleTree.canonical($0)) }
            modules.append((name, host))
        }
        let dependencies = try kernelTree.closure(of: kernelNeeds).map { ($0, kernelTree.modules[$0]!) }
        let parts = try NvidiaUserspace(driver: driver, cache: context.cache, progress: context.progress).fetch()

        let files = GuestFiles(mtime: .sourceDateEpoch)
        let release = "lib/modules/\(kernel.release)"
        var loadOrder: [String] = []
        for (_, relative) in dependencies {
            try files.add(host: modulesDirectory + "/" + relative, at: release + "/" + relative)
            loadOrder.append("/" + release + "/" + relative)
        }
        for (name, host) in modules {
            let path = "\(release)/\(Self.moduleSubdirectory)/\(name).ko"
            try files.add(host: host, at: path)
            loadOrder.append("/" + path)
        }
        for (path, host) in parts.firmware { try files.add(host: host, at: path) }
        if installLibraries {
            let libraryDirectory = Self.libraryDirectory(in: tree)
            for (name, host) in parts.libraries {
                try files.add(host: host, at: libraryDirectory + "/" + name, permissions: 0o644)
            }
            for (name, target) in parts.libraryLinks { files.link(libraryDirectory + "/" + name, to: target) }
        }
        var config = "# Written by gvlt --accel nvidia; read by gvlt-init, which loads the modules in this order.\n"
        config += "driver \(driver.version)\nrequire-gpu \(options.requireGPU ? "yes" : "no")\n"
        config += loadOrder.map { "module \($0)\n" }.joined()
        try files.add(text: config, at: Self.guestConfigPath, scratch: context.scratch.path)
        return AcceleratorContribution(files: files.entries, resources: ["gpus": "1"])
    }

    /// The driver release: what apt offers for the module source, or what the given nvidia.ko is.
    func resolveDriver() throws -> NvidiaDriverRelease {
        switch options.modules {
        case .debian:
            return try NvidiaDriverRelease.resolve(wanted: options.version)
        case .directory(let directory):
            let nvidia = directory + "/nvidia.ko"
            guard FileManager.default.fileExists(atPath: nvidia) else {
                throw InputError(
                    "--nvidia-modules dir:\(directory) has no nvidia.ko",
                    hint: "point it at the directory holding the built .ko files")
            }
            guard let version = try ModuleInfo(module: nvidia).values("version").first,
                NvidiaDriverRelease.isDriverVersion(version)
            else {
                throw InputError("\(nvidia) does not say which driver version it is (no version= in its .modinfo)")
            }
            if let wanted = options.version, wanted != version {
                throw InputError("--nvidia-version is \(wanted), but \(nvidia) is driver \(version)")
            }
            // The firmware and libraries must be this driver's, so the release is looked up by them.
            return try NvidiaDriverRelease.resolve(wanted: version, package: NvidiaUserspace.firmwarePackage)
        }
    }

    /// The directory holding the driver's modules: built (once, cached) or given.
    func driverModulesDirectory(for driver: NvidiaDriverRelease) throws -> String {
        switch options.modules {
        case .debian:
            return try NvidiaModuleBuild(
                driver: driver, kernel: kernel, cache: context.cache, progress: context.progress
            ).modulesDirectory()
        case .directory(let directory):
            return directory
        }
    }

    /// Whether to add the driver's libraries. A container that ships driver libraries of another
    /// version would load those instead of ours (or a mix): refused unless `--nvidia-userspace keep`.
    /// A CUDA runtime newer than the driver supports only gets a warning: it fails at run time, but
    /// the image may still be meant for another driver.
    func checkUserspace(tree: FileTree, driver: NvidiaDriverRelease) throws -> Bool {
        var foreign: [(path: String, version: String)] = []
        for entry in tree.entries() {
            guard case .regularFile = entry.kind else { continue }
            let name = entry.path.split(separator: "/").last.map(String.init) ?? entry.path
            if let version = NvidiaVersionString.driverLibraryVersion(fileName: name), version != driver.version {
                foreign.append(("/" + entry.path, version))
            }
            if name.hasPrefix("libcudart.so."), let newest = NvidiaUserspace.newestCUDA(forDriver: driver.version) {
                let numbers = name.dropFirst("libcudart.so.".count).split(separator: ".").compactMap { Int($0) }
                if numbers.count >= 2, (numbers[0], numbers[1]) > newest {
                    context.logger.warning(
                        "the image's CUDA runtime /\(entry.path) is CUDA \(numbers[0]).\(numbers[1]), newer than NVIDIA driver \(driver.version) supports (CUDA \(newest.0).\(newest.1)); CUDA calls will fail with cudaErrorInsufficientDriver"
                    )
                }
            }
        }
        if options.userspace == .keep { return false }
        if let first = foreign.first {
            throw InputError(
                "the image already has NVIDIA driver libraries of version \(first.version) (\(foreign.map(\.path).joined(separator: ", "))), and --accel nvidia adds driver \(driver.version)",
                hint:
                    "remove them from the image, or pass --nvidia-userspace keep to leave the image's libraries as they are (they must then match driver \(driver.version) to work)"
            )
        }
        return true
    }

    /// The directory the image's dynamic loader searches by default: Debian's multiarch one, or
    /// /usr/lib64 on distributions without it.
    static func libraryDirectory(in tree: FileTree) -> String {
        for candidate in ["usr/lib/x86_64-linux-gnu", "usr/lib64"] {
            if (try? tree.directory(at: candidate.split(separator: "/").map(String.init)[...])) != nil {
                return candidate
            }
        }
        return "usr/lib/x86_64-linux-gnu"
    }
}
