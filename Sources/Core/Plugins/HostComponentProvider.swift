/// Parts of a VM image the host builds for a plugin backend that asks for them in `describe`
/// (`components`), so that a third-party VM backend need not reimplement them: the kernel with its
/// modules, a ready initramfs, the guest init, and the root completed as a Firestarter root. The
/// linuxvm backend module provides them; Core only knows this shape.
public protocol HostComponentProvider: AnyObject {
    /// The component names it provides, e.g. `kernel`.
    var components: [String] { get }
    /// One line per component for `gvlt plugins describe` and the docs.
    var componentDescriptions: [String: String] { get }
    /// The build options that choose the components (`kernel`, `init-binary`, …); a plugin backend
    /// that asks for components takes them as well as its own.
    var optionKeys: [String] { get }
    /// Decodes those options once, for one build.
    func session(options: BuildOptions) throws -> HostComponentSession
}

/// The components of one build, with the provider's settings decoded and what it resolved kept.
public protocol HostComponentSession: AnyObject {
    /// Settles what accelerators must match (the kernel), as a backend's prepare does.
    func prepare(context: BuildContext) throws -> BuildTarget
    /// Builds the `wanted` components once the contributions are in. The `guest-root` component
    /// completes the input's root tree in place. The answer maps each component to a JSON object
    /// whose file values are host paths.
    func resolve(_ wanted: [String], input: BuildInput, contributions: [NamedContribution], context: BuildContext)
        throws
        -> [String: [String: Any]]
}
