import ArgumentParser
import Core
import Foundation

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a bootable VM image with the chosen backend.",
        discussion: """
            Data flows one way: the source becomes a root tree and a run spec, accelerators add to it, \
            and the backend writes the image. Backends and accelerators are chosen by name from the \
            registry (`gvlt backends`).

            Without --backend, the backend follows from the input when that is unambiguous: an ELF \
            program means nanos (as `ops build PROGRAM` does), --container, --containerfile or \
            --rootfs-dir means linuxvm. The choice is printed once, and the --json report names it.

            A build config file (--config, YAML or JSON) may set any of: backend, container, \
            containerfile, context, build-arg, rootfs-dir, platform, storage-driver, output, accel, \
            force, json, program, options. Its keys mirror the flags, flags win, and its relative \
            paths are relative to the file.

            Examples:
              gvlt build ./prover -c manifest.json
              gvlt build ./prover -c manifest.json --nanos-dir ./nanos-0.1.51
              gvlt build --container oci:./image:latest -o prover.img
              gvlt build --rootfs-dir ./rootfs --kernel debian:6.1.0-56 -o prover.img
              gvlt build --container docker-archive:img.tar --kernel-file ./bzImage \\
                --kernel-modules ./lib/modules/6.1.0 --kernel-config ./config
              gvlt build --config build.yaml --force
            """)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Backend to build with (see `gvlt backends`); default: nanos for an ELF program, linuxvm for a container, Containerfile or root directory.",
            valueName: "name"))
    var backend: String?

    @Argument(help: ArgumentHelp("The program, for backends that package a single ELF (nanos).", valueName: "program"))
    var program: String?

    @OptionGroup var source: SourceOptions
    @OptionGroup var global: GlobalOptions

    @OptionGroup var shortFlags: ShortFlags

    @Option(name: .shortAndLong, help: ArgumentHelp("The image file to write.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: ArgumentHelp("Accelerator to add (repeatable), e.g. nvidia.", valueName: "name"))
    var accel: [String] = []

    @Flag(name: .customLong("nvidia-drivers"), help: "Same as --accel nvidia (gvltctl's name).")
    var nvidiaDrivers = false

    @Option(name: .long, help: ArgumentHelp("Build config file, YAML or JSON.", valueName: "file"))
    var config: String?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "An option for a plugin backend or accelerator (repeatable), as the build config file's `options` (see `gvlt plugins describe NAME`).",
            valueName: "key=value"))
    var option: [String] = []

    @OptionGroup(title: "linuxvm backend")
    var linuxvm: LinuxVMFlags

    @OptionGroup(title: "nanos backend")
    var nanos: NanosFlags

    @OptionGroup(title: "nvidia accelerator (--accel nvidia)")
    var nvidia: NvidiaFlags

    @Flag(help: "Print a JSON report (path, sha256, size, step timings) on stdout.")
    var json = false

    @Flag(
        help:
            "Neither read nor write the build caches (whole roots, compressed blocks) for this build: an honest cold build. Kernels, drivers and downloads stay cached."
    )
    var noCache = false

    func run() throws {
        let file = try config.map(BuildConfigFile.init(path:)) ?? BuildConfigFile()
        let logger = global.makeLogger()
        let json = self.json || (file.json ?? false)
        var source = self.source, linuxvm = self.linuxvm, nanos = self.nanos
        source.merge(file)
        var inferred: BackendInference.Choice?
        if backend == nil && file.backend == nil {
            inferred = try BackendInference.infer(sourceFlags: source.givenFlags, program: program ?? file.program)
        }
        let backendName = backend ?? file.backend ?? inferred!.backend
        if let inferred, !global.quiet {
            FileHandle.standardError.write(Data("backend: \(inferred.backend) (from \(inferred.reason))\n".utf8))
        }
        let registry = try loadRegistry()
        let backend = try registry.backend(named: backendName)
        try shortFlags.apply(
            takesProgram: !backend.capabilities.takesRootTree, source: &source, linuxvm: &linuxvm, nanos: &nanos)
        // Later wins: the config file's options, then --option, then the flags.
        var options = file.options
        for item in option {
            let (key, value) = try keyValue(item, flag: "--option", hint: "e.g. --option hugepages=512")
            options.set(key, .string(value), origin: "--option \(key)")
        }
        linuxvm.collect(into: &options)
        nanos.collect(into: &options)
        nvidia.collect(into: &options)
        var accelerators = accel.isEmpty ? (file.accel ?? []) : accel
        if nvidiaDrivers && !accelerators.contains("nvidia") { accelerators.append("nvidia") }
        let jobs = global.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        guard jobs >= 1 else { throw InputError("--jobs must be at least 1") }
        var request = BuildRequest(
            backend: backend.name,
            source: backend.capabilities.takesRootTree || !source.isEmpty ? try source.makeSource(global: global) : nil,
            program: program ?? file.program, accelerators: accelerators, options: options,
            output: output ?? file.output,
            force: force || (file.force ?? false), previews: nanos.previews, jobs: jobs,
            platform: try Platform(parsing: source.platform), maximumExpandedSize: try source.maximumExpandedSize())
        request.backendInferredFrom = inferred?.reason
        request.runOverrides = try source.runOverrides()
        request.buildCache = !noCache
        let pipeline = BuildPipeline(
            registry: registry, progress: .automatic(quiet: global.quiet), logger: logger,
            cache: CacheDirectory.resolve(override: global.cacheDir))
        switch try pipeline.run(request, backend: backend) {
        case .previewed(let texts):
            for text in texts { print(text, terminator: "") }
        case .built(let report) where json:
            try printJSON(report)
        case .built(let report) where !global.quiet:
            print("Bootable image file:\(report.output)")
            if let cache = report.cache { print("Build cache: \(cache.summary)") }
            for (accelerator, needs) in (report.resources ?? [:]).sorted(by: { $0.key < $1.key }) {
                print(
                    "Run resources (\(accelerator)): "
                        + needs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
        case .built:
            break
        }
    }
}
