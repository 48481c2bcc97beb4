import Core

/// The `--accel nvidia` options as given (flags, the build config file or `--option`), for Linux
/// and Nanos images alike; `NvidiaOptions` and `NvidiaNanosImage` read the parts that apply.
public struct NvidiaSettings: BuildSettings, Equatable {
    var modules: String?
    var kernelModules: [String]?
    var userspace: String?
    var version: String?
    var requireGPU: Bool?
    var klib: String?
    var firmware: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case modules = "nvidia-modules", kernelModules = "nvidia-kernel-modules", userspace = "nvidia-userspace"
        case version = "nvidia-version", requireGPU = "require-gpu", klib = "nvidia-klib", firmware = "nvidia-firmware"
    }

    /// The Linux-only options that are set, by flag name.
    var linuxOnly: [String] {
        [
            ("--nvidia-modules", modules != nil), ("--nvidia-kernel-modules", kernelModules != nil),
            ("--nvidia-userspace", userspace != nil),
            ("--require-gpu", requireGPU != nil)
        ].filter(\.1).map(\.0)
    }

    /// The Nanos-only options that are set, by flag name.
    var nanosOnly: [String] {
        [("--nvidia-klib", klib != nil), ("--nvidia-firmware", firmware != nil)].filter(\.1).map(\.0)
    }
}

/// The `--accel nvidia` settings of a Linux VM image.
struct NvidiaOptions: Equatable {
    enum ModuleSource: Equatable {
        /// Built from Debian's `nvidia-open-kernel-source` against the image's Debian kernel.
        case debian
        /// Prebuilt `.ko` files in a directory.
        case directory(String)
    }

    enum Userspace: String, Equatable {
        /// Add the driver's libraries; refuse a container that has another version of them.
        case install
        /// Leave the container's driver libraries as they are.
        case keep
    }

    var modules: ModuleSource = .debian
    /// Which of the driver's modules to load, in load order.
    var kernelModules: [String] = ["nvidia", "nvidia-uvm"]
    var userspace: Userspace = .install
    var requireGPU = false
    /// A driver version to insist on (e.g. 535.261.03); nil takes what apt offers.
    var version: String?

    static let knownModules = ["nvidia", "nvidia-uvm", "nvidia-modeset", "nvidia-drm", "nvidia-peermem"]

    init(_ settings: NvidiaSettings) throws {
        if let text = settings.modules {
            if text == "debian" {
                modules = .debian
            } else if text.hasPrefix("dir:"), text.count > 4 {
                modules = .directory(String(text.dropFirst(4)))
            } else {
                throw InputError(
                    "--nvidia-modules `\(text)` is not a module source",
                    hint: "use debian (the default) or dir:PATH (prebuilt .ko files)")
            }
        }
        if let list = settings.kernelModules {
            let names = list.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter
            { !$0.isEmpty }
            for name in names where !Self.knownModules.contains(name) {
                throw InputError(
                    "--nvidia-kernel-modules: `\(name)` is not one of the driver's modules",
                    hint: "choose from \(Self.knownModules.joined(separator: ", "))")
            }
            guard names.contains("nvidia") else {
                throw InputError("--nvidia-kernel-modules must include nvidia: every other module needs it")
            }
            // Load order: the driver's own dependency order, whatever order the user wrote.
            kernelModules = Self.knownModules.filter(names.contains)
        }
        if let text = settings.userspace {
            guard let value = Userspace(rawValue: text) else {
                throw InputError("--nvidia-userspace `\(text)` is not install or keep")
            }
            userspace = value
        }
        requireGPU = settings.requireGPU ?? false
        version = settings.version
        if let version, !NvidiaDriverRelease.isDriverVersion(version) {
            throw InputError(
                "--nvidia-version `\(version)` is not a driver version",
                hint: "write it as NVIDIA does, e.g. 535.261.03")
        }
    }
}
