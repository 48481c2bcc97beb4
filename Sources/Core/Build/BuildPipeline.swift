import Foundation
import Logging

/// Runs a `BuildRequest` in the one order data flows: source → tree + run spec → backend prepare →
/// accelerators → backend → image. Every check that needs no work runs before any work does, and
/// each step's leftovers (scratch, the loaded tree) go away through one `CleanupStack`, on failure too.
public struct BuildPipeline {
    public var registry: PluginRegistry
    public var progress: ProgressReporter
    public var logger: Logger
    public var cache: CacheDirectory

    public init(registry: PluginRegistry, progress: ProgressReporter, logger: Logger, cache: CacheDirectory) {
        self.registry = registry
        self.progress = progress
        self.logger = logger
        self.cache = cache
    }

    public func run(_ request: BuildRequest) throws -> BuildOutcome {
        try run(request, backend: try registry.backend(named: request.backend))
    }

    /// With the backend already chosen (the CLI looks it up to read `-c`/`-i` as its tool does).
    public func run(_ request: BuildRequest, backend: any ImageBackend) throws -> BuildOutcome {
        let cleanups = CleanupStack()
        defer { cleanups.unwind() }
        return try run(request, backend: backend, cleanups: cleanups)
    }

    func run<Backend: ImageBackend>(_ request: BuildRequest, backend: Backend, cleanups: CleanupStack) throws
        -> BuildOutcome
    {
        let accelerators = try request.accelerators.map { name -> any Accelerator in
            let accelerator = try registry.accelerator(named: name)
            guard accelerator.supportedBackends.contains(backend.name) else {
                throw InputError(
                    "accelerator `\(name)` does not support the \(backend.name) backend",
                    hint: "it supports: \(accelerator.supportedBackends.joined(separator: ", "))")
            }
            return accelerator
        }
        try checkInput(request, backend: backend)
        // Settings, decoded once, before anything is read or written.
        let parties =
            [OptionRouting.Party(title: "the \(backend.name) backend", keys: backend.optionKeys)]
            + accelerators.map { OptionRouting.Party(title: "the \($0.name) accelerator", keys: $0.optionKeys) }
        let routed = try OptionRouting(elsewhere: registry.optionOwners(except: [backend.name] + request.accelerators))
            .route(request.options, to: parties)
        let settings = try backend.settings(from: routed[0])
        for note in backend.notes(settings) { logger.warning("\(note)") }
        var jobs: [AcceleratorJob] = []
        for (index, accelerator) in accelerators.enumerated() {
            jobs.append(try AcceleratorJob.make(accelerator, options: routed[index + 1], target: backend.targetKind))
        }
        let plannedInput = BuildInput.program(request.program)

        if !request.previews.isEmpty {
            let scratch = try ScratchDirectory(label: "gvlt-preview")
            cleanups.push("preview scratch") { scratch.remove() }
            return .previewed(
                try request.previews.map { kind in
                    guard let text = try backend.preview(settings, input: plannedInput, kind: kind, scratch: scratch)
                    else {
                        throw InputError(
                            "the \(backend.name) backend has no --print-deps or --print-manifest",
                            hint: "drop them; they are for the nanos backend")
                    }
                    return text
                })
        }

        let output =
            try request.output ?? backend.defaultOutput(settings, input: plannedInput)
            ?? request.program.map { URL(fileURLWithPath: $0).lastPathComponent + ".img" } ?? "image.img"
        try OutputPrecheck.check(output, force: request.force)

        let scratch = try ScratchDirectory()
        cleanups.push("build scratch") { scratch.remove() }
        let input: BuildInput
        if let source = request.source {
            let context = SourceContext(
                scratch: scratch, progress: progress, logger: logger, jobs: request.jobs, platform: request.platform,
                maximumExpandedSize: request.maximumExpandedSize)
            var image = try source.load(context)
            image.runSpec = request.runOverrides.apply(to: image.runSpec)
            if image.runSpec.command == nil {
                logger.warning(
                    "\(image.origin) names no command to run, and none is given: the image will not boot a program (the worker's config must give one); pass --entrypoint (and --cmd) to bake one in"
                )
            }
            input = .rootTree(image)
            TestTrap.reach("source")
        } else {
            input = plannedInput
        }
        try backend.validate(settings, input: input)

        var context = BuildContext(progress: progress, logger: logger, cache: cache, scratch: scratch)
        context.buildCache = request.buildCache
        let preparation = try backend.prepare(settings, input: input, context: context)
        TestTrap.reach("prepare")
        let contributionRequest = ContributionRequest(backend: backend.name, input: input, target: preparation.target)
        let contributions = try jobs.map { job in
            NamedContribution(accelerator: job.name, contribution: try job.contribute(contributionRequest, context))
        }.sorted { $0.accelerator < $1.accelerator }
        TestTrap.reach("build")
        var report = try backend.build(
            BackendJob(
                settings: settings, input: input, prepared: preparation.state, target: preparation.target,
                contributions: contributions, output: output, force: request.force),
            context: context)
        var resources: [String: [String: String]] = [:]
        for item in contributions where !item.contribution.resources.isEmpty {
            resources[item.accelerator] = item.contribution.resources
        }
        if !resources.isEmpty { report.resources = resources }
        report.backendInferredFrom = request.backendInferredFrom
        return .built(report)
    }

    /// A backend gets the kind of input it takes, and only that.
    func checkInput<Backend: ImageBackend>(_ request: BuildRequest, backend: Backend) throws {
        if backend.capabilities.takesRootTree {
            guard request.source != nil else {
                throw InputError(
                    "no source given",
                    hint: "pass exactly one of --container TRANSPORT:REF, --containerfile FILE, --rootfs-dir DIR")
            }
        } else if request.source != nil {
            throw InputError(
                "the \(backend.name) backend takes a program, not --container/--containerfile/--rootfs-dir",
                hint: "gvlt build --backend \(backend.name) PROGRAM -c manifest.json")
        } else if !request.runOverrides.isEmpty {
            throw InputError(
                "--entrypoint, --cmd, --env, --workdir and --user set a container's run config; the \(backend.name) backend builds from a program",
                hint: backend.name == "nanos" ? "use the manifest's Args and Env (or -a) instead" : nil)
        }
    }
}

/// An accelerator with its settings decoded: the typed settings stay inside the closure.
struct AcceleratorJob {
    var name: String
    var contribute: (ContributionRequest, BuildContext) throws -> AcceleratorContribution

    static func make<A: Accelerator>(_ accelerator: A, options: BuildOptions, target: TargetKind) throws
        -> AcceleratorJob
    {
        let settings = try accelerator.settings(from: options)
        try accelerator.validate(settings, for: target)
        return AcceleratorJob(
            name: accelerator.name, contribute: { try accelerator.contribute(settings, to: $0, context: $1) })
    }
}
