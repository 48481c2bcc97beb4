import Core

/// A runtime config in MIA's schema 1.1.0, written as YAML for the guest init: the
/// config baked into images, and the worker-style config `gvlt run` hands over. Every scalar is a
/// double-quoted JSON string, which YAML reads as the same text, so no value can change meaning.
public struct RuntimeConfigFile: Equatable, Sendable {
    public struct Mount: Equatable, Sendable {
        public var source: String
        public var target: String
        public var fstype: String?
        public var flags: UInt64?
        public var data: String?

        public init(source: String, target: String, fstype: String? = nil, flags: UInt64? = nil, data: String? = nil) {
            self.source = source
            self.target = target
            self.fstype = fstype
            self.flags = flags
            self.data = data
        }
    }

    /// The 9p options the worker's shares use.
    public static let ninePOptions = "trans=virtio,version=9p2000.L"

    public struct DebugExit: Equatable, Sendable {
        public var iobase: UInt16 = 0xf4
        public var iosize: UInt16 = 4
        public var successCode: UInt32 = 3
        public init() {}
    }

    public var version = "1.1.0"
    public var command: String?
    public var args: [String]?
    public var env: [RunSpec.EnvVar] = []
    public var workingDir: String?
    public var mounts: [Mount] = []
    public var defaultMounts: Bool?
    public var kernelModules: [String] = []
    public var debugExit: DebugExit?
    public var bootcmd: [[String]] = []
    public var followConfig: String?

    public init() {}

    public static let gevulotShares: [(tag: String, target: String, readOnly: Bool)] = [
        ("gevulot-input", "/mnt/gevulot/input", true),
        ("gevulot-output", "/mnt/gevulot/output", false),
        ("gevulot-rt-config", "/mnt/gevulot/rt-config", true)
    ]
    public static let workerConfigPath = "/mnt/gevulot/rt-config/config.yaml"

    /// The config baked into an image: the container's command, args, env and working dir, the three
    /// gevulot shares, and a pointer to the worker's config.
    /// Without `gevulotRuntime` (gvltctl's `--no-gevulot-runtime`, debug only) it has neither the
    /// shares nor the pointer: the image runs what it was built with and ignores the worker.
    public static func baked(
        from spec: RunSpec, extraEnv: [RunSpec.EnvVar] = [], kernelModules: [String] = [],
        mounts: [Mount] = [], gevulotRuntime: Bool = true
    ) -> RuntimeConfigFile {
        var config = RuntimeConfigFile()
        config.command = spec.command
        config.args = spec.args
        config.env = spec.env + extraEnv
        config.workingDir = spec.workingDir
        config.mounts =
            (gevulotRuntime ? gevulotShares : []).map {
                Mount(source: $0.tag, target: $0.target, fstype: "9p", flags: $0.readOnly ? 1 : nil, data: ninePOptions)
            } + mounts
        config.kernelModules = kernelModules
        config.followConfig = gevulotRuntime ? workerConfigPath : nil
        return config
    }

    public func yaml() -> String {
        func q(_ text: String) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default:
                    // C0, DEL and C1 controls and the Unicode line/paragraph separators would be folded
                    // or refused by a YAML reader; they are written as escapes.
                    if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || scalar.value == 0x2028
                        || scalar.value == 0x2029
                    {
                        out +=
                            "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                            + String(scalar.value, radix: 16)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }
        var lines = ["version: \(q(version))"]
        if let command { lines.append("command: \(q(command))") }
        if let args { lines.append("args: [" + args.map(q).joined(separator: ", ") + "]") }
        if !env.isEmpty {
            lines.append("env:")
            for variable in env { lines.append("  - {key: \(q(variable.key)), value: \(q(variable.value))}") }
        }
        if let workingDir { lines.append("working-dir: \(q(workingDir))") }
        if !mounts.isEmpty {
            lines.append("mounts:")
            for mount in mounts {
                var fields = ["source: \(q(mount.source))", "target: \(q(mount.target))"]
                if let fstype = mount.fstype { fields.append("fstype: \(q(fstype))") }
                if let flags = mount.flags { fields.append("flags: \(flags)") }
                if let data = mount.data { fields.append("data: \(q(data))") }
                lines.append("  - {" + fields.joined(separator: ", ") + "}")
            }
        }
        if let defaultMounts { lines.append("default-mounts: \(defaultMounts)") }
        if !kernelModules.isEmpty {
            lines.append("kernel-modules: [" + kernelModules.map(q).joined(separator: ", ") + "]")
        }
        if let debugExit {
            lines.append(
                "debug-exit: {arch: \"x86\", iobase: \(debugExit.iobase), iosize: \(debugExit.iosize), success-code: \(debugExit.successCode)}"
            )
        }
        if !bootcmd.isEmpty {
            lines.append("bootcmd:")
            for command in bootcmd { lines.append("  - [" + command.map(q).joined(separator: ", ") + "]") }
        }
        if let followConfig { lines.append("follow-config: \(q(followConfig))") }
        return lines.joined(separator: "\n") + "\n"
    }
}
