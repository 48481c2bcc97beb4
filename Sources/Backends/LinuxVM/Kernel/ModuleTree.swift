import Core
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

    public init(directory: String) throws {
        self.directory = directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError("kernel modules directory \(directory) does not exist",
                             hint: "pass the kernel's lib/modules/<release> directory with --kernel-modules DIR")
        }
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let relative = enumerator?.nextObject() as? String {
            guard relative.hasSuffix(".ko") else {
                if relative.hasSuffix(".ko.xz") || relative.hasSuffix(".ko.zst") || relative.hasSuffix(".ko.gz") {
                    throw UnsupportedError("\(directory)/\(relative) is compressed; gvlt ships modules uncompressed and does not decompress them yet",
                                           hint: "use a kernel built with CONFIG_MODULE_COMPRESS_NONE (Debian's are)")
                }
                continue
            }
            let file = URL(fileURLWithPath: relative).deletingPathExtension().lastPathComponent
            modules[Self.canonical(file)] = relative
        }
        if let text = try? String(contentsOfFile: directory + "/modules.builtin", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let file = URL(fileURLWithPath: String(line)).deletingPathExtension().lastPathComponent
                builtIn.insert(Self.canonical(file))
            }
        }
    }

    public func path(of module: String) -> String? {
        modules[Self.canonical(module)].map { directory + "/" + $0 }
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
                throw InputError("kernel module \(module)\(parent.map { " (needed by \($0))" } ?? "") is not in \(directory)",
                                 hint: "the modules tree does not match the kernel; pass the matching --kernel-modules DIR")
            }
            guard visiting.insert(module).inserted else {
                throw InputError("kernel modules depend on each other in a cycle through \(module)")
            }
            for dependency in try ModuleInfo(module: path).dependencies.sorted() {
                try visit(dependency, neededBy: module)
            }
            visiting.remove(module)
            done.insert(module)
            ordered.append(module)
        }
        for name in wanted { try visit(name, neededBy: nil) }
        return ordered
    }
}
