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

    @Option(name: .customShort("c"), help: ArgumentHelp("Depends on the backend, as in the tool each one replaces: with linuxvm the container (--container, gvltctl build -c), with nanos the Ops manifest (--manifest, ops build -c).", valueName: "container|manifest"))
    var shortC: String?

    @Option(name: .customShort("i"), help: ArgumentHelp("Depends on the backend: with linuxvm the init program in the image (--init, gvltctl build -i), with nanos the image name (--imagename, ops build -i).", valueName: "init|name"))
    var shortI: String?

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
        // -c and -i mean what they mean to the tool the backend replaces: gvltctl's for Linux VMs,
        // ops's for backends that package a program.
        var linuxvm = self.linuxvm
        var nanos = self.nanos
        let takesProgram = !backend.capabilities.inputs.contains("rootfs-tree")
        if let value = shortC {
            if takesProgram {
                guard nanos.manifest == nil else { throw InputError("-c and --manifest both name the manifest", hint: "pass one") }
                nanos.manifest = value
            } else {
                guard source.container == nil else { throw InputError("-c and --container both name the container", hint: "pass one") }
                source.container = value
            }
        }
        if let value = shortI {
            if takesProgram {
                guard nanos.imagename == nil else { throw InputError("-i and --imagename both name the image", hint: "pass one") }
                nanos.imagename = value
            } else {
                guard linuxvm.`init` == nil else { throw InputError("-i and --init both name the init", hint: "pass one") }
                linuxvm.`init` = value
            }
        }
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
    @Option(name: [.customShort("k"), .long], help: ArgumentHelp("Kernel provider: debian (default, Debian's linux-image-amd64 via apt), debian:VERSION, file:PATH or source:DIR. gvltctl's -k VERSION maps onto them: a tag such as v6.10 is checked out from --kernel-url and built as source:; latest is Debian's current kernel (or, with --kernel-url, that repository's default branch).", valueName: "provider"))
    var kernel: String?

    @Option(name: .long, help: ArgumentHelp("gvltctl's: the git repository a -k VERSION comes from (default: torvalds/linux on GitHub, which needs the network; a local path works offline).", valueName: "url"))
    var kernelUrl: String?

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

    @Option(name: .long, help: ArgumentHelp("gvltctl's: a program in the image that the kernel starts instead of gvlt-init (init=PATH); -i with --backend linuxvm. gvlt-init's options (--kernel-module, --mount, …) do not go with it.", valueName: "path"))
    var `init`: String?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("gvltctl's: arguments for --init's program, after `--` on the kernel command line.", valueName: "args"))
    var initArgs: String?

    @Option(name: .long, help: ArgumentHelp("The gvlt-init binary to install (default: gvlt-init next to gvlt, or $GVLT_INIT).", valueName: "path"))
    var initBinary: String?

    @Option(name: .long, help: ArgumentHelp("gvltctl's: file:PATH installs that MIA-compatible init binary (as --init-binary); latest is gvlt's own init. Other versions are not downloaded.", valueName: "version"))
    var miaVersion: String?

    @Flag(help: "Debug only (gvltctl's): no gevulot shares and no worker config, so the image ignores the worker's and cannot run on the network.")
    var noGevulotRuntime = false

    @Flag(help: "gvltctl's: gvlt-init mounts no /proc, /sys, /dev, /run or /tmp.")
    var noDefaultMounts = false

    @Flag(help: "Debug only (gvltctl's): mount an ext4 root read-write. Workers (and gvlt run) attach the disk read-only, so there it stays read-only.")
    var rwRoot = false

    @Option(name: .long, help: ArgumentHelp("gvltctl's: MBR boot code to use instead of SYSLINUX's mbr.bin (at most 440 bytes).", valueName: "file"))
    var mbrFile: String?

    @Option(name: [.customShort("s"), .long], help: ArgumentHelp("gvltctl's: the whole disk's size, e.g. 10G or 1024M (default: as small as the content); the room after the root file system is a hole in the file.", valueName: "size"))
    var size: String?

    var options: [String: String] {
        var result: [String: String] = [:]
        result["kernel"] = kernel
        result["kernel-url"] = kernelUrl
        result["kernel-file"] = kernelFile
        result["kernel-modules"] = kernelModules
        result["kernel-config"] = kernelConfig
        result["root-fs"] = rootFs
        result["root-fs-type"] = rootFsType
        if !kernelModule.isEmpty { result["kernel-module"] = kernelModule.joined(separator: ",") }
        if !mount.isEmpty { result["mount"] = mount.joined(separator: "\n") }
        result["squashfs-compressor"] = squashfsCompressor
        result["init"] = `init`
        result["init-args"] = initArgs
        result["init-binary"] = initBinary
        result["mia-version"] = miaVersion
        if noGevulotRuntime { result["no-gevulot-runtime"] = "true" }
        if noDefaultMounts { result["no-default-mounts"] = "true" }
        if rwRoot { result["rw-root"] = "true" }
        result["mbr-file"] = mbrFile
        result["size"] = size
        return result
    }
}

/// Options of the nanos backend (ops build's, where they exist); each also has a build-config key.
struct NanosOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The ops manifest (config JSON); -c with --backend nanos, as in `ops build -c`.", valueName: "file"))
    var manifest: String?

    @Option(name: [.customShort("a"), .long], help: ArgumentHelp("ops's: a program argument (repeatable); replaces the manifest's Args.", valueName: "arg"))
    var args: [String] = []

    @Option(name: .long, help: ArgumentHelp("ops's: the image name; without -o the image goes to ~/.ops/images/NAME, as ops puts it. -i with --backend nanos.", valueName: "name"))
    var imagename: String?

    @Flag(name: [.customShort("n"), .long], help: "ops's: use the nightly Nanos build. gvlt does not download releases, so this fails with the way to pass one (--nanos-dir).")
    var nightly = false

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
        if !args.isEmpty { result["args"] = args.joined(separator: "\n") }
        result["imagename"] = imagename
        if nightly { result["nightly"] = "true" }
        result["nanos-dir"] = nanosDir
        result["nanos-version"] = nanosVersion
        result["boot"] = boot
        result["label"] = label
        if localRun { result["local-run"] = "true" }
        return result
    }
}
