/// One `gvlt build`, as flags or a build config file describe it, before anything is read.
public struct BuildRequest {
    /// The backend's name, as the registry knows it.
    public var backend: String
    /// Where the root tree comes from (backends that take one).
    public var source: ImageSource?
    /// The program (backends that take one); nil lets the backend find it in its settings.
    public var program: String?
    /// Accelerators by name, in the order given.
    public var accelerators: [String]
    /// Every option for the backend and the accelerators; the pipeline routes each key to the
    /// parties that declare it.
    public var options: BuildOptions
    /// The image file; nil takes the backend's default.
    public var output: String?
    public var force: Bool
    /// Print these views of the image instead of writing it.
    public var previews: [PreviewKind]
    /// Layers read in parallel, and the platform picked from multi-platform images.
    public var jobs: Int
    public var platform: Platform
    /// `--max-expanded-size`: what an image's layers may expand to; nil for the default.
    public var maximumExpandedSize: Int64?
    /// `--entrypoint`, `--cmd`, `--env`, `--workdir`, `--user`: applied to the source's run spec.
    public var runOverrides = RunOverrides()
    /// Set when the backend was inferred rather than named; the report carries it.
    public var backendInferredFrom: String?
    /// `--no-cache`: the build caches are neither read nor written (see `BuildContext.buildCache`).
    public var buildCache = true

    public init(
        backend: String, source: ImageSource? = nil, program: String? = nil, accelerators: [String] = [],
        options: BuildOptions = BuildOptions(), output: String? = nil, force: Bool = false,
        previews: [PreviewKind] = [],
        jobs: Int = 1, platform: Platform = .linuxAMD64, maximumExpandedSize: Int64? = nil
    ) {
        self.maximumExpandedSize = maximumExpandedSize
        self.backend = backend
        self.source = source
        self.program = program
        self.accelerators = accelerators
        self.options = options
        self.output = output
        self.force = force
        self.previews = previews
        self.jobs = jobs
        self.platform = platform
    }
}

/// What a build gives back: the image written, or the previews asked for.
public enum BuildOutcome {
    case built(BuildReport)
    case previewed([String])
}
