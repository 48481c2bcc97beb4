import Core
import Foundation

/// `--container docker://REF` or `--container REF`: an image pulled from a registry over the OCI
/// distribution API, with no engine, into the blob cache, then read like any layout.
public struct RegistrySource: ImageSource {
    public var reference: ImageReference
    public var access: RegistryAccess

    public init(reference: ImageReference, access: RegistryAccess) {
        self.reference = reference
        self.access = access
    }

    public var description: String { "docker://\(reference)" }

    public func load(_ context: SourceContext) throws -> LoadedImage {
        var access = self.access
        access.jobs = max(access.jobs, 1)
        let puller = RegistryPuller(access: access, progress: context.progress, logger: context.logger)
        let image = try puller.pull(reference, platform: context.platform)
        let tree = try context.flattener().flatten(image.layers)
        let via = image.pulledFrom.registry == reference.registry ? "" : ", from \(image.pulledFrom.registry)"
        return LoadedImage(
            tree: tree, runSpec: image.config.runSpec,
            origin: "\(description) (\(image.layers.count) layers, \(image.manifest.digest.prefix(19))\(via))")
    }
}
