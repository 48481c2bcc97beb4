/// Parts of a VM image the host builds for a plugin backend that asks for them in `describe`
/// (`components`), so that a third-party VM backend need not reimplement them: the kernel with its
/// modules, a ready initramfs, the guest init, and the root completed as a Firestarter root. The
/// linuxvm backend module provides them; Core only knows this shape.
public protocol HostComponentProvider: AnyObject {
    /// The component names it provides, e.g. `kernel`.
    var components: [String] { get }
    /// One line per component for `gvlt plugins describe` and the docs.
    var componentDescriptions: [String: String] { get }
    /// Settles what accelerators must match (the kernel), as a backend's prepare does.
    func prepare(_ plan: BuildPlan, context: BuildContext) throws -> BuildTarget
    /// Builds the `wanted` components for `plan` (its contributions are in). `image` is the root
    /// tree the plugin will get; the `guest-root` component completes it in place. The answer maps
    /// each component to a JSON object whose file values are host paths.
    func resolve(_ wanted: [String], plan: BuildPlan, image: LoadedImage?, context: BuildContext) throws -> [String: [String: Any]]
}
