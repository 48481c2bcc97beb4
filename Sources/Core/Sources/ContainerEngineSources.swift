import Foundation

/// `--container containers-storage:REF`: the image is copied by skopeo into a scratch OCI layout,
/// then read like any layout.
public struct ContainersStorageSource: ImageSource {
    public var reference: String
    /// containers/storage driver (`vfs`, `overlay`); nil uses the host's configuration.
    public var storageDriver: String?

    public init(reference: String, storageDriver: String? = nil) {
        self.reference = reference
        self.storageDriver = storageDriver
    }

    public var description: String { "containers-storage:\(reference)" }

    public func load(_ context: SourceContext) throws -> LoadedImage {
        let skopeo = try HostTool.skopeo.require()
        let layout = context.scratch.path + "/containers-storage"
        // containers/storage reads the driver from STORAGE_DRIVER, keeping the user's own store paths.
        var environment = ProcessInfo.processInfo.environment
        if let storageDriver { environment["STORAGE_DRIVER"] = storageDriver }
        try context.progress.step("copying \(reference) out of containers-storage") {
            try HostCommand.run(
                skopeo, ["copy", "--quiet", "containers-storage:\(reference)", "oci:\(layout):gvlt"],
                environment: environment,
                hint: "check the reference with `podman images`; the image must be in local storage")
        }
        var image = try OCILayoutSource(directory: layout, tag: "gvlt").load(context)
        image.origin = "\(description) (via skopeo)"
        return image
    }
}

/// `--containerfile FILE [--context DIR]`: built with podman (or buildah), then exported as an OCI
/// layout and read like one; or, with `--container-backend docker`, built by Docker and read from
/// `docker save`'s archive. The temporary image tag is removed afterwards.
public struct ContainerfileSource: ImageSource {
    public enum Engine: String, CaseIterable, Sendable {
        /// podman, else buildah.
        case podman
        case docker
    }

    public var containerfile: String
    public var contextDirectory: String?
    public var storageDriver: String?
    public var buildArgs: [String]
    public var engine: Engine

    public init(
        containerfile: String, contextDirectory: String?, storageDriver: String? = nil, buildArgs: [String] = [],
        engine: Engine = .podman
    ) {
        self.containerfile = containerfile
        self.contextDirectory = contextDirectory
        self.storageDriver = storageDriver
        self.buildArgs = buildArgs
        self.engine = engine
    }

    public var description: String { "containerfile:\(containerfile)" }

    /// The default context is the Containerfile's directory, as `podman build -f` users expect.
    public var resolvedContext: String {
        contextDirectory ?? URL(fileURLWithPath: containerfile).deletingLastPathComponent().path
    }

    public func load(_ context: SourceContext) throws -> LoadedImage {
        guard FileManager.default.isReadableFile(atPath: containerfile) else {
            throw InputError(
                "Containerfile \(containerfile) does not exist or is not readable",
                hint: "check the --containerfile path")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolvedContext, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw InputError("build context \(resolvedContext) is not a directory", hint: "pass --context DIR")
        }
        let tag = "localhost/gvlt-build-\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff):latest"
        if engine == .docker { return try loadWithDocker(context, tag: tag) }
        let layout = context.scratch.path + "/containerfile-image"
        // podman and buildah take the same build flags; they differ in the verb and in how to export.
        let engines: [(tool: HostTool, build: String, export: [String])] = [
            (.podman, "build", ["save", "--format", "oci-dir", "-o", layout, tag]),
            (.buildah, "bud", ["push", tag, "oci:\(layout)"])
        ]
        guard
            let (engine, path) = engines.lazy.compactMap({ engine in engine.tool.locate().map { (engine, $0) } }).first
        else {
            throw MissingToolError(tool: "podman", aptPackage: "podman", purpose: "`--containerfile` builds")
        }
        let storage = storageDriver.map { ["--storage-driver", $0] } ?? []
        // Remove the temporary tag afterwards, also when the run fails or is interrupted.
        let removeImage = { _ = try? HostCommand.run(path, storage + ["rmi", "--force", tag], check: false) }
        let cleanup = Cleanup.shared.register(action: removeImage)
        defer {
            Cleanup.shared.unregister(cleanup)
            removeImage()
        }
        try context.progress.step("building \(containerfile) with \(engine.tool.name)") {
            try HostCommand.run(
                path,
                storage + [
                    engine.build, "--isolation", "chroot", "-f", containerfile, "-t", tag,
                    "--platform", context.platform.description
                ]
                    + buildArgs.flatMap { ["--build-arg", $0] } + [resolvedContext],
                echo: context.progress.mode == .lines,
                hint: "fix the Containerfile; the \(engine.tool.name) output above says what failed")
        }
        try HostCommand.run(path, storage + engine.export)
        var image = try OCILayoutSource(directory: layout, tag: nil).load(context)
        image.origin = "\(description) (built in \(resolvedContext))"
        return image
    }

    private func loadWithDocker(_ context: SourceContext, tag: String) throws -> LoadedImage {
        if storageDriver != nil {
            throw InputError(
                "--storage-driver is for podman's containers/storage, not Docker",
                hint: "drop it, or use --container-backend podman")
        }
        let docker = try HostTool.docker.require()
        let removeImage = { _ = try? HostCommand.run(docker, ["rmi", "--force", tag], check: false) }
        let cleanup = Cleanup.shared.register(action: removeImage)
        defer {
            Cleanup.shared.unregister(cleanup)
            removeImage()
        }
        try context.progress.step("building \(containerfile) with docker") {
            try HostCommand.run(
                docker,
                ["build", "-f", containerfile, "-t", tag, "--platform", context.platform.description]
                    + buildArgs.flatMap { ["--build-arg", $0] } + [resolvedContext],
                echo: context.progress.mode == .lines,
                hint: "fix the Containerfile; docker's output above says what failed (is the Docker daemon running?)")
        }
        let archive = context.scratch.path + "/containerfile-image.tar"
        try HostCommand.run(docker, ["save", "-o", archive, tag])
        var image = try ArchiveImageSource(file: archive, reference: nil, transport: "docker-archive").load(context)
        image.origin = "\(description) (built by docker in \(resolvedContext))"
        return image
    }
}
