/// What an accelerator adds to a build: a part every backend takes, and a part each for Linux and
/// Nanos images. A backend refuses a part it cannot honour rather than drop it.
public struct AcceleratorContribution: Sendable {
    /// Entries to add to the root tree (libraries, firmware, device-node placeholders).
    public var files: [FileEntry]
    /// Environment added to the run spec.
    public var env: [RunSpec.EnvVar]
    /// What the run needs from the host, e.g. ["gpus": "1"].
    public var resources: [String: String]
    public var linux: Linux
    public var nanos: Nanos

    public struct Linux: Sendable, Equatable {
        /// Kernel modules the guest must load, in order. A module not among `files` comes from the
        /// kernel's own modules tree, with what it depends on.
        public var kernelModules: [String]
        /// Words added to the kernel command line, e.g. `iommu=pt`.
        public var kernelCommandLine: [String]

        public init(kernelModules: [String] = [], kernelCommandLine: [String] = []) {
            self.kernelModules = kernelModules
            self.kernelCommandLine = kernelCommandLine
        }

        public var isEmpty: Bool { kernelModules.isEmpty && kernelCommandLine.isEmpty }
    }

    public struct Nanos: Sendable, Equatable {
        /// Klibs to put in the boot file system.
        public var klibs: [String]
        /// Host files for some of `klibs` (by name), instead of the release's klib directory.
        public var klibFiles: [String: String]

        public init(klibs: [String] = [], klibFiles: [String: String] = [:]) {
            self.klibs = klibs
            self.klibFiles = klibFiles
        }

        public var isEmpty: Bool { klibs.isEmpty && klibFiles.isEmpty }
    }

    public init(
        files: [FileEntry] = [], env: [RunSpec.EnvVar] = [], resources: [String: String] = [:], linux: Linux = Linux(),
        nanos: Nanos = Nanos()
    ) {
        self.files = files
        self.env = env
        self.resources = resources
        self.linux = linux
        self.nanos = nanos
    }
}

/// One accelerator's contribution, named, in the order the pipeline hands them to the backend
/// (sorted by name, so that the image does not depend on the order of `--accel` flags).
public struct NamedContribution: Sendable {
    public var accelerator: String
    public var contribution: AcceleratorContribution

    public init(accelerator: String, contribution: AcceleratorContribution) {
        self.accelerator = accelerator
        self.contribution = contribution
    }
}
