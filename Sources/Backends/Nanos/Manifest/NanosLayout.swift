import Core
import Foundation

/// What goes into a Nanos image, worked out from an ops manifest the way `ops build` does it
/// (lepton/image.go `BuildManifest`): the program, the files ops always adds, Files/MapDirs/Dirs,
/// the libraries the program needs, the root tuple, and the boot filesystem with the kernel and
/// klibs. Nothing is written here; `NanosImageWriter` does that.
public struct NanosLayout {
    public var root = TFSNode.directory()
    public var boot = TFSNode.directory()
    public var rootKeys: [(String, TFSValue)] = []
    public var closure = LibraryResolver.Closure(interpreter: nil, libraries: [], placements: [])
    /// Where the program sits in the image (`/prover`).
    public var programPath = ""

    public var warnings: [String] = []
    /// The files gvlt writes itself (ops' generated ones), by image path, with their text.
    public var generated: [(path: String, text: String)] = []
    /// What a dry run (`--print-manifest`) could not find and an image needs: the release's kernel
    /// or a klib. Empty for a layout an image is written from.
    public var unresolved: [String] = []
    /// Where the generated files are, so that their temporary host paths are never shown.
    var scratch = ""

    /// A layout given directly (tests, and callers that build trees themselves).
    public init(root: TFSNode, boot: TFSNode, rootKeys: [(String, TFSValue)]) {
        self.root = root
        self.boot = boot
        self.rootKeys = rootKeys
    }

    public struct Options {
        /// The program's host path (the PROGRAM argument, or the manifest's Program).
        public var program: String
        /// Adds `debug_exit:t` so a local QEMU run returns the program's exit code.
        public var localRun = false
        public var imageName: String
        /// Klibs accelerators add, with a host file or nil for the release's klib directory.
        public var extraKlibs: [(name: String, path: String?)] = []
        /// Files accelerators add to the root (firmware).
        public var extraFiles: [FileEntry] = []
        /// Environment accelerators add, after the manifest's Env.
        public var extraEnv: [(String, String)] = []
        /// A dry run: a missing kernel or klib is listed in `unresolved` instead of refused.
        public var dryRun = false
        public init(program: String, localRun: Bool = false, imageName: String) {
            self.program = program
            self.localRun = localRun
            self.imageName = imageName
        }
    }

    /// ops' generated files, byte for byte (`fmt.Sprintln("nameserver ", ns)` gives two spaces).
    static func resolvConf(_ servers: [String]) -> String { servers.map { "nameserver  \($0)\n" }.joined() }
    static let hostname = "uniboot"
    static let passwd = "root:x:0:0:root:/root:/bin/nobash"

    public init(manifest: OpsManifest, release: NanosRelease, options: Options, scratch: String) throws {
        let what = "manifest \(manifest.path)"
        let targetRoot = manifest.targetRootPath

        // The program: at `/` + Program without a leading `./`; argv[0] is Program as written.
        let programName = manifest.programName(host: options.program)
        let parts = OpsManifest.imagePath(ofProgram: programName)
        guard !parts.isEmpty else {
            throw InputError(
                "\(what): Program `\(programName)` names no file", hint: "set Program to the executable's name")
        }
        programPath = "/" + parts.joined(separator: "/")
        try TFSPath.check(parts, what: "\(what): Program")
        try root.set(parts, TFSNode(.file(try Self.content(options.program, what: "program"))), what: what)

        // Generated files first, so that Files/Dirs can replace them (as ops lets them).
        self.scratch = scratch
        func generated(_ path: String, _ text: String) throws {
            self.generated.append((path, text))
            let file = scratch + "/generated-" + path.replacingOccurrences(of: "/", with: "_")
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            try root.set(
                try TFSPath.split(path, what: what), TFSNode(.file(try Self.content(file, what: path))), what: what)
        }
        try generated(
            "/etc/resolv.conf", Self.resolvConf(manifest.nameServers.isEmpty ? ["8.8.8.8"] : manifest.nameServers))
        try generated("/proc/sys/kernel/hostname", Self.hostname)
        try generated("/etc/passwd", Self.passwd)

        func hostPath(_ entry: String) -> String {
            if entry.hasPrefix("/") { return (targetRoot ?? "") + entry }
            return manifest.directory + "/" + entry
        }
        for entry in manifest.files {
            let source = hostPath(entry)
            var st = stat()
            guard stat(source, &st) == 0 else {
                throw InputError(
                    "\(what): Files entry `\(entry)` does not exist (looked for \(source))",
                    hint: "relative Files paths are relative to the manifest's directory \(manifest.directory)")
            }
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw InputError(
                    "\(what): Files entry `\(entry)` (\(source)) is not a regular file", hint: "put directories in Dirs"
                )
            }
            try root.set(
                try TFSPath.split(entry, what: "\(what): Files entry `\(entry)`"),
                TFSNode(.file(try Self.content(source, what: entry))), what: what)
        }
        for (pattern, destination) in manifest.mapDirs {
            try mapDirectory(pattern: hostPath(pattern), destination: destination, entry: pattern, what: what)
        }
        for entry in manifest.dirs {
            let source = entry.hasPrefix("/") ? entry : manifest.directory + "/" + entry
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw InputError(
                    "\(what): Dirs entry `\(entry)` is not a directory (looked for \(source))",
                    hint: "relative Dirs paths are relative to the manifest's directory \(manifest.directory)")
            }
            try addDirectory(
                host: source, image: try TFSPath.split(entry, what: "\(what): Dirs entry `\(entry)`"), what: what)
        }

        // ops copies the host file or directory Args[1] names (the script of `node app.js`) to the
        // same path in the image, unless DisableArgsCopy; the path is taken from the working
        // directory, as ops' os.Stat takes it.
        if !manifest.disableArgsCopy, let argument = manifest.args.first {
            try copyArgument(argument, what: what)
        }

        // Libraries, by reading the ELF. What the manifest put in place explicitly stays.
        // The closure checks the program's ELF headers before reading its dynamic section.
        closure = try manifest.libraryResolver().closure(program: options.program, guestPath: programPath)
        for placement in closure.placements {
            let path = try TFSPath.split(placement.guestPath, what: "library \(placement.guestPath)")
            if root.node(at: path) != nil { continue }
            if let target = placement.symlinkTarget {
                try root.set(path, TFSNode(.symlink(target)), what: what)
            } else {
                try root.set(
                    path, TFSNode(.file(try Self.content(placement.hostPath!, what: placement.guestPath))), what: what)
            }
        }

        // The root tuple, in ops' order of precedence: later keys win, passthrough last.
        var keys: [String: TFSValue] = [:]
        keys["program"] = .string(programPath)
        let argv = [programName] + manifest.args
        for (index, argument) in argv.enumerated() where argument.isEmpty {
            throw InputError(
                "\(what): argument \(index) is empty; Nanos cannot store an empty string (it reads as absent)",
                hint: "drop the empty argument from Args")
        }
        keys["arguments"] = .vector(argv.map { .string($0) })
        var environment: [(String, String)] = [
            ("USER", "root"), ("PWD", "/"), ("NANOS_ARCH", "amd64"), ("IMAGE_NAME", options.imageName)
        ]
        if let version = release.version { environment.append(("NANOS_VERSION", version)) }
        environment += manifest.env + options.extraEnv
        let env = TFSTuple()
        for (name, value) in environment {
            guard !value.isEmpty else {
                throw InputError(
                    "\(what): Env.\(name) is empty; Nanos cannot store an empty string (it reads as absent)",
                    hint: "remove Env.\(name), or give it a value")
            }
            env[name] = .string(value)
        }
        keys["environment"] = .tuple(env)
        if !manifest.mounts.isEmpty {
            let mounts = TFSTuple()
            for (volume, target) in manifest.mounts {
                let directory = String(target.split(separator: ":", maxSplits: 1).first ?? "")
                let path = try TFSPath.split(directory, what: "\(what): Mounts.\(volume)")
                guard !path.isEmpty else {
                    throw InputError(
                        "\(what): Mounts.\(volume) mounts over `/`", hint: "mount it on a directory such as /workspace")
                }
                if let existing = root.node(at: path), !existing.isDirectory {
                    throw InputError(
                        "\(what): Mounts.\(volume) targets \(directory), which is a file in the image",
                        hint: "mount the volume on a directory path that no file uses")
                }
                _ = try root.directory(at: path, what: "\(what): Mounts.\(volume)")
                mounts[volume] = .string(target)
            }
            keys["mounts"] = .tuple(mounts)
        }
        if manifest.rebootOnExit { keys["reboot_on_exit"] = .string("t") }
        for flag in manifest.debugFlags { keys[flag] = .string("t") }
        if !manifest.noTrace.isEmpty { keys["notrace"] = .vector(manifest.noTrace.map { .string($0) }) }
        if options.localRun { keys["debug_exit"] = .string("t") }

        // Boot filesystem: the kernel and klibs; klibs also need `klibs:bootfs` in the root.
        if options.dryRun && release.kernel.isEmpty {
            unresolved.append("/kernel (boot filesystem): the Nanos release's kernel.img")
        } else {
            try boot.set(["kernel"], TFSNode(.file(try Self.content(release.kernel, what: "Nanos kernel"))), what: what)
        }
        var klibs: [(name: String, path: String?)] = manifest.klibs.map { ($0, nil) }
        for extra in options.extraKlibs {
            if let index = klibs.firstIndex(where: { $0.name == extra.name }) {
                if extra.path != nil { klibs[index].path = extra.path }
            } else {
                klibs.append(extra)
            }
        }
        for (name, given) in klibs {
            let path: String
            if let given {
                path = given
            } else {
                guard let directory = release.klibDirectory else {
                    if options.dryRun {
                        unresolved.append("/klib/\(name) (boot filesystem): klib \(name) of the Nanos release")
                        keys["klibs"] = .string("bootfs")
                        continue
                    }
                    throw InputError(
                        "\(what): klib \(name) is needed but no klib directory is known",
                        hint: "set KlibDir, or pass --nanos-dir with a klibs/ directory")
                }
                path = directory + "/" + name
                if options.dryRun && !FileManager.default.fileExists(atPath: path) {
                    unresolved.append("/klib/\(name) (boot filesystem): \(path) does not exist")
                    keys["klibs"] = .string("bootfs")
                    continue
                }
                guard FileManager.default.fileExists(atPath: path) else {
                    throw InputError(
                        "\(what): klib `\(name)` is not in \(directory)",
                        hint: "set KlibDir to the directory holding \(name), or check the release's klibs/")
                }
            }
            let content = try Self.content(path, what: "klib \(name)")
            if content.size > Self.klibLoadLimit {
                warnings.append(
                    "klib \(name) (\(path)) is \(content.size >> 10) KiB; Nanos releases since December 2024 read a klib into one physically contiguous buffer of at most 2 MiB, so they cannot load it (older releases can)"
                )
            }
            try boot.set(["klib", name], TFSNode(.file(content)), what: what)
            klibPaths[name] = path
        }
        if !klibs.isEmpty { keys["klibs"] = .string("bootfs") }
        for file in options.extraFiles {
            let parts = try TFSPath.split(file.path, what: "\(what): accelerator file")
            switch file.kind {
            case .regularFile(let content): try root.set(parts, TFSNode(.file(content)), what: what)
            case .symlink(let target): try root.set(parts, TFSNode(.symlink(target)), what: what)
            case .directory: try root.set(parts, TFSNode.directory(), what: what)
            default:
                throw InputError(
                    "an accelerator added \(file.path), a \(file.kind.name), which a Nanos image cannot hold")
            }
        }
        for (key, value) in manifest.passthrough { keys[key] = Self.tfsValue(value) }
        rootKeys = keys.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        try checkGPU(manifest: manifest, what: what)
    }

    /// The largest klib current Nanos can load: its physical allocator gives at most 2 MiB at once.
    static let klibLoadLimit: Int64 = 2 << 20

    /// Where each klib in the boot filesystem came from.
    public var klibPaths: [String: String] = [:]

    /// The NVIDIA klib's needs: a writable root, and firmware and CUDA libraries of
    /// the driver version the klib was built for, which the klib itself says.
    mutating func checkGPU(manifest: OpsManifest, what: String) throws {
        guard let klib = klibPaths["gpu_nvidia"] else {
            if (manifest.run.gpus ?? 0) > 0 {
                warnings.append(
                    "RunConfig.GPUs is \(manifest.run.gpus!) but Klibs has no gpu_nvidia: the program will see no GPU")
            }
            return
        }
        if let readonly = manifest.passthrough.first(where: { $0.0 == "readonly_rootfs" }),
            readonly.1 == .string("true")
        {
            throw InputError(
                "\(what): readonly_rootfs is \"true\", but the gpu_nvidia klib creates /dev/nvidiactl on the root filesystem and fails on a read-only one",
                hint: "remove readonly_rootfs from ManifestPassthrough for GPU images")
        }
        guard let version = try NvidiaVersionString.find(inFile: klib) else {
            throw InputError(
                "cannot tell which NVIDIA driver the gpu_nvidia klib \(klib) was built for: it carries no NVIDIA identification string",
                hint: "use a gpu_nvidia klib built from NVIDIA's open kernel modules (nanovms/gpu-nvidia)")
        }
        let expected = ["gsp_ga10x.bin", "gsp_tu10x.bin"].map { "/nvidia/\(version)/\($0)" }
        let missing = expected.filter { path in
            guard let node = root.node(at: path.split(separator: "/").map(String.init)), case .file = node.kind else {
                return true
            }
            return false
        }
        if !missing.isEmpty {
            let present = (root.node(at: ["nvidia"])?.children.keys.sorted() ?? []).filter { $0 != version }
            throw InputError(
                "\(what): the gpu_nvidia klib is NVIDIA driver \(version) and reads its firmware from \(expected.joined(separator: " and ")); the image lacks \(missing.joined(separator: ", "))"
                    + (present.isEmpty
                        ? "" : " (its /nvidia has firmware for \(present.joined(separator: ", ")) instead)"),
                hint:
                    "add the firmware of driver \(version): \"Dirs\": [\"nvidia\"] with nvidia/\(version)/gsp_*.bin next to the manifest, or --accel nvidia --nvidia-firmware DIR"
            )
        }
        // CUDA's user-space driver libraries must be the klib's version.
        var foreign: [String] = []
        func walk(_ node: TFSNode, _ path: String) {
            for (name, child) in node.children.sorted(by: { $0.key < $1.key }) {
                if child.isDirectory { walk(child, path + "/" + name); continue }
                if let found = NvidiaVersionString.driverLibraryVersion(fileName: name), found != version {
                    foreign.append("\(path)/\(name)")
                }
            }
        }
        walk(root, "")
        if !foreign.isEmpty {
            throw InputError(
                "\(what): the gpu_nvidia klib is NVIDIA driver \(version), but the image's CUDA driver libraries are another version: \(foreign.joined(separator: ", "))",
                hint: "ship libcuda and libnvidia-ml of driver \(version) (Files/Dirs), or use a klib built for theirs")
        }
    }

    /// MapDirs: the last component of `pattern` is a glob matched at every depth under its directory;
    /// matches keep their relative directory under `destination` (ops' addMappedFiles).
    mutating func mapDirectory(pattern: String, destination: String, entry: String, what: String) throws {
        let directory = URL(fileURLWithPath: pattern).deletingLastPathComponent().path
        let glob = URL(fileURLWithPath: pattern).lastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError(
                "\(what): MapDirs entry `\(entry)`: \(directory) is not a directory",
                hint: "MapDirs maps \"dir/pattern\" to an image directory")
        }
        let base = try TFSPath.split(destination, what: "\(what): MapDirs.\(entry)")
        func walk(_ relative: [String]) throws {
            let host = ([directory] + relative).joined(separator: "/")
            for name in try FileManager.default.contentsOfDirectory(atPath: host).sorted() {
                let path = host + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                let matched = fnmatch(glob, name, 0) == 0
                let image = base + relative + [name]
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    if matched { _ = try root.directory(at: image, what: what) }
                    try walk(relative + [name])
                case S_IFLNK where matched:
                    try root.set(
                        image, TFSNode(.symlink(try FileManager.default.destinationOfSymbolicLink(atPath: path))),
                        what: what)
                case S_IFREG where matched:
                    try root.set(image, TFSNode(.file(try Self.content(path, what: path))), what: what)
                default:
                    continue
                }
            }
        }
        try walk([])
    }

    /// The Args[1] copy: only a name that stays inside the image and does not replace its root.
    mutating func copyArgument(_ argument: String, what: String) throws {
        var st = stat()
        guard !argument.isEmpty, stat(argument, &st) == 0 else { return }
        let parts = argument.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
            .filter { $0 != "." }
        guard !parts.isEmpty, !parts.contains("..") else {
            warnings.append(
                "Args[1] `\(argument)` is a host path, but it names no place inside the image; not copied (ops would); set DisableArgsCopy to silence this"
            )
            return
        }
        let host = argument.hasPrefix("/") ? argument : FileManager.default.currentDirectoryPath + "/" + argument
        switch st.st_mode & S_IFMT {
        case S_IFDIR: try addDirectory(host: host, image: parts, what: what)
        case S_IFREG: try root.set(parts, TFSNode(.file(try Self.content(host, what: "Args[1]"))), what: what)
        default: return
        }
        warnings.append(
            "Args[1] `\(argument)` exists on this host, so it is copied into the image at /\(parts.joined(separator: "/")), as ops does; set \"DisableArgsCopy\": true to leave it out"
        )
    }

    /// Dirs: the directory's whole tree at the same path in the image; symlinks stay symlinks.
    mutating func addDirectory(host: String, image: [String], what: String) throws {
        _ = try root.directory(at: image, what: what)
        for name in try FileManager.default.contentsOfDirectory(atPath: host).sorted() {
            let path = host + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { throw SystemError("cannot read", path: path, errno: errno) }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: try addDirectory(host: path, image: image + [name], what: what)
            case S_IFLNK:
                var target = stat()
                guard stat(path, &target) == 0 else {
                    warnings.append("\(path) is a dangling symlink; left out (ops does the same)")
                    continue
                }
                try root.set(
                    image + [name], TFSNode(.symlink(try FileManager.default.destinationOfSymbolicLink(atPath: path))),
                    what: what)
            case S_IFREG: try root.set(image + [name], TFSNode(.file(try Self.content(path, what: path))), what: what)
            default: warnings.append("\(path) is not a file, directory or symlink; left out")
            }
        }
    }

    static func content(_ path: String, what: String) throws -> FileContent {
        var st = stat()
        guard stat(path, &st) == 0 else { throw InputError("\(what): \(path) does not exist") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw InputError("\(what): \(path) is not a regular file") }
        guard access(path, R_OK) == 0 else {
            throw InputError("\(what): \(path) is not readable", hint: "check its permissions")
        }
        return .hostFile(path: path, size: Int64(st.st_size), identity: FileIdentity(st))
    }

    static func tfsValue(_ value: JSONValue) -> TFSValue {
        switch value {
        case .string(let text): return .string(text)
        case .array(let items): return .vector(items.map(tfsValue))
        case .object(let items):
            return .tuple(TFSTuple(items.keys.sorted().map { ($0, tfsValue(items[$0]!)) }))
        case .bool(let flag): return .string(flag ? "true" : "false")
        case .number(let number): return .string(String(number))
        case .null: return .string("")
        }
    }

    /// The image as the manifest Nanos' mkfs reads (`--print-manifest`): the root tuple, its files as
    /// `contents:(host:PATH)` of the real inputs and the boot filesystem under `boot`, with what has no
    /// host file (the files gvlt writes, and what a dry run could not find) said in comments.
    public func manifestText() throws -> String {
        var writtenByGvlt: [String] = []
        func describe(_ node: TFSNode, path: String) -> TFSValue {
            switch node.kind {
            case .directory:
                let children = TFSTuple()
                for name in node.children.keys.sorted() {
                    let child = path + "/" + name
                    let value = describe(node.children[name]!, path: child)
                    if case .tuple(let tuple) = value, tuple.sortedPairs.isEmpty { continue }
                    children[name] = value
                }
                return .tuple(TFSTuple([("children", .tuple(children))]))
            case .symlink(let target): return .tuple(TFSTuple([("linktarget", .string(target))]))
            case .file(let content):
                guard case .hostFile(let host, _, _) = content, scratch.isEmpty || !host.hasPrefix(scratch + "/") else {
                    writtenByGvlt.append(path)
                    return .tuple(TFSTuple())
                }
                // mkfs may run elsewhere: every host path is absolute.
                let absolute = host.hasPrefix("/") ? host : FileManager.default.currentDirectoryPath + "/" + host
                return .tuple(TFSTuple([("contents", .tuple(TFSTuple([("host", .string(absolute))])))]))
            }
        }
        guard case .tuple(let rootTuple) = describe(root, path: "") else { return "" }
        for (key, value) in rootKeys { rootTuple[key] = value }
        rootTuple["boot"] = describe(boot, path: "")
        var header = ["# The image in Nanos manifest syntax, as Nanos' mkfs reads it (gvlt build --print-manifest)."]
        if !writtenByGvlt.isEmpty {
            header.append("# Written by gvlt itself, as ops writes them, so not in the manifest:")
            let texts = Dictionary(generated.map { ($0.path, $0.text) }, uniquingKeysWith: { $1 })
            for path in writtenByGvlt {
                let text = texts[path].map { " " + Self.commentQuoted($0) } ?? ""
                header.append("#   \(path)\(text)")
            }
        }
        if !unresolved.isEmpty {
            header.append("# Not found, and needed to write the image (no Nanos release is needed to print this):")
            header += unresolved.map { "#   " + $0 }
        }
        return header.joined(separator: "\n") + "\n"
            + (try NanosManifestSyntax.write(.tuple(rootTuple), what: "the manifest")) + "\n"
    }

    /// A generated file's text on one comment line: newlines as `\n`.
    static func commentQuoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
