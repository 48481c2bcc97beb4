/// What an accelerator adds to a build, in Core terms only, so that it never reaches into a backend.
public struct AcceleratorContribution: Sendable {
    /// Entries to add to the root tree (libraries, firmware, device-node placeholders).
    public var files: [FileEntry]
    /// Kernel modules the guest must load, in order (Linux VM). A module not among `files` comes
    /// from the kernel's own modules tree, with what it depends on.
    public var kernelModules: [String]
    /// Words added to the kernel command line (Linux VM), e.g. `iommu=pt`.
    public var kernelCommandLine: [String]
    /// Nanos klibs to put in the boot file system.
    public var klibs: [String]
    /// Host files for some of `klibs` (by name), instead of the release's klib directory.
    public var klibFiles: [String: String]
    /// Environment added to the run spec.
    public var env: [RunSpec.EnvVar]
    /// What the run needs from the host, e.g. ["gpus": "1"].
    public var resources: [String: String]

    public init(files: [FileEntry] = [], kernelModules: [String] = [], kernelCommandLine: [String] = [], klibs: [String] = [],
                klibFiles: [String: String] = [:], env: [RunSpec.EnvVar] = [], resources: [String: String] = [:]) {
        self.files = files
        self.kernelModules = kernelModules
        self.kernelCommandLine = kernelCommandLine
        self.klibs = klibs
        self.klibFiles = klibFiles
        self.env = env
        self.resources = resources
    }
}

/// Hardware support added to an image by `--accel NAME`.
public protocol Accelerator: AnyObject {
    var name: String { get }
    /// One line for `gvlt backends`.
    var description: String { get }
    /// Backend names this accelerator can contribute to.
    var supportedBackends: [String] { get }
    /// Checks the accelerator's options before any work is done (no download, no build).
    func validate(_ plan: BuildPlan) throws
    /// What it adds to `plan`, matching what the backend prepared (`target`). Throws when it cannot
    /// make a consistent image.
    func contribute(to plan: BuildPlan, target: BuildTarget, context: BuildContext) throws -> AcceleratorContribution
}

extension Accelerator {
    public func validate(_ plan: BuildPlan) throws {}
}
