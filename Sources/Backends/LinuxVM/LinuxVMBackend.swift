import Core
import Foundation

/// Firestarter Linux VM images: an MBR disk with a SYSLINUX-booted FAT partition
/// (kernel, initramfs) and a read-only SquashFS root holding the source tree, gvlt-init and the baked
/// runtime config.
public final class LinuxVMBackend: ImageBackend {
    public let name = "linuxvm"
    public let description = "Firestarter Linux VM images from a container image, Containerfile or rootfs directory"
    public let capabilities = BackendCapabilities(
        inputs: ["rootfs-tree"], outputs: ["raw-disk"], accelerators: ["nvidia"],
        reproducible: true, buildsImages: true)

    public init() {}

    public static func register(into registry: PluginRegistry) {
        let backend = LinuxVMBackend()
        registry.register(backend: backend)
        registry.register(components: LinuxVMComponents(backend: backend))
        let runner = LinuxVMRunner()
        registry.register(runner: runner)
        registry.register(diskRunner: runner)
        registry.register(inspector: runner)
    }

    public var targetKind: TargetKind { .linuxKernel }

    /// The backend's settings, from flags, the build config file's `options` or `--option`, with
    /// gvltctl's names where it has them.
    public struct Settings: BuildSettings {
        var kernel: KernelChoice
        var root: RootFilesystem
        /// `--squashfs-writer`: libsquashfs in-process (with the build caches) or the tar2sqfs pipe.
        var squashfsWriter: SquashfsImage.Writer
        /// The host's gvlt-init binary to install (`--init-binary`, `--mia-version file:PATH`).
        var initBinary: String?
        /// gvltctl's `--init`: a program in the image the kernel starts instead of gvlt-init.
        var customInit: String?
        /// gvltctl's `--init-args`, for the custom init (after `--` on the command line).
        var initArgs: String?
        /// The kernel command line's base words; the build adds root=, init= and the accelerators' words.
        var commandLine: String
        /// `--kernel-module` (gvltctl's): loaded by the init, with what they depend on in the image.
        var kernelModules: [String]
        /// `--mount` (gvltctl's), after the gevulot shares.
        var mounts: [RuntimeConfigFile.Mount]
        /// `--no-gevulot-runtime` clears it: no shares, no worker config (debug only).
        var gevulotRuntime: Bool
        /// `--no-default-mounts` clears it: the init mounts no /proc, /sys, /dev, /tmp, /run.
        var defaultMounts: Bool
        /// `--rw-root`: the root is mounted read-write where the disk allows (debug only).
        var rwRoot: Bool
        /// `--mbr-file`: boot code for the MBR instead of SYSLINUX's mbr.bin.
        var mbrFile: String?
        /// `--size`: the whole disk's size in bytes; the root partition takes the room left.
        var size: Int64?

        static let defaultCommandLine = "console=ttyS0 panic=-1 quiet"

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case kernel, mount, size
            case kernelURL = "kernel-url", kernelFile = "kernel-file", kernelModulesTree = "kernel-modules",
                kernelConfig = "kernel-config"
            case kernelCommandLine = "kernel-cmdline", rootFs = "root-fs", rootFsType = "root-fs-type", kernelModule =
                "kernel-module"
            case squashfsCompressor = "squashfs-compressor", squashfsWriter = "squashfs-writer", customInit = "init",
                initArgs = "init-args", initBinary =
                "init-binary"
            case miaVersion = "mia-version", noGevulotRuntime = "no-gevulot-runtime", noDefaultMounts =
                "no-default-mounts"
            case rwRoot = "rw-root", mbrFile = "mbr-file"
        }

        public init(from decoder: Decoder) throws {
            let options = try decoder.container(keyedBy: CodingKeys.self)
            func text(_ key: CodingKeys) throws -> String? { try options.decodeIfPresent(String.self, forKey: key) }
            func flag(_ key: CodingKeys) throws -> Bool { try options.decodeIfPresent(Bool.self, forKey: key) ?? false }
            let kernelFile = try text(.kernelFile), kernelText = try text(.kernel), kernelURL = try text(.kernelURL)
            if let file = kernelFile, let kernel = kernelText, kernel != "file:" + file {
                throw InputError(
                    "--kernel-file \(file) and --kernel \(kernel) name different kernels",
                    hint: "--kernel-file PATH is --kernel file:PATH; pass one")
            }
            kernel = try KernelChoice.parse(
                kernelFile.map { "file:" + $0 } ?? kernelText ?? (kernelURL != nil ? "latest" : "debian"),
                modules: try text(.kernelModulesTree), config: try text(.kernelConfig), url: kernelURL)
            let rootFs = try text(.rootFs), alias = try text(.rootFsType)
            if let alias, let rootFs, alias != rootFs {
                throw InputError(
                    "--root-fs-type \(alias) and --root-fs \(rootFs) disagree",
                    hint: "--root-fs-type is gvltctl's name for --root-fs; pass one")
            }
            switch rootFs ?? alias ?? "squashfs" {
            case "squashfs":
                let name = try text(.squashfsCompressor) ?? "zstd"
                guard let compressor = RootFilesystem.SquashfsCompressor(rawValue: name) else {
                    throw InputError(
                        "--squashfs-compressor `\(name)` is not one of \(RootFilesystem.SquashfsCompressor.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                root = .squashfs(compressor)
            case "ext4":
                root = .ext4
                if let writer = try text(.squashfsWriter) {
                    throw InputError(
                        "--squashfs-writer \(writer) is for a squashfs root, and this one is ext4",
                        hint: "drop --squashfs-writer, or drop --root-fs ext4")
                }
            case let other:
                throw InputError("--root-fs `\(other)` is not squashfs or ext4")
            }
            let writerName = try text(.squashfsWriter)
            if let writerName {
                guard let writer = SquashfsImage.Writer(rawValue: writerName) else {
                    throw InputError(
                        "--squashfs-writer `\(writerName)` is not native or tool",
                        hint: "native writes the root in-process (the default); tool streams a tar into tar2sqfs")
                }
                squashfsWriter = writer
            } else {
                // libsquashfs has no lzo, so lzo roots are the tool's.
                squashfsWriter = root == .squashfs(.lzo) ? .tool : .native
            }
            if squashfsWriter == .native, root == .squashfs(.lzo) {
                throw InputError(
                    "--squashfs-writer native cannot write lzo: libsquashfs leaves that compressor out",
                    hint: "use --squashfs-writer tool for lzo, or another --squashfs-compressor")
            }
            initBinary = try text(.initBinary)
            let mia = try text(.miaVersion)
            if let mia {
                if mia.hasPrefix("file:") {
                    let path = String(mia.dropFirst("file:".count))
                    if let other = initBinary, other != path {
                        throw InputError(
                            "--mia-version \(mia) and --init-binary \(other) disagree", hint: "pass one of them")
                    }
                    initBinary = path
                } else if mia != "latest" {
                    throw InputError(
                        "--mia-version \(mia): gvlt does not download MIA releases",
                        hint:
                            "gvlt installs its own MIA-compatible init (what `latest` gives); for a MIA binary of your own, pass --mia-version file:PATH"
                    )
                }
            }
            customInit = try text(.customInit)
            initArgs = try text(.initArgs)
            gevulotRuntime = !(try flag(.noGevulotRuntime))
            defaultMounts = !(try flag(.noDefaultMounts))
            rwRoot = try flag(.rwRoot)
            mbrFile = try text(.mbrFile)
            size = try text(.size).map(Self.size)
            commandLine = try text(.kernelCommandLine) ?? Self.defaultCommandLine
            if commandLine.contains(where: { $0 == "\n" || $0 == "\0" }) {
                throw InputError("--kernel-cmdline must be one line", hint: "separate the words with spaces")
            }
            // `--kernel-module a,b` names two, as gvltctl reads it.
            kernelModules = try (options.decodeIfPresent([String].self, forKey: .kernelModule) ?? [])
                .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                    !$0.isEmpty
                }
            for name in kernelModules where !ModuleTree.isModuleName(name) {
                throw InputError(
                    "--kernel-module `\(name)` is not a module name",
                    hint: "give the name, e.g. --kernel-module loop, without .ko or a path")
            }
            mounts = try (options.decodeIfPresent([String].self, forKey: .mount) ?? []).map(Self.mount)
            if let customInit {
                guard customInit.hasPrefix("/"), !customInit.contains(" "),
                    case .success(let parts) = TreePath.components(String(customInit.dropFirst())), !parts.isEmpty
                else {
                    throw InputError(
                        "--init \(customInit) is not an absolute path in the image",
                        hint: "e.g. --init /sbin/init; the host's gvlt-init binary is --init-binary PATH")
                }
                // As in gvltctl: these configure gvlt-init, which a custom init replaces.
                let configuring = [
                    ("--kernel-module", !kernelModules.isEmpty), ("--mount", !mounts.isEmpty),
                    ("--no-gevulot-runtime", !gevulotRuntime), ("--no-default-mounts", !defaultMounts),
                    ("--mia-version", mia != nil)
                ].filter(\.1).map(\.0)
                if !configuring.isEmpty {
                    throw InputError(
                        "\(configuring.joined(separator: ", ")) configure\(configuring.count == 1 ? "s" : "") gvlt-init, and --init \(customInit) replaces it",
                        hint: "drop \(configuring.count == 1 ? "it" : "them"), or drop --init")
                }
            } else if initArgs != nil {
                throw InputError("--init-args is for a custom --init", hint: "add --init PATH, or drop --init-args")
            }
            if rwRoot, case .squashfs = root {
                throw InputError(
                    "--rw-root needs a writable root file system, and squashfs is read-only", hint: "add --root-fs ext4"
                )
            }
        }

        /// `10G`, `1024M`, `512MiB`, `1T`, or bytes: binary units, as gvltctl's `--size`.
        static func size(_ text: String) throws -> Int64 {
            guard let bytes = ByteSize.parse(text, ByteSize.disk).flatMap({ Int64(exactly: $0) }) else {
                throw InputError("--size `\(text)` is not a size", hint: "e.g. --size 10G or --size 1024M")
            }
            return bytes
        }

        /// `source:target[:fstype[:options]]`, as gvltctl takes it. The fstype defaults to 9p, and
        /// only 9p gets the worker's 9p options by default (gvltctl gives them to every fstype).
        static func mount(_ text: String) throws -> RuntimeConfigFile.Mount {
            let parts = text.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, !parts[0].isEmpty, parts[1].hasPrefix("/") else {
                throw InputError(
                    "--mount `\(text)` is not SOURCE:/TARGET[:FSTYPE[:OPTIONS]]",
                    hint: "e.g. --mount data:/data (a 9p tag) or --mount tmpfs:/scratch:tmpfs:size=64m")
            }
            let target = parts[1]
            guard !target.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), target != "/" else {
                throw InputError(
                    "--mount `\(text)`: the target \(target) must be a directory path without `.` or `..`, not /")
            }
            let fstype = parts.count > 2 && !parts[2].isEmpty ? parts[2] : "9p"
            let data =
                parts.count > 3 && !parts[3].isEmpty
                ? parts[3] : (fstype == "9p" ? RuntimeConfigFile.ninePOptions : nil)
            return RuntimeConfigFile.Mount(source: parts[0], target: target, fstype: fstype, data: data)
        }
    }

    public func validate(_ settings: Settings, input: BuildInput) throws {
        guard input.image != nil else {
            throw InputError(
                "the linuxvm backend needs a source",
                hint: "pass --container TRANSPORT:REF, --containerfile FILE or --rootfs-dir DIR")
        }
    }

    /// Resolves the kernel, so that accelerators can build and check modules against it.
    public func prepare(_ settings: Settings, input: BuildInput, context: BuildContext) throws -> Preparation<
        KernelBundle
    > {
        let kernel = try resolveKernel(settings, context: context)
        return Preparation(target: Self.target(kernel), state: kernel)
    }

    static func target(_ kernel: KernelBundle) -> BuildTarget {
        .linuxKernel(
            TargetKernel(
                release: kernel.release, modulesDirectory: kernel.modulesDirectory,
                debianPackage: kernel.debianPackage?.name,
                debianVersion: kernel.debianPackage?.version, origin: kernel.origin))
    }

    func resolveKernel(_ settings: Settings, context: BuildContext) throws -> KernelBundle {
        try context.progress.step("resolving the kernel") {
            switch settings.kernel {
            case .debian(let version):
                return try DebianKernelProvider(cache: context.cache, version: version, progress: context.progress)
                    .bundle()
            case .file(let path, let modules, let config):
                return try FileKernelProvider.bundle(image: path, modules: modules, config: config)
            case .source(let directory, let config):
                return try SourceKernelProvider(
                    directory: directory, baseConfig: config, cache: context.cache,
                    progress: context.progress
                ).bundle()
            case .git(let url, let ref, let config):
                let checkout = try GitKernelSource(url: url, ref: ref, cache: context.cache, progress: context.progress)
                    .checkout()
                return try SourceKernelProvider(
                    directory: checkout, baseConfig: config, cache: context.cache,
                    progress: context.progress
                ).bundle()
            }
        }
    }

    public func build(_ job: BackendJob<Settings, KernelBundle>, context: BuildContext) throws -> BuildReport {
        guard let image = job.input.image else { throw InputError("the linuxvm backend needs a source") }
        let settings = job.settings
        let scratch = context.scratch.path
        let mtime = Timestamp.sourceDateEpoch
        let epoch = mtime.seconds
        let kernel = job.prepared
        let modules = try kernel.moduleTree()
        let order = try KernelValidator.validate(
            kernel.config, modules: modules, root: settings.root, kernel: kernel.origin)
        let initBinary = try ImageRoot.locateInit(option: settings.initBinary)

        // source → tree + run spec → accelerator contributions → image.
        let extraCommandLine = try Self.completeRoot(
            image, contributions: job.contributions, settings: settings, kernel: kernel,
            modules: modules, initBinary: initBinary, mtime: mtime, scratch: scratch)

        // The file holding the root (nil when it went into the disk only), where in it, and its size.
        var rootFile: String?
        var rootOffset: Int64 = 0
        var rootSize: Int64 = 0
        var cacheReport: BuildCacheReport?
        var rootInImage = false
        var storeInCache: SquashfsImage.PendingStore?
        func packRoot(into disk: (fd: Int32, offset: Int64)? = nil) throws {
            try context.progress.step("packing the root file system (\(settings.root))") {
                switch settings.root {
                case .squashfs(let compressor):
                    var squashfs = SquashfsImage(
                        compressor: compressor, writer: settings.squashfsWriter,
                        cache: context.buildCache ? context.cache : nil)
                    squashfs.mtime = UInt32(clamping: max(0, epoch))
                    let packed = try squashfs.build(image.tree, scratch: scratch, image: disk, leavingCacheStore: true)
                    (rootFile, rootOffset, rootSize, cacheReport) = (
                        packed.path, packed.offset, packed.size, packed.cache
                    )
                    (rootInImage, storeInCache) = (packed.inImage, packed.storeInCache)
                case .ext4:
                    let path = scratch + "/root.fs"
                    try Ext4Image(epoch: epoch).build(image.tree, to: path, scratch: scratch)
                    rootFile = path
                    rootSize = try SharedFile.openRegular(path, what: "root file system", followSymlinks: false).size
                }
            }
        }
        /// The root packed without a disk to go into, as a file.
        func packedRootFile() throws -> SharedFile {
            guard let rootFile else { preconditionFailure("a root packed without a disk has a file") }
            return try SharedFile.openRegular(rootFile, what: "root file system", followSymlinks: false)
        }
        // The boot partition is cached alongside the roots the native writer caches.
        let cachesBoot = context.buildCache && settings.squashfsWriter == .native && settings.root != .ext4
        var commandLine = ([settings.commandLine] + extraCommandLine).joined(separator: " ")
        var diskSignature: UInt32?
        let initPath = settings.customInit ?? "/" + ImageRoot.initPath
        let boot: (path: String, outcome: BuildCacheReport.Outcome?)
        // The disk's output, opened before the root is packed straight into it.
        var early: (output: AtomicOutput, rootStart: Int64)?
        defer { early?.output.abandon() }
        if order.isEmpty {
            try packRoot()
            // Everything is built in: the kernel mounts the root itself and starts the init there. It
            // finds the root by the disk signature, not by a device name that depends on the disk bus
            // and on which other disks the worker attaches.
            let fstype = settings.root == .ext4 ? "ext4" : "squashfs"
            let signature = try DiskImage.diskSignature(root: try packedRootFile(), offset: rootOffset, size: rootSize)
            diskSignature = signature
            commandLine +=
                " root=PARTUUID=\(String(format: "%08x", signature))-02 rootfstype=\(fstype) \(settings.rwRoot ? "rw" : "ro") init=\(initPath)"
            if let args = settings.initArgs, !args.isEmpty { commandLine += " -- " + args }
            let partition = BootPartition(
                kernel: kernel.image, initramfs: nil, commandLine: commandLine, sourceDateEpoch: epoch)
            boot = try context.progress.step("writing the boot partition") {
                try Self.bootPartition(partition, cached: cachesBoot, cache: context.cache, scratch: scratch)
            }
        } else {
            // The initramfs's init reads these: which init to start on the root, and how to mount it.
            if settings.customInit != nil { commandLine += " init=\(initPath)" }
            if settings.rwRoot { commandLine += " rw" }
            // Everything after `--` is the init's.
            if let args = settings.initArgs, !args.isEmpty { commandLine += " -- " + args }
            // Nothing in the boot partition depends on the root: it is written while the root
            // compresses, and its steps are timed on their own.
            let line = commandLine
            let writeInitramfs = {
                try Self.writeInitramfs(
                    kernel: kernel, modules: modules, order: order, initBinary: initBinary, mtime: mtime,
                    scratch: scratch, context: context)
            }
            let initramfsStep = "writing the initramfs (\(order.count) modules)"
            // The native writer writes the root straight into the disk, where the boot partition's
            // planned size puts it, so the disk is not a second copy of it at the end. That needs
            // the initramfs's size first.
            var initramfs: String?
            if settings.squashfsWriter == .native, settings.root != .ext4 {
                let path = try context.progress.step(initramfsStep) { try writeInitramfs() }
                initramfs = path
                let planned = try BootPartition(
                    kernel: kernel.image, initramfs: path, commandLine: line, sourceDateEpoch: epoch
                ).plannedKiB()
                let output = try AtomicOutput(path: job.output, force: job.force)
                early = (output, DiskImage.rootStart(bootKiB: planned))
            }
            let slot = early.map { (fd: $0.output.fd, offset: $0.rootStart) }
            let writeBootPartition = {
                let started = Date()
                let initrd = try initramfs ?? writeInitramfs()
                if initramfs == nil {
                    context.progress.record(step: initramfsStep, seconds: Date().timeIntervalSince(started))
                }
                let partitionStarted = Date()
                let partition = BootPartition(
                    kernel: kernel.image, initramfs: initrd, commandLine: line, sourceDateEpoch: epoch)
                let boot = try Self.bootPartition(
                    partition, cached: cachesBoot, cache: context.cache, scratch: scratch)
                context.progress.record(
                    step: "writing the boot partition", seconds: Date().timeIntervalSince(partitionStarted))
                return boot
            }
            if early != nil {
                (_, boot) = try overlapping(writeBootPartition, while: { try packRoot(into: slot) })
            } else {
                // The tool writer and ext4 run their own processes and pipes: one at a time.
                try packRoot()
                boot = try writeBootPartition()
            }
        }
        cacheReport?.bootPartition = boot.outcome
        if let cacheReport { context.logger.info("build cache: \(cacheReport.summary)") }
        let diskName = URL(fileURLWithPath: job.output).lastPathComponent
        // Storing a root file in the build cache reads it whole to hash it, as completing the disk
        // reads the disk: the two run side by side. A root in the disk only is stored as the disk,
        // once it is complete. Either way the disk takes its name after the store.
        var storing: BackgroundWork?
        if case .file(let store) = storeInCache { storing = BackgroundWork(store) }
        defer { storing?.wait() }
        var publish: (() -> Void)?
        let stored = { (disk: DiskImage.Committing) in
            storing?.wait()
            if case .disk(let stage) = storeInCache { publish = stage(disk) }
        }
        let disk = try context.progress.step("writing \(diskName)") { () -> (sha256: String, bytes: Int64) in
            if let (output, rootStart) = early, rootInImage {
                let duplicate = dup(output.fd)
                guard duplicate >= 0 else { throw SystemError("cannot read", path: output.path, errno: errno) }
                let written = SharedFile(fd: duplicate, displayName: output.path)
                let signature =
                    try diskSignature ?? DiskImage.diskSignature(root: written, offset: rootStart, size: rootSize)
                if let done = try DiskImage.complete(
                    output, rootStart: rootStart, rootSize: rootSize, boot: boot.path,
                    diskSignature: signature, mbrCode: settings.mbrFile, size: settings.size, beforeCommit: stored)
                {
                    return done
                }
                // A boot partition that outgrew its plan: a disk anew, its root taken from this one.
                defer { output.abandon() }
                return try DiskImage.write(
                    boot: boot.path, root: (written, rootStart, rootSize), diskSignature: signature,
                    mbrCode: settings.mbrFile, size: settings.size, to: job.output, force: job.force,
                    beforeCommit: stored)
            }
            // A root from the cache, or one packed before the disk was opened.
            early?.output.abandon()
            return try DiskImage.write(
                boot: boot.path, root: (try packedRootFile(), rootOffset, rootSize), diskSignature: diskSignature,
                mbrCode: settings.mbrFile, size: settings.size, to: job.output, force: job.force,
                beforeCommit: stored)
        }
        publish?()
        if cacheReport?.root == .miss { Self.keepCacheBound(context) }
        var report = BuildReport(
            backend: name, output: URL(fileURLWithPath: job.output).standardizedFileURL.path, sha256: disk.sha256,
            bytes: disk.bytes, steps: context.steps)
        report.cache = cacheReport
        return report
    }

    /// The boot partition, from the build cache when `cached`; the outcome is nil without it.
    static func bootPartition(_ partition: BootPartition, cached: Bool, cache: CacheDirectory, scratch: String)
        throws -> (path: String, outcome: BuildCacheReport.Outcome?)
    {
        guard cached else { return (try partition.build(in: scratch), nil) }
        let (path, outcome) = try cachedBootPartition(partition, cache: cache, scratch: scratch)
        return (path, outcome)
    }

    /// The boot partition from the build cache, keyed by everything in it: the kernel and initramfs
    /// bytes, the command line, the time stamp and the FAT tools that write it.
    static func cachedBootPartition(_ partition: BootPartition, cache: CacheDirectory, scratch: String) throws -> (
        String, BuildCacheReport.Outcome
    ) {
        let tools = BootPartition.tools.map { tool in tool.locate().map(BuildFileCache.toolPart) ?? tool.name }
        let key = BuildFileCache.key(
            [
                "gvlt-boot-partition-v1", try SHA256Hex.of(file: partition.kernel),
                try partition.initramfs.map { try SHA256Hex.of(file: $0) } ?? "-", partition.commandLine,
                String(partition.sourceDateEpoch)
            ] + tools)
        let boots = BuildFileCache.bootPartitions(cache)
        let output = scratch + "/boot-cached.img"
        var damaged = false
        if let hit = try boots.lookup(key, at: output, damaged: &damaged) { return (hit.path, .hit) }
        let path = try boots.store(key, at: output) { output -> String in
            let built = try partition.build(in: scratch)
            guard rename(built, output) == 0 else {
                throw SystemError("cannot move the boot partition", path: built, errno: errno)
            }
            return output
        }
        return (path, .miss)
    }

    /// Evicts the least recently used build cache entries past the bound (`$GVLT_CACHE_MAX_SIZE`).
    static func keepCacheBound(_ context: BuildContext) {
        do {
            let outcome = CachePruning(cache: context.cache).prune(to: try CachePruning.defaultLimit())
            if outcome.removedEntries > 0 {
                context.logger.info(
                    "build cache: evicted \(outcome.removedEntries) least recently used entries (\(outcome.freedBytes) bytes) to stay within \(outcome.limitBytes) bytes"
                )
            }
        } catch {
            context.logger.warning("build cache: not pruned: \(error)")
        }
    }

    /// Makes `image.tree` the Firestarter root: the accelerators' files and the kernel modules they
    /// need, the mount points, the init and the baked config. Returns the words they add to the
    /// kernel command line.
    static func completeRoot(
        _ image: LoadedImage, contributions: [NamedContribution], settings: Settings,
        kernel: KernelBundle, modules: ModuleTree?, initBinary: String, mtime: Timestamp, scratch: String
    ) throws -> [String] {
        var extraEnv: [RunSpec.EnvVar] = []
        var guestModules: [String] = []
        var extraCommandLine: [String] = []
        for item in contributions {
            let (accelerator, contribution) = (item.accelerator, item.contribution)
            extraEnv += contribution.env
            extraCommandLine += contribution.linux.kernelCommandLine
            for file in contribution.files { try image.tree.add(file) }
            if let klib = contribution.nanos.klibs.first {
                throw UnsupportedError(
                    "accelerator `\(accelerator)` asks for the Nanos klib \(klib), and a Linux image has no klibs",
                    hint: "use the accelerator with --backend nanos")
            }
            guestModules += try moduleLoadOrder(
                contribution.linux.kernelModules, requester: "accelerator `\(accelerator)`", files: contribution.files,
                tree: image.tree, kernel: kernel, modules: modules, mtime: mtime)
        }
        guestModules += try moduleLoadOrder(
            settings.kernelModules, requester: "--kernel-module", files: [], tree: image.tree,
            kernel: kernel, modules: modules, mtime: mtime)
        var seen = Set<String>()
        guestModules = guestModules.filter { seen.insert($0).inserted }
        if settings.customInit != nil {
            for item in contributions
            where !item.contribution.linux.kernelModules.isEmpty || !item.contribution.env.isEmpty {
                let accelerator = item.accelerator
                throw InputError(
                    "accelerator `\(accelerator)` needs gvlt-init to load its kernel modules and set its environment, and --init \(settings.customInit!) replaces it",
                    hint: "drop --init, or drop --accel \(accelerator)")
            }
        }
        // PATH and HOME as container runtimes give them, decided here so that inspect shows them.
        let spec = RuntimeDefaults.apply(to: image.runSpec, passwd: image.tree.smallText(at: "etc/passwd"))
        var config = RuntimeConfigFile.baked(
            from: spec, extraEnv: extraEnv, kernelModules: guestModules, mounts: settings.mounts,
            gevulotRuntime: settings.gevulotRuntime)
        if !settings.defaultMounts { config.defaultMounts = false }
        try ImageRoot.complete(image.tree, init: initBinary, config: config, mtime: mtime, scratch: scratch)
        if let customInit = settings.customInit {
            let parts = try image.tree.resolvingParents(
                TreePath.components(String(customInit.dropFirst())).get(), what: "--init \(customInit)")
            switch try image.tree.node(at: parts) {
            case .leaf?: break
            case .directory?:
                throw InputError(
                    "--init \(customInit) is a directory in the image",
                    hint: "name the init program, e.g. --init /sbin/init")
            case nil:
                throw InputError(
                    "--init \(customInit) is not in the image",
                    hint:
                        "add it to the image, or name a program it has; the host's gvlt-init binary is --init-binary PATH"
                )
            }
        }
        return extraCommandLine
    }

    /// The initramfs that loads `order` (the drivers the root needs), then finds the root partition
    /// by its content and starts the init there.
    static func writeInitramfs(
        kernel: KernelBundle, modules: ModuleTree?, order: [String], initBinary: String, mtime: Timestamp,
        scratch: String, context: BuildContext
    ) throws -> String {
        let path = scratch + "/initrd.img"
        var initramfs = Initramfs(
            release: kernel.release, modules: order.map { ($0, modules!.modules[$0]!) },
            modulesDirectory: modules?.directory ?? "", initBinary: initBinary, mtime: mtime,
            slimInto: scratch + "/modules")
        // Slimmed modules are kept with the kernels, which --no-cache still uses.
        initramfs.moduleCache = context.cache
        initramfs.note = { context.logger.warning("\($0)") }
        _ = try initramfs.write(to: path, force: true)
        return path
    }

    /// The modules an accelerator (or --kernel-module) asks the guest to load, in load order, possibly
    /// repeating ones asked for before (the caller drops repeats). One it added itself (under
    /// /lib/modules/RELEASE, where the init looks) is loaded from there; any other comes from the
    /// kernel's modules tree, put into the image with everything it depends on.
    static func moduleLoadOrder(
        _ names: [String], requester: String, files: [FileEntry], tree: FileTree, kernel: KernelBundle,
        modules: ModuleTree?, mtime: Timestamp
    ) throws -> [String] {
        guard !names.isEmpty else { return [] }
        let release = ["lib", "modules", kernel.release]
        var supplied = Set<String>()
        for file in files where file.path.hasSuffix(".ko") {
            let components = file.path.split(separator: "/").map(String.init)
            if Array(components.prefix(3)) == release || Array(components.prefix(4)) == ["usr"] + release {
                supplied.insert(ModuleTree.canonical(String(components.last!.dropLast(3))))
            }
        }
        var order: [String] = []
        var fromKernel: [String] = []
        for name in names {
            if supplied.contains(ModuleTree.canonical(name)) {
                order.append(ModuleTree.canonical(name))
                continue
            }
            guard let modules else {
                throw InputError(
                    "\(requester) needs kernel module \(name), and kernel \(kernel.origin) has no loadable modules",
                    hint: "use a kernel with a modules tree (--kernel debian), or one with \(name) built in")
            }
            guard modules.path(of: name) != nil || modules.builtIn.contains(ModuleTree.canonical(name)) else {
                throw InputError(
                    "\(requester) needs kernel module \(name), which kernel \(kernel.release) does not have (\(modules.directory))",
                    hint:
                        "check the name (modules of this kernel are in \(modules.directory)); an accelerator may also ship it under /lib/modules/\(kernel.release)"
                )
            }
            fromKernel.append(name)
        }
        if let modules, !fromKernel.isEmpty {
            let closure = try modules.closure(of: fromKernel)
            let files = GuestFiles(mtime: mtime)
            for module in closure {
                let relative = modules.modules[module]!
                try files.add(
                    host: modules.directory + "/" + relative, at: (release + [relative]).joined(separator: "/"))
            }
            for entry in files.entries { try tree.add(entry) }
            order += closure
        }
        return order
    }
}
