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

    /// Whether the backend takes a root tree (an image source) rather than a program.
    public var takesRootTree: Bool { inputs.contains("rootfs-tree") }
}

/// What a build has to work with besides its settings: where progress goes, where to cache and scratch.
public struct BuildContext {
    public var progress: ProgressReporter
    public var logger: Logger
    public var cache: CacheDirectory
    public var scratch: ScratchDirectory
    /// False with `--no-cache`: the build caches (whole roots, compressed blocks) are neither read nor
    /// written. Kernels, drivers and downloads are cached all the same.
    public var buildCache = true

    public init(progress: ProgressReporter, logger: Logger, cache: CacheDirectory, scratch: ScratchDirectory) {
        self.progress = progress
        self.logger = logger
        self.cache = cache
        self.scratch = scratch
    }

    /// The step timings so far, as a report lists them.
    public var steps: [BuildReport.Step] {
        progress.timings.map { BuildReport.Step(name: $0.step, seconds: $0.seconds) }
    }
}

/// What `prepare` settled: the target accelerators see, and the backend's own state for `build`.
public struct Preparation<State> {
    public var target: BuildTarget
    public var state: State

    public init(target: BuildTarget, state: State) {
        self.target = target
        self.state = state
    }
}

/// Everything `build` gets, typed by the backend's own settings and prepared state.
public struct BackendJob<Settings, Prepared> {
    public var settings: Settings
    public var input: BuildInput
    public var prepared: Prepared
    public var target: BuildTarget
    /// The accelerators' contributions, sorted by accelerator name.
    public var contributions: [NamedContribution]
    public var output: String
    public var force: Bool

    public init(
        settings: Settings, input: BuildInput, prepared: Prepared, target: BuildTarget,
        contributions: [NamedContribution],
        output: String, force: Bool
    ) {
        self.settings = settings
        self.input = input
        self.prepared = prepared
        self.target = target
        self.contributions = contributions
        self.output = output
        self.force = force
    }
}

/// What a backend can show without writing an image (`--print-deps`, `--print-manifest`).
public enum PreviewKind: String, Sendable, CaseIterable {
    case dependencies, manifest
}

/// A way of turning a root tree or a program into a bootable image. `BuildPipeline` drives it:
/// settings (decoded once) → validate → prepare → (accelerators) → build.
public protocol ImageBackend: AnyObject {
    /// The backend's settings, decoded from the build's options by `settings(from:)`.
    associatedtype Settings
    /// What `prepare` hands on to `build` (the resolved kernel, the located release).
    associatedtype Prepared = Void

    var name: String { get }
    /// One line for `gvlt backends`.
    var description: String { get }
    var capabilities: BackendCapabilities { get }
    /// What `prepare` settles, so that accelerators can check their settings first.
    var targetKind: TargetKind { get }
    /// The option keys it reads; nil takes any key no other party claims (a plugin that declares none).
    var optionKeys: [String]? { get }

    func settings(from options: BuildOptions) throws -> Settings
    /// Warnings about the settings themselves (a config file that another tool would read the same way,
    /// but silently), shown once before any work.
    func notes(_ settings: Settings) -> [String]
    /// Checks the input against the settings before any work is done; throws a `UserFacingError`.
    func validate(_ settings: Settings, input: BuildInput) throws
    /// The image path when `-o` is not given; nil means `PROGRAM.img` or `image.img`.
    func defaultOutput(_ settings: Settings, input: BuildInput) throws -> String?
    /// Settles what accelerators must match (the kernel, say) before they run.
    func prepare(_ settings: Settings, input: BuildInput, context: BuildContext) throws -> Preparation<Prepared>
    /// Writes the image at `job.output`, atomically.
    func build(_ job: BackendJob<Settings, Prepared>, context: BuildContext) throws -> BuildReport
    /// What `--print-deps`/`--print-manifest` print; nil when the backend has no such view.
    func preview(_ settings: Settings, input: BuildInput, kind: PreviewKind, scratch: ScratchDirectory) throws
        -> String?
}

extension ImageBackend {
    public func notes(_ settings: Settings) -> [String] { [] }
    public func validate(_ settings: Settings, input: BuildInput) throws {}
    public func defaultOutput(_ settings: Settings, input: BuildInput) throws -> String? { nil }
    public func preview(_ settings: Settings, input: BuildInput, kind: PreviewKind, scratch: ScratchDirectory) throws
        -> String?
    { nil }
    public var targetKind: TargetKind { .generic }
}

extension ImageBackend where Prepared == Void {
    public func prepare(_ settings: Settings, input: BuildInput, context: BuildContext) throws -> Preparation<Void> {
        Preparation(target: .generic, state: ())
    }
}

extension ImageBackend where Settings: BuildSettings {
    public var optionKeys: [String]? { Settings.optionKeys }
    public func settings(from options: BuildOptions) throws -> Settings { try Settings.decode(options) }
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
    /// Why this backend, when `--backend` was not given ("an ELF program", "--container").
    public var backendInferredFrom: String?
    /// What the build caches did, for backends that have them.
    public var cache: BuildCacheReport?

    public init(backend: String, output: String, sha256: String, bytes: Int64, steps: [Step]) {
        self.backend = backend
        self.output = output
        self.sha256 = sha256
        self.bytes = bytes
        self.steps = steps
    }
}

/// What the build caches did for one build: whether the image's root came whole from the cache,
/// and else how many of its compressed blocks did.
public struct BuildCacheReport: Codable, Equatable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        case hit, miss
    }

    /// False with `--no-cache`.
    public var enabled: Bool
    /// The digest of every input of the cached part.
    public var key: String?
    public var root: Outcome?
    /// Whether the boot partition came from the cache.
    public var bootPartition: Outcome?
    public var blocksReused: UInt64?
    public var blocksCompressed: UInt64?
    /// Cache entries found damaged (and rebuilt instead of used).
    public var damagedEntries: Int?

    public init(enabled: Bool, key: String? = nil) {
        self.enabled = enabled
        self.key = key
    }

    /// One line for the build's output.
    public var summary: String {
        guard enabled else { return "not used (--no-cache)" }
        var text: String
        switch root {
        case .hit?: text = "hit: the root file system was reused whole"
        case .miss?:
            let reused = blocksReused ?? 0, total = reused + (blocksCompressed ?? 0)
            text = "miss: \(reused) of \(total) compressed blocks reused"
        case nil: text = "not used"
        }
        if let damaged = damagedEntries, damaged > 0 { text += " (\(damaged) damaged entries rebuilt)" }
        return text
    }
}
