import Core
import Foundation

/// Builds NVIDIA's open kernel modules from Debian's `nvidia-open-kernel-source` against exactly the
/// kernel the image boots: its `linux-headers-<release>`, the matching `-common` headers and
/// `linux-kbuild`, downloaded and unpacked (never installed, no DKMS, no root). The stripped modules
/// are cached per (driver, kernel release, kernel package version), under the cache's lock, so one
/// build serves every later image.
struct NvidiaModuleBuild {
    var driver: NvidiaDriverRelease
    var kernel: TargetKernel
    var cache: CacheDirectory
    var progress: ProgressReporter
    var jobs = ProcessInfo.processInfo.activeProcessorCount

    /// Bumped when the recipe below changes what it produces for the same inputs.
    static let recipeVersion = "1"
    static let cacheNamespace = "nvidia/modules"

    static let make = HostTool("make", apt: "make", purpose: "building the NVIDIA kernel modules (--accel nvidia)")
    static let strip = HostTool(
        "strip", apt: "binutils", purpose: "stripping the NVIDIA kernel modules (--accel nvidia)")
    static let tar = HostTool("tar", apt: "tar", purpose: "unpacking the NVIDIA module source (--accel nvidia)")

    /// The directory holding `<module>.ko` for every module the driver builds.
    func modulesDirectory() throws -> String {
        guard let kernelPackage = kernel.debianPackage, let kernelVersion = kernel.debianVersion else {
            throw InputError(
                "--nvidia-modules debian builds against Debian's kernel packages, and the image's kernel (\(kernel.origin)) is not one",
                hint: "use --kernel debian, or pass modules built for \(kernel.release) with --nvidia-modules dir:PATH")
        }
        let key = [driver.debianVersion, kernel.release, kernelVersion].map(CacheDirectory.keyComponent).joined(
            separator: "_")
        let path = "\(Self.cacheNamespace)/\(key)_r\(Self.recipeVersion)"
        return try cache.entry(path) { staging in
            try progress.step(
                "building the NVIDIA \(driver.version) kernel modules for \(kernel.release) (once; about 2 minutes)"
            ) {
                try build(kernelPackage: kernelPackage, kernelVersion: kernelVersion, into: staging)
            }
        } + "/modules"
    }

    private func build(kernelPackage: String, kernelVersion: String, into staging: String) throws {
        let release = kernel.release
        try Self.requireTools([Self.make, Self.strip, Self.tar])
        let work = staging + "/work"
        let root = work + "/root"
        let downloads = work + "/download"
        let headers = try Self.headerPackages(release: release, version: kernelVersion)
        for (package, version) in [(NvidiaDriverRelease.moduleSourcePackage, driver.debianVersion)] + headers {
            let deb = try DebianPackage.download(package, version: version, into: downloads + "/" + package)
            try DebianPackage.extract(deb, into: root) {
                $0.hasPrefix("usr/src/") || $0.hasPrefix("usr/lib/linux-kbuild-")
            }
        }
        // The flavour's Makefile includes the common one by its installed path; point it at ours.
        let output = root + "/usr/src/linux-headers-\(release)"
        let makefile = output + "/Makefile"
        guard let text = FileManager.default.contents(atPath: makefile).map({ String(decoding: $0, as: UTF8.self) })
        else {
            throw InputError(
                "linux-headers-\(release) \(kernelVersion) has no Makefile; cannot build modules against it")
        }
        try Data(text.replacingOccurrences(of: "include /usr/src/", with: "include \(root)/usr/src/").utf8)
            .write(to: URL(fileURLWithPath: makefile))
        let common = try Self.commonHeaders(in: root + "/usr/src", release: release)
        try Self.requireTools([try Self.kernelCompiler(output: output)])

        let sourceTar = root + "/usr/src/nvidia-open-kernel.tar.xz"
        guard FileManager.default.fileExists(atPath: sourceTar) else {
            throw InputError(
                "\(NvidiaDriverRelease.moduleSourcePackage) \(driver.debianVersion) has no usr/src/nvidia-open-kernel.tar.xz"
            )
        }
        let unpacked = work + "/nvidia"
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        try HostCommand.run(try Self.tar.require(), ["-xJf", sourceTar, "-C", unpacked])
        let source = unpacked + "/modules/nvidia-open-kernel"
        try NvidiaCompatPatch.apply(to: source, driver: driver.version)

        let log = staging + "/build.log"
        // Build paths are mapped away so the modules do not carry this temporary directory.
        let result = try HostCommand.run(
            try Self.make.require(),
            [
                "-C", source, "SYSSRC=\(common)", "SYSOUT=\(output)", "modules", "-j\(max(1, jobs))",
                "KCFLAGS=-ffile-prefix-map=\(work)=/gvlt-nvidia-build"
            ], check: false)
        try Data(result.output.utf8).write(to: URL(fileURLWithPath: log))
        guard result.status == 0 else {
            let tail = result.output.split(separator: "\n", omittingEmptySubsequences: false).suffix(25).joined(
                separator: "\n")
            throw InputError(
                "NVIDIA driver \(driver.version) does not build against kernel \(release) (\(kernelPackage) \(kernelVersion)):\n\(tail)",
                hint:
                    "that driver and kernel pair is not supported; pick another kernel (--kernel debian:VERSION) or driver (--nvidia-version), or pass prebuilt modules with --nvidia-modules dir:PATH"
            )
        }
        let modules = staging + "/modules"
        try FileManager.default.createDirectory(atPath: modules, withIntermediateDirectories: true)
        let built = try FileManager.default.contentsOfDirectory(atPath: source).filter { $0.hasSuffix(".ko") }.sorted()
        guard built.contains("nvidia.ko") else {
            throw InputError("the NVIDIA module build finished without nvidia.ko; see \(log)")
        }
        for module in built {
            // With debug info nvidia.ko is 185 MB; stripped, 11 MB.
            try HostCommand.run(try Self.strip.require(), ["-g", "-o", modules + "/" + module, source + "/" + module])
        }
        try FileManager.default.removeItem(atPath: work)
    }

    /// `linux-headers-<release>`'s own dependencies at `version`: the `-common` headers and
    /// `linux-kbuild-*`, which the build needs next to it.
    static func headerPackages(release: String, version: String) throws -> [(String, String)] {
        let package = "linux-headers-\(release)"
        guard let fields = try DebianPackage.show("\(package)=\(version)") else {
            throw InputError(
                "apt has no \(package) \(version) for the image's kernel",
                hint:
                    "run `apt-get update`; if the kernel is older than what apt offers, build with --kernel debian (the current one)"
            )
        }
        var packages = [(package, version)]
        for dependency in (fields["Depends"] ?? "").split(separator: ",") {
            let name = String(dependency.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
            if name.hasPrefix("linux-headers-") || name.hasPrefix("linux-kbuild-") { packages.append((name, version)) }
        }
        return packages
    }

    /// The compiler the kernel's headers name as CC in `.kernelvariables` (`gcc-12` for Debian 12):
    /// modules must be built with the kernel's own compiler.
    static func kernelCompiler(output: String) throws -> HostTool {
        let text =
            FileManager.default.contents(atPath: output + "/.kernelvariables").map {
                String(decoding: $0, as: UTF8.self)
            } ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("CC ") || line.hasPrefix("CC=") {
            if let word = line.split(whereSeparator: { $0 == " " || $0 == ")" }).last(where: { $0.hasPrefix("gcc") }) {
                let name = String(word)
                return HostTool(
                    name, apt: name, purpose: "building the NVIDIA kernel modules (the kernel was built with it)")
            }
        }
        return HostTool("gcc", apt: "gcc", purpose: "building the NVIDIA kernel modules")
    }

    static func requireTools(_ tools: [HostTool]) throws {
        let missing = tools.filter { $0.locate() == nil }
        guard missing.isEmpty else {
            throw InputError(
                "building the NVIDIA kernel modules needs \(missing.map(\.name).joined(separator: ", ")), and this machine lacks them",
                hint: "apt-get install \(Set(missing.map(\.aptPackage)).sorted().joined(separator: " "))")
        }
    }

    static func commonHeaders(in directory: String, release: String) throws -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard let common = names.first(where: { $0.hasPrefix("linux-headers-") && $0.hasSuffix("-common") }) else {
            throw InputError("the headers for \(release) came without their -common part")
        }
        return directory + "/" + common
    }
}
