import Core

/// Checks a kernel against the runtime's needs before anything is built, naming every missing
/// `CONFIG_` option at once.
public enum KernelValidator {
    public struct Missing: UserFacingError {
        public var kernel: String
        public var problems: [(option: String, why: String)]
        public var message: String {
            "kernel \(kernel) cannot run a Firestarter image:\n"
                + problems.map { "    \($0.option): \($0.why)" }.joined(separator: "\n")
        }
        public var hint: String? {
            "use a kernel with these options built in (=y) or as modules (=m) in its modules tree, e.g. Debian's linux-image-amd64 (--kernel debian)"
        }
    }

    /// The modules that must be loaded from an initramfs (in load order), or an empty list when
    /// everything is built in.
    public static func validate(_ config: KernelConfig, modules: ModuleTree?, root: RootFilesystem, kernel: String)
        throws -> [String]
    {
        var problems: [(String, String)] = []
        var needed: [String] = []
        for requirement in KernelRequirement.requirements(for: root) {
            let value = config[requirement.option]
            switch (requirement.kind, value) {
            case (_, .builtIn?):
                continue
            case (.builtInOrModule(let module), .module?):
                if modules?.path(of: module) != nil {
                    needed.append(module)
                } else {
                    problems.append(
                        (
                            requirement.option,
                            "=m but module \(module) is not in the modules tree (\(requirement.purpose))"
                        ))
                }
            case (.builtIn, .module?):
                problems.append((requirement.option, "is a module but must be built in (=y) (\(requirement.purpose))"))
            default:
                problems.append((requirement.option, "is not set (\(requirement.purpose))"))
            }
        }
        if !needed.isEmpty {
            for option in ["CONFIG_MODULES", "CONFIG_BLK_DEV_INITRD"] where config[option] != .builtIn {
                problems.append((option, "is not set, but drivers are modules and must be loaded from an initramfs"))
            }
        }
        guard problems.isEmpty else { throw Missing(kernel: kernel, problems: problems) }
        return try modules?.closure(of: needed) ?? []
    }
}
