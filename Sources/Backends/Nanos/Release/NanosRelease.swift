import Core
import Foundation

/// Where the Nanos boot loader, kernel and klibs come from: a release directory as ops keeps them
/// (`~/.ops/<version>/boot.img`, `kernel.img`, `klibs/`), or files named one by one.
public struct NanosRelease: Sendable {
    public var boot: String
    public var kernel: String
    public var klibDirectory: String?
    /// The release version, when known (NANOS_VERSION in the image's environment).
    public var version: String?

    public struct Choice: Sendable {
        public var nanosDirectory: String?
        public var nanosVersion: String?
        public var boot: String?
        public var kernel: String?
        public init(
            nanosDirectory: String? = nil, nanosVersion: String? = nil, boot: String? = nil, kernel: String? = nil
        ) {
            self.nanosDirectory = nanosDirectory
            self.nanosVersion = nanosVersion
            self.boot = boot
            self.kernel = kernel
        }
    }

    /// ops' home: `$OPS_HOME`, else `~/.ops`.
    public static func opsHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["OPS_HOME"], !home.isEmpty { return home }
        return (environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()) + "/.ops"
    }

    /// Flags win over the manifest's Boot/Kernel/NanosVersion; then `~/.ops/latest.txt`, as ops does.
    public static func locate(
        _ choice: Choice, manifest: OpsManifest,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> NanosRelease {
        var directory: String?
        var version: String?
        var how = ""
        if let given = choice.nanosDirectory {
            directory = given
            how = "--nanos-dir"
        } else if let wanted = choice.nanosVersion ?? manifest.nanosVersion {
            directory = opsHome(environment: environment) + "/" + wanted
            version = wanted
            how = choice.nanosVersion != nil ? "--nanos-version \(wanted)" : "NanosVersion \(wanted) in the manifest"
        } else {
            let latest = opsHome(environment: environment) + "/latest.txt"
            if let text = try? String(contentsOfFile: latest, encoding: .utf8) {
                let wanted = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !wanted.isEmpty {
                    directory = opsHome(environment: environment) + "/" + wanted
                    version = wanted
                    how = "\(latest)"
                }
            }
        }
        if let directory, version == nil {
            // ops' release directories are named after their version.
            let name = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
            if name.first?.isNumber == true { version = name }
        }
        func pick(_ flag: String?, _ manifestValue: String?, _ file: String, _ what: String) throws -> String {
            if let flag { return try check(flag, what: what, from: "--\(what)") }
            if let manifestValue {
                let path = manifestValue.hasPrefix("/") ? manifestValue : manifest.directory + "/" + manifestValue
                return try check(path, what: what, from: "\(what == "boot" ? "Boot" : "Kernel") in the manifest")
            }
            guard let directory else {
                throw InputError(
                    "no Nanos \(what == "boot" ? "boot loader" : "kernel") given, and no release found: \(opsHome(environment: environment))/latest.txt does not exist",
                    hint: NanosRelease.howToGetOne)
            }
            let path = directory + "/" + file
            guard FileManager.default.fileExists(atPath: path) else {
                throw InputError(
                    "no Nanos \(what == "boot" ? "boot loader" : "kernel"): \(path) does not exist (the release directory comes from \(how))",
                    hint: NanosRelease.howToGetOne)
            }
            return path
        }
        let boot = try pick(choice.boot, manifest.boot, "boot.img", "boot")
        let kernel = try pick(choice.kernel, manifest.kernel, "kernel.img", "kernel")
        var klibs: String?
        if let given = manifest.klibDir {
            klibs = given.hasPrefix("/") ? given : manifest.directory + "/" + given
        } else if let directory {
            klibs = directory + "/klibs"
        }
        return NanosRelease(boot: boot, kernel: kernel, klibDirectory: klibs, version: version)
    }

    static let howToGetOne = """
        pass --nanos-dir DIR (a Nanos release directory with boot.img, kernel.img and klibs/), or --boot FILE and --kernel FILE. \
        ops keeps releases in ~/.ops/<version>/; one can be fetched elsewhere from https://storage.googleapis.com/nanos/release/<version>/nanos-release-linux-<version>.tar.gz and unpacked
        """

    static func check(_ path: String, what: String, from: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw InputError("Nanos \(what) file \(path) (from \(from)) does not exist", hint: howToGetOne)
        }
        return path
    }
}

/// boot.img: 512 bytes of stage1 (with the region record at 0x1AA naming stage2's length), then stage2.
public struct NanosBootImage {
    public var bytes: [UInt8]
    public var stage2Length: Int { bytes.count - 512 }

    public init(path: String) throws {
        let file = try SharedFile.openRegular(path, what: "Nanos boot image", followSymlinks: true)
        guard file.size >= 1024, file.size <= 64 << 10, file.size % 512 == 0 else {
            throw InputError(
                "Nanos boot image \(path) is \(file.size) bytes; a boot.img is stage1 (512 bytes) plus stage2, a multiple of 512 and under 64 KiB",
                hint: "use the boot.img of a Nanos release")
        }
        var bytes = [UInt8](repeating: 0, count: Int(file.size))
        _ = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        guard let table = NanosPartitionTable(sector: Array(bytes[0..<512])), let length = table.stage2Length else {
            throw InputError(
                "\(path) is not a Nanos boot image: its first sector has no 55 AA signature or no region record (type 12) at 0x1AA",
                hint: "use the boot.img of a Nanos release")
        }
        guard length == UInt64(bytes.count - 512) else {
            throw InputError(
                "\(path): its region record says stage2 is \(length) bytes, but \(bytes.count - 512) follow stage1",
                hint: "the boot.img is truncated or was padded; use the release's own file")
        }
        self.bytes = bytes
    }
}
