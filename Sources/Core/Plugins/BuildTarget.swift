/// What the backend settled before accelerators run (Packer's prepare step): the facts an
/// accelerator's additions must match, such as the kernel the image boots.
public struct BuildTarget: @unchecked Sendable {
    /// The Linux kernel the image boots (linuxvm); nil for backends without one.
    public var kernel: TargetKernel?
    /// The Nanos release's klib directory (nanos), where accelerators find klibs by default.
    public var klibDirectory: String?
    /// The backend's own prepared state (its resolved kernel, say), handed back to it in `build`.
    /// Accelerators do not read it.
    public var backendState: Any?

    public init(kernel: TargetKernel? = nil, klibDirectory: String? = nil, backendState: Any? = nil) {
        self.kernel = kernel
        self.klibDirectory = klibDirectory
        self.backendState = backendState
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

    public init(release: String, modulesDirectory: String?, debianPackage: String? = nil, debianVersion: String? = nil,
                origin: String) {
        self.release = release
        self.modulesDirectory = modulesDirectory
        self.debianPackage = debianPackage
        self.debianVersion = debianVersion
        self.origin = origin
    }
}
