import ArgumentParser
import Core
import Foundation

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a bootable VM image with the chosen backend.",
        discussion: """
        Data flows one way: the source becomes a root tree and a run spec, accelerators add to it, and
        the backend writes the image. Backends and accelerators are chosen by name from the registry
        (`gvlt backends`).

        A build config file (--config, YAML or JSON) may set any of: backend, container, containerfile,
        context, build-arg, rootfs-dir, platform, storage-driver, output, accel, force, json, program,
        options. Its keys mirror the flags, flags win, and its relative paths are relative to the file.

        Examples:
          gvlt build --backend linuxvm --container oci:./image:latest -o prover.img
          gvlt build --backend linuxvm --rootfs-dir ./rootfs --kernel debian:6.1.0-56 -o prover.img
          gvlt build --backend linuxvm --container docker-archive:img.tar --kernel-file ./bzImage \
              --kernel-modules ./lib/modules/6.1.0 --kernel-config ./config -o prover.img
          gvlt build --config build.yaml --force
        """)

    @Option(name: .long, help: ArgumentHelp("Backend to build with (see `gvlt backends`).", valueName: "name"))
    var backend: String?

    @Argument(help: ArgumentHelp("The program, for backends that package a single ELF (nanos).", valueName: "program"))
    var program: String?

    @OptionGroup var source: SourceOptions
    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("The image file to write.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: ArgumentHelp("Accelerator to add (repeatable), e.g. nvidia.", valueName: "name"))
    var accel: [String] = []

    @Option(name: .long, help: ArgumentHelp("Build config file, YAML or JSON.", valueName: "file"))
    var config: String?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup(title: "linuxvm backend")
    var linuxvm: LinuxVMOptions

    @Flag(help: "Print a JSON report (path, sha256, size, step timings) on stdout.")
    var json = false

    func run() throws {
        let file = try config.map(BuildConfigFile.init(path:)) ?? BuildConfigFile()
        var source = self.source
        source.merge(file)
        let force = self.force || (file.force ?? false)
        let json = self.json || (file.json ?? false)
        let accelerators = accel.isEmpty ? (file.accel ?? []) : accel
        let program = self.program ?? file.program
        guard let backendName = backend ?? file.backend else {
            throw InputError("no backend chosen", hint: "pass --backend NAME (see `gvlt backends`) or set `backend` in --config")
        }
        let logger = global.makeLogger()
        let progress = ProgressReporter.automatic(quiet: global.quiet || json)
        let registry = try loadRegistry()
        let backend = try registry.backend(named: backendName)
        let accelerators_ = try accelerators.map { name -> Accelerator in
            let accelerator = try registry.accelerator(named: name)
            guard accelerator.supportedBackends.contains(backend.name) else {
                throw InputError("accelerator `\(name)` does not support the \(backend.name) backend",
                                 hint: "it supports: \(accelerator.supportedBackends.joined(separator: ", "))")
            }
            return accelerator
        }
        let defaultOutput = program.map { URL(fileURLWithPath: $0).lastPathComponent + ".img" } ?? "image.img"
        let output = self.output ?? file.output ?? defaultOutput
        try OutputPrecheck.check(output, force: force)

        var options = file.options
        for (key, value) in linuxvm.options { options[key] = value }
        var plan = BuildPlan(backend: backend.name, program: program, accelerators: accelerators, output: output, force: force,
                             options: options)
        let context = try source.makeContext(global: global, progress: progress, logger: logger)
        defer { context.scratch.remove() }
        if backend.capabilities.inputs.contains("rootfs-tree") {
            plan.image = try source.makeSource().load(context)
        } else if !source.isEmpty {
            throw InputError("the \(backend.name) backend takes a program, not --container/--containerfile/--rootfs-dir")
        }
        for accelerator in accelerators_ {
            plan.contributions[accelerator.name] = try accelerator.contribute(to: plan)
        }
        try backend.validate(plan)
        let report = try backend.build(plan, context: BuildContext(progress: progress, logger: logger,
                                                                   cache: CacheDirectory.resolve(override: global.cacheDir),
                                                                   scratch: context.scratch))
        if json {
            try printJSON(report)
        } else if !global.quiet {
            print("Bootable image file:\(report.output)")
        }
    }
}

/// Options of the linuxvm backend; each also has a build-config key of the same name under `options`.
struct LinuxVMOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Kernel provider: debian (default, Debian's linux-image-amd64 via apt), debian:VERSION, file:PATH or source:DIR.", valueName: "provider"))
    var kernel: String?

    @Option(name: .long, help: ArgumentHelp("Same as --kernel file:PATH (gvltctl's name).", valueName: "path"))
    var kernelFile: String?

    @Option(name: .long, help: ArgumentHelp("The modules tree (lib/modules/RELEASE) of a --kernel file: kernel.", valueName: "dir"))
    var kernelModules: String?

    @Option(name: .long, help: ArgumentHelp("The .config of a --kernel file: kernel.", valueName: "file"))
    var kernelConfig: String?

    @Option(name: .long, help: ArgumentHelp("Root file system: squashfs (default) or ext4.", valueName: "type"))
    var rootFs: String?

    @Option(name: .long, help: ArgumentHelp("SquashFS compressor: zstd (default), gzip, xz, lz4 or lzo; the kernel must support it.", valueName: "name"))
    var squashfsCompressor: String?

    @Option(name: .long, help: ArgumentHelp("The guest init binary (default: gvlt-init next to gvlt, or $GVLT_INIT).", valueName: "path"))
    var `init`: String?

    var options: [String: String] {
        var result: [String: String] = [:]
        result["kernel"] = kernel
        result["kernel-file"] = kernelFile
        result["kernel-modules"] = kernelModules
        result["kernel-config"] = kernelConfig
        result["root-fs"] = rootFs
        result["squashfs-compressor"] = squashfsCompressor
        result["init"] = `init`
        return result
    }
}
