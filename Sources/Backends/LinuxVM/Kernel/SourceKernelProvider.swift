import Core
import Foundation

/// The `source:DIR` provider: builds a kernel from a Linux source tree, with the runtime's drivers
/// built in (KernelFragment), so the image needs no initramfs. The build is out of tree (the source
/// directory is only read) and its result is cached by the digest of the source, the base config,
/// the fragment and the compiler, so it runs once per distinct input.
public struct SourceKernelProvider {
    public var directory: String
    /// The config to start from; nil means the tree's `x86_64_defconfig`.
    public var baseConfig: String?
    public var cache: CacheDirectory
    public var progress: ProgressReporter
    public var jobs: Int

    /// Bumped when the build recipe below changes what it produces for the same inputs.
    static let recipeVersion = "1"
    static let cacheNamespace = "kernels/source"

    public init(
        directory: String, baseConfig: String?, cache: CacheDirectory,
        progress: ProgressReporter = ProgressReporter(mode: .quiet),
        jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.directory = directory
        self.baseConfig = baseConfig
        self.cache = cache
        self.progress = progress
        self.jobs = max(1, jobs)
    }

    static let make = HostTool("make", apt: "make", purpose: "building a kernel from source")
    static let gcc = HostTool("gcc", apt: "gcc", purpose: "building a kernel from source")

    /// Programs a kernel build runs, with the Debian packages that have them. (depmod is not needed:
    /// ModuleTree reads dependencies from the modules themselves.)
    static let tools: [HostTool] = [
        make, gcc,
        HostTool("flex", apt: "flex", purpose: "building a kernel from source (kconfig)"),
        HostTool("bison", apt: "bison", purpose: "building a kernel from source (kconfig)"),
        HostTool("bc", apt: "bc", purpose: "building a kernel from source"),
        HostTool("perl", apt: "perl", purpose: "building a kernel from source")
    ]

    public func bundle() throws -> KernelBundle {
        let source = URL(fileURLWithPath: directory).standardizedFileURL.path
        try checkTree(source)
        let missing = Self.tools.filter { $0.locate() == nil }
        guard missing.isEmpty else {
            throw InputError(
                "--kernel source:\(directory) needs \(missing.map(\.name).joined(separator: ", ")) to build the kernel, and this machine lacks them",
                hint:
                    "apt-get install \(Set(missing.map(\.aptPackage)).sorted().joined(separator: " ")) (plus libelf-dev and libssl-dev, which the kernel's host tools link)"
            )
        }
        let base: String
        if let baseConfig {
            guard let data = FileManager.default.contents(atPath: baseConfig) else {
                throw InputError(
                    "cannot read the base kernel config \(baseConfig)", hint: "check the --kernel-config path")
            }
            base = String(decoding: data, as: UTF8.self)
        } else {
            base = ""
        }
        let compiler =
            try HostCommand.run(try Self.gcc.require(), ["--version"]).output
            .split(separator: "\n").first.map(String.init) ?? "gcc"
        let digest = try progress.step("hashing the kernel source \(source)") {
            try SHA256Hex.of(directoryTree: source, skip: [".git"])
        }
        let key = SHA256Hex.of(
            Array(
                [
                    Self.recipeVersion, digest, baseConfig == nil ? "x86_64_defconfig" : "config\n" + base,
                    KernelFragment.text, compiler
                ].joined(separator: "\n\u{0}").utf8))
        let path = try cache.entry("\(Self.cacheNamespace)/\(key.prefix(32))") { staging in
            try build(source: source, base: baseConfig == nil ? nil : base, into: staging)
        }
        let bundle = try DebianKernelProvider.bundle(at: path, origin: "source \(source)")
        return KernelBundle(
            release: bundle.release, image: bundle.image, config: bundle.config,
            modulesDirectory: bundle.modulesDirectory, origin: "source \(source) (\(bundle.release))")
    }

    /// A tree `make O=` accepts: a Linux source with x86 support, not configured in place.
    func checkTree(_ source: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError(
                "--kernel source:\(directory): no such directory", hint: "pass the top directory of a Linux source tree"
            )
        }
        for marker in ["Makefile", "Kconfig", "arch/x86/Kconfig", "scripts/kconfig"]
        where !FileManager.default.fileExists(atPath: source + "/" + marker) {
            throw InputError(
                "--kernel source:\(directory) is not a Linux source tree with x86 support (no \(marker))",
                hint: "pass the top directory of a Linux source tree, e.g. from Debian's linux-source package")
        }
        // Kbuild refuses out-of-tree builds from a tree that was configured or built in place.
        for leftover in [".config", "include/config", "include/generated"]
        where FileManager.default.fileExists(atPath: source + "/" + leftover) {
            throw InputError(
                "--kernel source:\(directory) was configured or built in place (it has \(leftover)); gvlt builds out of tree and Kbuild refuses that from such a tree",
                hint:
                    "run `make mrproper` in it (save its .config first and pass that with --kernel-config FILE), or pass a clean copy"
            )
        }
    }

    func build(source: String, base: String?, into staging: String) throws {
        let build = staging + "/build"
        try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
        let make = try Self.make.require()
        var environment = ProcessInfo.processInfo.environment
        // The same inputs give the same kernel: no build time, user, host or SCM version in it.
        environment["KBUILD_BUILD_TIMESTAMP"] = "Thu Jan  1 00:00:00 UTC 1970"
        environment["KBUILD_BUILD_USER"] = "gvlt"
        environment["KBUILD_BUILD_HOST"] = "gvlt"
        environment["KBUILD_BUILD_VERSION"] = "1"
        environment["LOCALVERSION"] = ""
        environment["LC_ALL"] = "C"
        let common = ["-C", source, "O=" + build, "ARCH=x86_64"]
        func run(_ arguments: [String], _ what: String) throws -> String {
            do {
                return try HostCommand.run(make, common + arguments, environment: environment).output
            } catch let failed as HostCommand.Failed {
                let log = cache.root + "/logs/kernel-\(URL(fileURLWithPath: staging).lastPathComponent).log"
                try? FileManager.default.createDirectory(
                    atPath: cache.root + "/logs", withIntermediateDirectories: true)
                _ = FileManager.default.createFile(atPath: log, contents: Data(failed.output.utf8))
                throw InputError(
                    "\(what) failed for --kernel source:\(directory) (make exit status \(failed.status)):\n"
                        + failed.output.split(separator: "\n").suffix(25).joined(separator: "\n"),
                    hint: "the full output is in \(log)")
            }
        }

        try progress.step("configuring the kernel") {
            if let base {
                try Data(base.utf8).write(to: URL(fileURLWithPath: build + "/.config"))
            } else {
                _ = try run(["x86_64_defconfig"], "configuring (x86_64_defconfig)")
            }
            let configured = String(
                decoding: FileManager.default.contents(atPath: build + "/.config") ?? Data(), as: UTF8.self)
            try Data(KernelFragment.merge(into: configured).utf8).write(to: URL(fileURLWithPath: build + "/.config"))
            _ = try run(["olddefconfig"], "configuring (olddefconfig)")
        }
        // Kconfig silently drops what it cannot satisfy; say which options did not stick.
        let config = try KernelConfig(path: build + "/.config")
        let dropped = KernelFragment.options.filter { config[$0] != .builtIn }
        guard dropped.isEmpty else {
            throw InputError(
                "--kernel source:\(directory): kconfig would not build in \(dropped.joined(separator: ", ")) (their dependencies are not met by this tree and base config)",
                hint: "start from a base config that allows them (--kernel-config FILE), or use a newer source tree")
        }
        let version = try run(["-s", "kernelversion"], "reading the kernel version").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let modular = config["CONFIG_MODULES"] == .builtIn
        try progress.step("building Linux \(version) (\(jobs) jobs; this takes minutes)") {
            _ = try run(["-j\(jobs)", "bzImage"] + (modular ? ["modules"] : []), "building the kernel")
        }
        let release = try run(["-s", "kernelrelease"], "reading the kernel release").trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard !release.isEmpty, !release.contains("/"), !release.contains("\n") else {
            throw InputError(
                "--kernel source:\(directory): `make kernelrelease` gave `\(release)`, which is not a release name")
        }
        try FileManager.default.createDirectory(atPath: staging + "/boot", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: build + "/arch/x86/boot/bzImage", toPath: staging + "/boot/vmlinuz-\(release)")
        try FileManager.default.copyItem(atPath: build + "/.config", toPath: staging + "/boot/config-\(release)")
        if modular {
            try progress.step("installing the kernel's modules") {
                _ = try run(
                    ["INSTALL_MOD_PATH=" + staging, "INSTALL_MOD_STRIP=1", "modules_install"], "installing the modules")
            }
            // These point back into the source and the build directory, which are not kept.
            for link in ["build", "source"] { unlink(staging + "/lib/modules/\(release)/\(link)") }
        }
        try FileManager.default.removeItem(atPath: build)
    }
}
