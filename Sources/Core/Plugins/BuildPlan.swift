/// Everything a backend needs, assembled by the CLI in the order data flows:
/// source → (tree + run spec) → accelerator contributions → backend.
public struct BuildPlan {
    public var backend: String
    /// The image root and run spec from `--container`, `--containerfile` or `--rootfs-dir`.
    public var image: LoadedImage?
    /// A single program for backends that take one (Nanos).
    public var program: String?
    public var accelerators: [String]
    public var contributions: [String: AcceleratorContribution]
    /// What the backend prepared (`ImageBackend.prepare`), set before accelerators run.
    public var target: BuildTarget?
    public var output: String
    public var force: Bool
    /// Backend-specific settings from flags or the build config file.
    public var options: [String: String]

    public init(backend: String, image: LoadedImage? = nil, program: String? = nil, accelerators: [String] = [],
                contributions: [String: AcceleratorContribution] = [:], output: String, force: Bool = false,
                options: [String: String] = [:]) {
        self.backend = backend
        self.image = image
        self.program = program
        self.accelerators = accelerators
        self.contributions = contributions
        self.output = output
        self.force = force
        self.options = options
    }
}
