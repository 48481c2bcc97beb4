import Foundation

/// The modules of one kernel release (`lib/modules/<release>`): which exist, which are built in, and
/// what each needs loaded first (from its `.modinfo`, which is what depmod reads too; Debian packages
/// ship no modules.dep, it is made at install time).
public struct ModuleTree {
    public let directory: String
    /// By canonical name (`-` written as `_`): path relative to `directory`.
    public private(set) var modules: [String: String] = [:]
    public private(set) var builtIn: Set<String> = []

    public static func canonical(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }

    /// A bare module name (`nvidia-uvm`, `virtio_balloon`): no path, no `.ko`.
    public static func isModuleName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    public init(directory: String) throws {
        self.directory = directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError(
                "kernel modules directory \(directory) does not exist",
                hint: "pass the kernel's lib/modules/<release> directory with --kernel-modules DIR")
        }
        // readdir, not FileManager's enumerator: a Debian kernel has over 4,000 modules, and the
        // enumerator's per-entry URL and NSString work cost a build 0.15 s.
        try Self.walk(directory, relative: "") { relative in
            let file = relative.split(separator: "/").last.map(String.init) ?? relative
            modules[Self.canonical(String(file.dropLast(3)))] = relative
        }
        if let text = try? String(contentsOfFile: directory + "/modules.builtin", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                var file = line.split(separator: "/").last.map(String.init) ?? String(line)
                if let dot = file.lastIndex(of: "."), dot != file.startIndex { file = String(file[..<dot]) }
                builtIn.insert(Self.canonical(file))
            }
        }
    }

    /// Calls `module` with the path (relative to `root`) of every `.ko` below `relative`, in name
    /// order; symbolic links to directories (a tree's `build` and `source`) are not followed.
    private static func walk(_ root: String, relative: String, module: (String) throws -> Void) throws {
        let directory = relative.isEmpty ? root : root + "/" + relative
        guard let handle = opendir(directory) else {
            throw SystemError("cannot read the kernel modules directory", path: directory, errno: errno)
        }
        var entries: [(name: String, type: UInt8)] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { entries.append((name, entry.pointee.d_type)) }
        }
        closedir(handle)
        for (name, type) in entries.sorted(by: { $0.name < $1.name }) {
            let path = relative.isEmpty ? name : relative + "/" + name
            var isDirectory = type == UInt8(DT_DIR)
            if type == UInt8(DT_UNKNOWN) {
                var info = stat()
                isDirectory = lstat(root + "/" + path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            }
            if isDirectory {
                try walk(root, relative: path, module: module)
            } else if name.hasSuffix(".ko") {
                try module(path)
            } else if name.hasSuffix(".ko.xz") || name.hasSuffix(".ko.zst") || name.hasSuffix(".ko.gz") {
                throw UnsupportedError(
                    "\(root)/\(path) is compressed; gvlt ships modules uncompressed and does not decompress them yet",
                    hint: "use a kernel built with CONFIG_MODULE_COMPRESS_NONE (Debian's are)")
            }
        }
    }

    /// The vermagic every module of this kernel carries, read from one of them (the string is the
    /// same for all). Nil when the tree has no modules.
    public func vermagic() throws -> String? {
        for name in modules.keys.sorted() {
            if let vermagic = try ModuleInfo(module: path(of: name)!).vermagic { return vermagic }
        }
        return nil
    }

    public func path(of module: String) -> String? {
        modules[Self.canonical(module)].map { directory + "/" + $0 }
    }

    /// The module that provides `name`: the module of that name, or, for an alias such as `crc32c`,
    /// a module whose `.modinfo` declares it (the generic implementation first). Nil when built in
    /// or not found; soft dependencies are optional.
    func provider(of name: String) throws -> String? {
        // Crypto soft dependencies name the algorithm (`crypto-crc32c`); its modules are named after it.
        let base = name.hasPrefix("crypto-") ? String(name.dropFirst("crypto-".count)) : name
        let wanted = Self.canonical(base)
        if builtIn.contains(wanted) { return nil }
        if modules[wanted] != nil { return wanted }
        let candidates = modules.keys.filter { $0.hasPrefix(wanted + "_") }.sorted { a, b in
            (a.hasSuffix("_generic") ? 0 : 1, a) < (b.hasSuffix("_generic") ? 0 : 1, b)
        }
        for candidate in candidates {
            let aliases = try ModuleInfo(module: path(of: candidate)!).values("alias")
            if aliases.contains(name) || aliases.contains("crypto-" + base) { return candidate }
        }
        return nil
    }

    /// `modules` and everything they depend on, dependencies first; built-in modules are left out.
    /// The order is deterministic: a depth-first walk in the order given, dependencies sorted by name.
    public func closure(of wanted: [String]) throws -> [String] {
        var ordered: [String] = []
        var done = Set<String>()
        var visiting = Set<String>()
        func visit(_ name: String, neededBy parent: String?) throws {
            let module = Self.canonical(name)
            if done.contains(module) || builtIn.contains(module) { return }
            guard let path = path(of: module) else {
                throw InputError(
                    "kernel module \(module)\(parent.map { " (needed by \($0))" } ?? "") is not in \(directory)",
                    hint: "the modules tree does not match the kernel; pass the matching --kernel-modules DIR")
            }
            guard visiting.insert(module).inserted else {
                throw InputError("kernel modules depend on each other in a cycle through \(module)")
            }
            let info = try ModuleInfo(module: path)
            for dependency in info.dependencies.sorted() {
                try visit(dependency, neededBy: module)
            }
            // Soft dependencies are requested by the module at run time (ext4 asks for crc32c when
            // it mounts); with no module loader in the guest they must be loaded beforehand.
            for soft in info.softPreDependencies.sorted() {
                if let provider = try provider(of: soft), !done.contains(provider), provider != module {
                    try visit(provider, neededBy: module)
                }
            }
            visiting.remove(module)
            done.insert(module)
            ordered.append(module)
        }
        for name in wanted { try visit(name, neededBy: nil) }
        return ordered
    }
}
