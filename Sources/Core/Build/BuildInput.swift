/// What a build starts from: a root tree with its run spec (any image source), or one program.
public enum BuildInput {
    /// From `--container`, `--containerfile` or `--rootfs-dir` (backends whose inputs are `rootfs-tree`).
    case rootTree(LoadedImage)
    /// The PROGRAM argument (backends whose inputs are `elf-program`). Nil when the backend finds
    /// it in its own settings (the Nanos manifest's `Program`).
    case program(String?)

    public var image: LoadedImage? {
        if case .rootTree(let image) = self { return image }
        return nil
    }

    public var program: String? {
        if case .program(let path) = self { return path }
        return nil
    }
}

/// What kind of target a backend settles in `prepare`, known before it does: accelerators check
/// their settings against it up front.
public enum TargetKind: String, Sendable {
    /// A Linux kernel (linuxvm, and plugin backends that use its host components).
    case linuxKernel = "linux-kernel"
    /// A Nanos release (nanos).
    case nanosRelease = "nanos-release"
    /// Nothing accelerators must match.
    case generic
}

/// What the backend settled before accelerators run (Packer's prepare step): the facts an
/// accelerator's additions must match. Accelerators switch on it, never on a backend's name.
public enum BuildTarget: Sendable {
    case linuxKernel(TargetKernel)
    case nanosRelease(NanosTarget)
    case generic

    public var kind: TargetKind {
        switch self {
        case .linuxKernel: return .linuxKernel
        case .nanosRelease: return .nanosRelease
        case .generic: return .generic
        }
    }
}

/// The kernel of a Linux image, as accelerators that add modules need to know it.
public struct TargetKernel: Sendable {
    /// `uname -r`, e.g. `6.1.0-56-amd64`.
    public var release: String
    /// The kernel's `lib/modules/<release>` on the host, when it has loadable modules.
    public var modulesDirectory: String?
    /// The Debian package the kernel came from, e.g. (`linux-image-6.1.0-56-amd64`, `6.1.192-2`).
    public var debianPackage: String?
    public var debianVersion: String?
    /// For messages: where the kernel came from.
    public var origin: String

    public init(
        release: String, modulesDirectory: String?, debianPackage: String? = nil, debianVersion: String? = nil,
        origin: String
    ) {
        self.release = release
        self.modulesDirectory = modulesDirectory
        self.debianPackage = debianPackage
        self.debianVersion = debianVersion
        self.origin = origin
    }
}

/// The Nanos release an image boots, as accelerators that add klibs need to know it.
public struct NanosTarget: Sendable {
    /// The release's klib directory, where accelerators find klibs by default.
    public var klibDirectory: String?

    public init(klibDirectory: String?) {
        self.klibDirectory = klibDirectory
    }
}
