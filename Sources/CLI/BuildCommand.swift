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

    @Flag(name: .customLong("nvidia-drivers"), help: "Same as --accel nvidia (gvltctl's name).")
    var nvidiaDrivers = false

    @Option(name: .long, help: ArgumentHelp("Build config file, YAML or JSON.", valueName: "file"))
    var config: String?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @Option(name: .long, help: ArgumentHelp("An option for a plugin backend or accelerator (repeatable), as the build config file's `options` (see `gvlt plugins describe NAME`).", valueName: "key=value"))
    var option: [String] = []

    @OptionGroup(title: "linuxvm backend")
    var linuxvm: LinuxVMOptions

    @OptionGroup(title: "nanos backend")
    var nanos: NanosOptions

    @OptionGroup(title: "nvidia accelerator (--accel nvidia)")
    var nvidia: NvidiaBuildOptions

    @Flag(help: "Print a JSON report (path, sha256, size, step timings) on stdout.")
    var json = false

    func run() throws {
        let file = try config.map(BuildConfigFile.init(path:)) ?? BuildConfigFile()
        var source = self.source
        source.merge(file)
        let force = self.force || (file.force ?? false)
        let json = self.json || (file.json ?? false)
        var accelerators = accel.isEmpty ? (file.accel ?? []) : accel
        if nvidiaDrivers && !accelerators.contains("nvidia") { accelerators.append("nvidia") }
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
        if !nvidia.options.isEmpty && !accelerators.contains("nvidia") {
            throw InputError("\(nvidia.options.keys.sorted().map { "--" + $0 }.joined(separator: ", ")) \(nvidia.options.count == 1 ? "is" : "are") for --accel nvidia",
                             hint: "add --accel nvidia, or drop \(nvidia.options.count == 1 ? "it" : "them")")
        }
        if !backend.capabilities.inputs.contains("rootfs-tree") && !source.isEmpty {
            throw InputError("the \(backend.name) backend takes a program, not --container/--containerfile/--rootfs-dir",
                             hint: "gvlt build --backend \(backend.name) PROGRAM -c manifest.json")
        }
        var options = file.options
        for item in option {
            let (key, value) = try keyValue(item, flag: "--option", hint: "e.g. --option hugepages=512")
            options[key] = value
        }
        for (key, value) in linuxvm.options { options[key] = value }
        for (key, value) in nanos.options { options[key] = value }
        for (key, value) in nvidia.options { options[key] = value }
        var plan = BuildPlan(backend: backend.name, program: program, accelerators: accelerators, output: "", force: force,
                             options: options)
        if nanos.printDeps || nanos.printManifest {
            guard let previewing = backend as? ImagePreviewing else {
                throw InputError("--print-deps and --print-manifest are for the nanos backend", hint: "drop them, or use --backend nanos")
            }
            let scratch = try ScratchDirectory(label: "gvlt-preview")
            defer { scratch.remove() }
            if nanos.printDeps { print(try previewing.preview(plan, kind: .dependencies, scratch: scratch), terminator: "") }
            if nanos.printManifest { print(try previewing.preview(plan, kind: .manifest, scratch: scratch), terminator: "") }
            return
        }
        let defaultOutput = try backend.defaultOutput(for: plan)
            ?? program.map { URL(fileURLWithPath: $0).lastPathComponent + ".img" } ?? "image.img"
        let output = self.output ?? file.output ?? defaultOutput
        try OutputPrecheck.check(output, force: force)
        plan.output = output
        let context = try source.makeContext(global: global, progress: progress, logger: logger)
        defer { context.scratch.remove() }
        if backend.capabilities.inputs.contains("rootfs-tree") {
            plan.image = try source.makeSource().load(context)
        } else if !source.isEmpty {
            throw InputError("the \(backend.name) backend takes a program, not --container/--containerfile/--rootfs-dir")
        }
        try backend.validate(plan)
        for accelerator in accelerators_ { try accelerator.validate(plan) }
        let buildContext = BuildContext(progress: progress, logger: logger, cache: CacheDirectory.resolve(override: global.cacheDir),
                                        scratch: context.scratch)
        // source → tree + run spec → (backend prepares its target) → accelerators → backend.
        let target = try backend.prepare(plan, context: buildContext)
        plan.target = target
        for accelerator in accelerators_ {
            plan.contributions[accelerator.name] = try accelerator.contribute(to: plan, target: target, context: buildContext)
        }
        var report = try backend.build(plan, context: buildContext)
        let resources = plan.contributions.filter { !$0.value.resources.isEmpty }.mapValues(\.resources)
        if !resources.isEmpty { report.resources = resources }
        if json {
            try printJSON(report)
        } else if !global.quiet {
            print("Bootable image file:\(report.output)")
            for (accelerator, needs) in resources.sorted(by: { $0.key < $1.key }) {
                print("Run resources (\(accelerator)): " + needs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
        }
    }
}

/// Options of the nvidia accelerator; each also has a build-config key of the same name under `options`.
struct NvidiaBuildOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where the kernel modules come from: debian (default: built from Debian's nvidia-open-kernel-source against the image's kernel, cached) or dir:PATH (prebuilt .ko files).", valueName: "source"))
    var nvidiaModules: String?

    @Option(name: .long, help: ArgumentHelp("The driver's modules to load, comma-separated (default nvidia,nvidia-uvm; also nvidia-modeset, nvidia-drm, nvidia-peermem).", valueName: "list"))
    var nvidiaKernelModules: String?

    @Option(name: .long, help: ArgumentHelp("install (default: add the driver's libcuda/libnvidia-ml, refusing an image with other versions) or keep (leave the image's own).", valueName: "mode"))
    var nvidiaUserspace: String?

    @Option(name: .long, help: ArgumentHelp("The NVIDIA driver version to use (default: the one apt offers), e.g. 535.261.03.", valueName: "version"))
    var nvidiaVersion: String?

    @Flag(name: .long, help: "Fail the run when no NVIDIA GPU is present (default: say so and run the program anyway).")
    var requireGpu = false

    @Option(name: .long, help: ArgumentHelp("Nanos: the gpu_nvidia klib (default: KlibDir's or the release's).", valueName: "file"))
    var nvidiaKlib: String?

    @Option(name: .long, help: ArgumentHelp("Nanos: GSP firmware of the klib's driver, as DIR/<version>/gsp_*.bin or DIR/gsp_*.bin.", valueName: "dir"))
    var nvidiaFirmware: String?

    var options: [String: String] {
        var result: [String: String] = [:]
        result["nvidia-modules"] = nvidiaModules
        result["nvidia-kernel-modules"] = nvidiaKernelModules
        result["nvidia-userspace"] = nvidiaUserspace
        result["nvidia-version"] = nvidiaVersion
        if requireGpu { result["require-gpu"] = "true" }
        result["nvidia-klib"] = nvidiaKlib
        result["nvidia-firmware"] = nvidiaFirmware
        return result
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

    @Option(name: .long, help: ArgumentHelp("Same as --root-fs (gvltctl's name).", valueName: "type"))
    var rootFsType: String?

    @Option(name: .long, help: ArgumentHelp("A kernel module the init loads before the program (repeatable); it goes into the image with what it depends on.", valueName: "name"))
    var kernelModule: [String] = []

    @Option(name: .long, help: ArgumentHelp("A mount the init makes after the gevulot shares (repeatable), as gvltctl's: SOURCE:/TARGET[:FSTYPE[:OPTIONS]]. FSTYPE defaults to 9p, and only 9p gets the 9p options by default. The target directory is created in the image.", valueName: "spec"))
    var mount: [String] = []

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
        result["root-fs-type"] = rootFsType
        if !kernelModule.isEmpty { result["kernel-module"] = kernelModule.joined(separator: ",") }
        if !mount.isEmpty { result["mount"] = mount.joined(separator: "\n") }
        result["squashfs-compressor"] = squashfsCompressor
        result["init"] = `init`
        return result
    }
}

/// Options of the nanos backend (ops build's, where they exist); each also has a build-config key.
struct NanosOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("The ops manifest (config JSON); -c as in `ops build -c`.", valueName: "file"))
    var manifest: String?

    @Option(name: .customLong("nanos-dir"), help: ArgumentHelp("A Nanos release directory (boot.img, kernel.img, klibs/). Default: ~/.ops/<version>.", valueName: "dir"))
    var nanosDir: String?

    @Option(name: .customLong("nanos-version"), help: ArgumentHelp("Use ~/.ops/<version> (default: the manifest's NanosVersion, else ~/.ops/latest.txt).", valueName: "version"))
    var nanosVersion: String?

    @Option(name: .long, help: ArgumentHelp("Nanos boot.img (stage1 + stage2) instead of the release's. With --backend nanos, --kernel FILE likewise names kernel.img.", valueName: "file"))
    var boot: String?

    @Option(name: .long, help: ArgumentHelp("Volume label of the root filesystem (at most 31 bytes).", valueName: "label"))
    var label: String?

    @Flag(name: .customLong("local-run"), help: "Add debug_exit:t so `gvlt run` gets the program's exit code from QEMU.")
    var localRun = false

    @Flag(name: .customLong("print-deps"), help: "Print the program's resolved libraries and write nothing.")
    var printDeps = false

    @Flag(name: .customLong("print-manifest"), help: "Print the image's metadata tree (Nanos syntax) and write nothing.")
    var printManifest = false

    var options: [String: String] {
        var result: [String: String] = [:]
        result["manifest"] = manifest
        result["nanos-dir"] = nanosDir
        result["nanos-version"] = nanosVersion
        result["boot"] = boot
        result["label"] = label
        if localRun { result["local-run"] = "true" }
        return result
    }
}
