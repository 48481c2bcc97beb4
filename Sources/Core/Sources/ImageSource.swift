import Foundation
import Logging

/// What every source produces: the image's root tree and how to run it.
public struct LoadedImage {
    public var tree: FileTree
    public var runSpec: RunSpec
    /// For reports: "oci:./img:latest (3 layers)".
    public var origin: String

    public init(tree: FileTree, runSpec: RunSpec, origin: String) {
        self.tree = tree
        self.runSpec = runSpec
        self.origin = origin
    }
}

/// Shared state a source may use while loading: scratch space, progress, logging, parallelism.
public struct SourceContext {
    public var scratch: ScratchDirectory
    public var progress: ProgressReporter
    public var logger: Logger
    public var jobs: Int
    public var platform: Platform
    /// `--max-expanded-size`: what an image's layers may expand to; nil for the default.
    public var maximumExpandedSize: Int64?

    public init(
        scratch: ScratchDirectory, progress: ProgressReporter, logger: Logger,
        jobs: Int = ProcessInfo.processInfo.activeProcessorCount, platform: Platform = .linuxAMD64,
        maximumExpandedSize: Int64? = nil
    ) {
        self.maximumExpandedSize = maximumExpandedSize
        self.scratch = scratch
        self.progress = progress
        self.logger = logger
        self.jobs = jobs
        self.platform = platform
    }

    package func flattener() -> ImageFlattener {
        ImageFlattener(
            jobs: jobs, scratchDirectory: scratch.path, logger: logger, progress: progress,
            maximumExpandedSize: maximumExpandedSize)
    }
}

/// Something that yields a root file tree: a directory, an OCI layout, a docker archive, a container
/// engine's storage, a Containerfile.
public protocol ImageSource {
    /// As the user wrote it, for messages.
    var description: String { get }
    func load(_ context: SourceContext) throws -> LoadedImage
}

/// The `--container` transports, parsed from `TRANSPORT:REFERENCE`.
public enum ContainerReference {
    public static let transports = [
        "oci:DIR[:TAG]", "oci-archive:FILE[:TAG]", "docker-archive:FILE[:REF]",
        "containers-storage:REF", "docker://REF", "REF"
    ]
    static let transportNames: Set = ["oci", "oci-archive", "docker-archive", "containers-storage", "docker"]

    /// `registry` makes the source of a registry reference (`docker://REF`, or a plain reference);
    /// it is asked only for those.
    public static func parse(_ text: String, registry: ((ImageReference) throws -> ImageSource)? = nil) throws
        -> ImageSource
    {
        let transport = text.firstIndex(of: ":").map { String(text[..<$0]) }
        if text.hasPrefix("docker://") || !(transport.map(transportNames.contains) ?? false) {
            // Not a known transport: a registry reference (`alpine`, `ghcr.io/o/r:tag`, `host:5000/r`),
            // unless it names a local file, which a pull would send to Docker Hub as a name.
            let looksLocal = [".tar", ".tar.gz", ".tgz", ".tar.zst"].contains { text.hasSuffix($0) }
            if !text.hasPrefix("docker://"), FileManager.default.fileExists(atPath: text) || looksLocal {
                throw InputError(
                    "--container `\(text)` names a file or directory, not an image in a registry",
                    hint:
                        "write its transport: oci:\(text) (an OCI layout), oci-archive:\(text) or docker-archive:\(text)"
                )
            }
            let reference: ImageReference
            do {
                reference = try ImageReference(parsing: text)
            } catch let error as InputError where !text.hasPrefix("docker://") {
                throw InputError(
                    "--container `\(text)` is neither TRANSPORT:REF nor an image reference (\(error.message))",
                    hint:
                        "write one of: \(transports.joined(separator: ", ")); e.g. oci:./image:latest or docker.io/library/alpine:3.20"
                )
            }
            guard let registry else {
                throw UnsupportedError("--container \(text): registry pulls are not available in this command")
            }
            return try registry(reference)
        }
        let colon = text.firstIndex(of: ":")!
        let rest = String(text[text.index(after: colon)...])
        guard !rest.isEmpty else {
            throw InputError("--container `\(text)`: the reference after `\(transport):` is empty")
        }
        switch transport! {
        case "oci":
            let (path, tag) = splitPathAndTag(rest)
            return OCILayoutSource(directory: path, tag: tag)
        case "oci-archive":
            let (path, tag) = splitPathAndTag(rest)
            return ArchiveImageSource(file: path, reference: tag, transport: "oci-archive")
        case "docker-archive":
            let (path, ref) = splitPathAndTag(rest)
            return ArchiveImageSource(file: path, reference: ref, transport: "docker-archive")
        case "containers-storage":
            return ContainersStorageSource(reference: rest)
        case "docker":
            throw InputError(
                "--container `\(text)`: the docker transport is written docker://REF",
                hint: "--container docker://\(rest)")
        default:
            throw InputError(
                "--container `\(text)`: unknown transport `\(transport)`",
                hint: "supported: \(transports.joined(separator: ", "))")
        }
    }

    /// `PATH[:TAG]`: the shortest prefix that exists as a path is the path, so both paths containing
    /// `:` and references containing `:` (`docker-archive:img.tar:name:tag`) work.
    static func splitPathAndTag(_ text: String) -> (String, String?) {
        if FileManager.default.fileExists(atPath: text) { return (text, nil) }
        for colon in text.indices where text[colon] == ":" {
            let path = String(text[..<colon])
            let tag = String(text[text.index(after: colon)...])
            if !tag.isEmpty, FileManager.default.fileExists(atPath: path) { return (path, tag) }
        }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        let tag = String(text[text.index(after: colon)...])
        guard !tag.isEmpty, !tag.contains("/") else { return (text, nil) }
        return (String(text[..<colon]), tag)
    }
}
