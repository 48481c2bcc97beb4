import Logging

/// What a backend can take and produce, for `gvlt backends` and for choosing options.
public struct BackendCapabilities: Codable, Equatable, Sendable {
    /// Input forms: "rootfs-tree" (any image source) or "elf-program" (a single program).
    public var inputs: [String]
    /// What it writes, e.g. "raw-disk".
    public var outputs: [String]
    /// Accelerators it can combine with, by name.
    public var accelerators: [String]
    /// Whether the same inputs give the same image bytes.
    public var reproducible: Bool
    /// Whether `gvlt build` with this backend can write images in this version.
    public var buildsImages: Bool

    public init(inputs: [String], outputs: [String], accelerators: [String], reproducible: Bool, buildsImages: Bool) {
        self.inputs = inputs
        self.outputs = outputs
        self.accelerators = accelerators
        self.reproducible = reproducible
        self.buildsImages = buildsImages
    }
}

/// What a build has to work with besides the plan: where progress goes, where to cache and scratch.
public struct BuildContext {
    public var progress: ProgressReporter
    public var logger: Logger
    public var cache: CacheDirectory
    public var scratch: ScratchDirectory

    public init(progress: ProgressReporter, logger: Logger, cache: CacheDirectory, scratch: ScratchDirectory) {
        self.progress = progress
        self.logger = logger
        self.cache = cache
        self.scratch = scratch
    }
}

/// The result of a build, printed as-is by `--json`.
public struct BuildReport: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public var name: String
        public var seconds: Double
        public init(name: String, seconds: Double) {
            self.name = name
            self.seconds = seconds
        }
    }

    public var backend: String
    public var output: String
    public var sha256: String
    public var bytes: Int64
    public var steps: [Step]
    /// What the accelerators said the run needs from the host (e.g. `gpus`), by accelerator.
    public var resources: [String: [String: String]]?

    public init(backend: String, output: String, sha256: String, bytes: Int64, steps: [Step]) {
        self.backend = backend
        self.output = output
        self.sha256 = sha256
        self.bytes = bytes
        self.steps = steps
    }
}

/// A way of turning a build plan into a bootable image.
public protocol ImageBackend: AnyObject {
    var name: String { get }
    /// One line for `gvlt backends`.
    var description: String { get }
    var capabilities: BackendCapabilities { get }
    /// Checks the plan before any work is done; throws a `UserFacingError` naming what is wrong.
    func validate(_ plan: BuildPlan) throws
    /// Settles what accelerators must match (the kernel, say) before they run. `plan.target` is set
    /// to the result before `build`.
    func prepare(_ plan: BuildPlan, context: BuildContext) throws -> BuildTarget
    /// Writes the image at `plan.output`, atomically.
    func build(_ plan: BuildPlan, context: BuildContext) throws -> BuildReport
    /// The image path when `-o` is not given; nil means the CLI's default.
    func defaultOutput(for plan: BuildPlan) throws -> String?
}

extension ImageBackend {
    public func defaultOutput(for plan: BuildPlan) throws -> String? { nil }
    public func prepare(_ plan: BuildPlan, context: BuildContext) throws -> BuildTarget { BuildTarget() }
}

/// What a backend can show without writing an image (`--print-deps`, `--print-manifest`).
public enum PreviewKind: String, Sendable {
    case dependencies, manifest
}

public protocol ImagePreviewing {
    func preview(_ plan: BuildPlan, kind: PreviewKind, scratch: ScratchDirectory) throws -> String
}
