import ArgumentParser
import Core
import CoreNetwork
import Foundation
import LinuxVM
import Logging
import Nanos
import NvidiaGPU

/// How much gvlt prints, and how hard it works.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print nothing but errors (and the --json report).")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Print debug messages.")
    var verbose = false

    @Option(
        name: .long,
        help: "Layers read in parallel (default: the number of CPUs), and blobs downloaded in parallel (default: 4).")
    var jobs: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Cache directory (default: $GVLT_CACHE_DIR, $XDG_CACHE_HOME/gvlt or ~/.cache/gvlt).", valueName: "dir"))
    var cacheDir: String?

    func makeLogger() -> Logger {
        StderrLogHandler.bootstrap(level: verbose ? .debug : (quiet ? .error : .warning))
        return Logger(label: "gvlt")
    }
}

/// Where the root tree comes from. Exactly one of --container, --containerfile, --rootfs-dir.
struct SourceOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Container image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], containers-storage:REF, or a registry image as docker://REF or REF (e.g. docker.io/library/alpine:3.20, ghcr.io/o/r@sha256:…).",
            valueName: "transport:ref"))
    var container: String?

    @OptionGroup(title: "registry images") var registry: RegistryFlags

    @Option(
        name: [.customShort("f"), .long],
        help: ArgumentHelp(
            "Build this Containerfile/Dockerfile with podman (or buildah; or Docker with --container-backend docker) and use the result.",
            valueName: "file"))
    var containerfile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "What builds --containerfile: podman (default; buildah when podman is missing) or docker (gvltctl's option).",
            valueName: "engine"))
    var containerBackend: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Build context for --containerfile (default: the Containerfile's directory).",
            valueName: "dir"))
    var context: String?

    @Option(
        name: .customLong("build-arg"),
        help: ArgumentHelp("A --build-arg for --containerfile (repeatable).", valueName: "key=value"))
    var buildArgs: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Use this directory as the image root (symlinks kept, never followed).", valueName: "dir"))
    var rootfsDir: String?

    @Option(
        name: .long, help: ArgumentHelp("Platform to pick from multi-platform images.", valueName: "os/arch[/variant]"))
    var platform: String = "linux/amd64"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The program to run, replacing the image's Entrypoint (and its Cmd, unless --cmd is given): a JSON array or one path.",
            valueName: "command"))
    var entrypoint: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The arguments after the entrypoint, replacing the image's Cmd: a JSON array or one word.",
            valueName: "args"))
    var cmd: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Set an environment variable in the image's run config (repeatable).", valueName: "key=value"))
    var env: [String] = []

    @Option(name: .long, help: ArgumentHelp("The program's working directory.", valueName: "dir"))
    var workdir: String?

    @Option(name: .long, help: ArgumentHelp("The user the program runs as (name, uid or uid:gid).", valueName: "user"))
    var user: String?

    /// The run-config flags as overrides of the source's own.
    func runOverrides() throws -> RunOverrides {
        RunOverrides(
            entrypoint: try entrypoint.map { try RunOverrides.words($0, flag: "--entrypoint") },
            cmd: try cmd.map { try RunOverrides.words($0, flag: "--cmd") },
            env: try env.map {
                let (key, value) = try keyValue($0, flag: "--env", hint: "e.g. --env RUST_LOG=info")
                return RunSpec.EnvVar(key: key, value: value)
            }, workingDir: workdir, user: user)
    }

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Most an image's layers may expand to (default: 4× their stored size plus 1 GiB, and no layer past 100×).",
            valueName: "size"))
    var maxExpandedSize: String?

    /// `--max-expanded-size` in bytes, nil when not given.
    func maximumExpandedSize() throws -> Int64? {
        guard let text = maxExpandedSize else { return nil }
        guard let bytes = ByteSize.parse(text, ByteSize.disk).flatMap({ Int64(exactly: $0) }) else {
            throw InputError("--max-expanded-size `\(text)` is not a size", hint: "write e.g. 64g or 200000m")
        }
        return bytes
    }

    @Option(
        name: .long,
        help: ArgumentHelp(
            "containers/storage driver for podman/skopeo (e.g. vfs); default: the host's configuration.",
            valueName: "driver"))
    var storageDriver: String?

    var isEmpty: Bool { container == nil && containerfile == nil && rootfsDir == nil }

    /// The source flags given, for backend inference.
    var givenFlags: [String] {
        [
            container.map { _ in "--container" }, containerfile.map { _ in "--containerfile" },
            rootfsDir.map { _ in "--rootfs-dir" }
        ].compactMap { $0 }
    }

    /// Fills unset options from a build config file; flags win.
    mutating func merge(_ config: BuildConfigFile) {
        container = container ?? config.container
        containerfile = containerfile ?? config.containerfile
        context = context ?? config.context
        rootfsDir = rootfsDir ?? config.rootfsDir
        storageDriver = storageDriver ?? config.storageDriver
        if let configured = config.platform, platform == "linux/amd64" { platform = configured }
        if buildArgs.isEmpty { buildArgs = config.buildArgs ?? [] }
    }

    func makeSource(global: GlobalOptions) throws -> ImageSource {
        let given = [
            container.map { _ in "--container" }, containerfile.map { _ in "--containerfile" },
            rootfsDir.map { _ in "--rootfs-dir" }
        ].compactMap { $0 }
        guard given.count == 1 else {
            throw InputError(
                given.isEmpty ? "no source given" : "choose one source, not \(given.joined(separator: " and "))",
                hint: "pass exactly one of --container TRANSPORT:REF, --containerfile FILE, --rootfs-dir DIR")
        }
        if context != nil && containerfile == nil {
            throw InputError("--context only applies to --containerfile")
        }
        if let container {
            let source = try ContainerReference.parse(container) {
                RegistrySource(reference: $0, access: try registry.access(global: global))
            }
            if var storage = source as? ContainersStorageSource {
                storage.storageDriver = storageDriver
                return storage
            }
            return source
        }
        if let containerfile {
            let engine =
                try containerBackend.map { name in
                    guard let engine = ContainerfileSource.Engine(rawValue: name) else {
                        throw InputError("--container-backend `\(name)` is not podman or docker")
                    }
                    return engine
                } ?? .podman
            return ContainerfileSource(
                containerfile: containerfile, contextDirectory: context, storageDriver: storageDriver,
                buildArgs: buildArgs, engine: engine)
        }
        if containerBackend != nil {
            throw InputError(
                "--container-backend chooses what builds --containerfile",
                hint: "drop it, or build from a Containerfile")
        }
        return RootfsDirectorySource(directory: rootfsDir!)
    }

    func makeContext(global: GlobalOptions, progress: ProgressReporter, logger: Logger) throws -> SourceContext {
        let jobs = global.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        guard jobs >= 1 else { throw InputError("--jobs must be at least 1") }
        return SourceContext(
            scratch: try ScratchDirectory(), progress: progress, logger: logger, jobs: jobs,
            platform: try Platform(parsing: platform), maximumExpandedSize: try maximumExpandedSize())
    }
}

/// Prints a Codable value as pretty JSON with sorted keys on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value))
    FileHandle.standardOutput.write("\n".data(using: .utf8)!)
}

/// `KEY=VALUE` from a repeatable flag such as --env or --option; the key must not be empty.
func keyValue(_ item: String, flag: String, hint: String? = nil) throws -> (key: String, value: String) {
    guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
        throw InputError("\(flag) `\(item)` is not KEY=VALUE", hint: hint)
    }
    return (String(item[..<eq]), String(item[item.index(after: eq)...]))
}

/// The builtin plugins compiled into this gvlt, plus every plugins.json on the search path.
func loadRegistry() throws -> PluginRegistry {
    let registry = PluginRegistry()
    NanosBackend.register(into: registry)
    LinuxVMBackend.register(into: registry)
    NvidiaAccelerator.register(into: registry)
    try registry.load(files: PluginsFile.searchPath())
    return registry
}
