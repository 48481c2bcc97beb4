/// What an accelerator's `contribute` works from: the backend's name (for messages), the build's
/// input and what the backend prepared.
public struct ContributionRequest {
    public var backend: String
    public var input: BuildInput
    public var target: BuildTarget

    public init(backend: String, input: BuildInput, target: BuildTarget) {
        self.backend = backend
        self.input = input
        self.target = target
    }
}

/// Hardware support added to an image by `--accel NAME`.
public protocol Accelerator: AnyObject {
    associatedtype Settings

    var name: String { get }
    /// One line for `gvlt backends`.
    var description: String { get }
    /// Backend names this accelerator can contribute to.
    var supportedBackends: [String] { get }
    /// The option keys it reads; nil takes any key no other party claims.
    var optionKeys: [String]? { get }

    func settings(from options: BuildOptions) throws -> Settings
    /// Checks the settings against the kind of target the backend will prepare, before any work is
    /// done (no download, no build).
    func validate(_ settings: Settings, for target: TargetKind) throws
    /// What it adds, matching what the backend prepared. Throws when it cannot make a consistent image.
    func contribute(_ settings: Settings, to request: ContributionRequest, context: BuildContext) throws
        -> AcceleratorContribution
}

extension Accelerator {
    public func validate(_ settings: Settings, for target: TargetKind) throws {}
}

extension Accelerator where Settings: BuildSettings {
    public var optionKeys: [String]? { Settings.optionKeys }
    public func settings(from options: BuildOptions) throws -> Settings { try Settings.decode(options) }
}
