import Core
import Foundation

/// A kernel ready to put in an image: its image file, its config, its release and its modules.
public struct KernelBundle: Sendable {
    public var release: String
    public var image: String
    public var config: KernelConfig
    /// `lib/modules/<release>`, when the kernel has loadable modules.
    public var modulesDirectory: String?
    /// For messages and reports: "debian linux-image-6.1.0-56-amd64 6.1.192-2".
    public var origin: String
    /// The Debian package and version, for kernels that came from one (accelerators fetch the
    /// matching headers).
    public var debianPackage: (name: String, version: String)?

    public func moduleTree() throws -> ModuleTree? {
        try modulesDirectory.map(ModuleTree.init(directory:))
    }
}

/// `--kernel debian[:VERSION]`, `file:PATH` or `source:DIR`, parsed.
public enum KernelChoice: Equatable, Sendable {
    case debian(version: String?)
    case file(path: String, modules: String?, config: String?)
    /// `config` is the base config the runtime's fragment is merged into (default: x86_64_defconfig).
    case source(directory: String, config: String?)
    /// gvltctl's `--kernel VERSION` / `--kernel-url URL`: a git checkout, then built as `source:`.
    case git(url: String, ref: String?, config: String?)

    /// `url` is `--kernel-url`. gvltctl's versions map onto the providers: `latest` is Debian's
    /// current kernel unless a URL is given (then that repository's default branch), and any other
    /// bare version (`v6.10`) is that tag of the URL (default: torvalds/linux), built from source.
    public static func parse(_ text: String, modules: String?, config: String?, url: String? = nil) throws
        -> KernelChoice
    {
        let isProvider = text == "debian" || ["debian:", "file:", "source:"].contains { text.hasPrefix($0) }
        if let url, isProvider {
            throw InputError(
                "--kernel-url does not go with --kernel \(text)",
                hint: "give a version with it (--kernel v6.10 --kernel-url \(url)), or drop it")
        }
        if !isProvider {
            if modules != nil {
                throw InputError(
                    "--kernel-modules does not go with --kernel \(text): the modules come from the build",
                    hint: "drop --kernel-modules, or pass a built kernel with --kernel file:PATH")
            }
            if text == "latest" { return url.map { .git(url: $0, ref: nil, config: config) } ?? .debian(version: nil) }
            // Without --kernel-url only a version (v6.10, 6.10-rc1) is taken for a tag, so that a
            // mistyped provider is an error rather than a clone; with it, any branch or tag.
            let versionLike = text.drop { $0 == "v" }.first?.isNumber == true
            guard text.first.map({ $0.isLetter || $0.isNumber }) == true, !text.contains(" "), url != nil || versionLike
            else {
                throw InputError(
                    "--kernel `\(text)` is not a kernel provider or version",
                    hint:
                        "use debian, debian:VERSION, file:PATH (with --kernel-modules/--kernel-config), source:DIR, or a git tag such as v6.10"
                )
            }
            return .git(url: url ?? GitKernelSource.defaultURL, ref: text, config: config)
        }
        if text == "debian" { return .debian(version: nil) }
        if text.hasPrefix("debian:") { return .debian(version: String(text.dropFirst("debian:".count))) }
        if text.hasPrefix("file:") {
            return .file(path: String(text.dropFirst("file:".count)), modules: modules, config: config)
        }
        if text.hasPrefix("source:") {
            if modules != nil {
                throw InputError(
                    "--kernel-modules does not go with --kernel \(text): the modules come from the build",
                    hint: "drop --kernel-modules, or pass a built kernel with --kernel file:PATH")
            }
            return .source(directory: String(text.dropFirst("source:".count)), config: config)
        }
        throw InputError("--kernel `\(text)` is not a kernel provider")
    }
}

/// The `debian` provider: Debian's `linux-image-<flavour>` from apt, downloaded (never installed) and
/// unpacked into the cache once; later builds use the cache, offline.
public struct DebianKernelProvider {
    public var cache: CacheDirectory
    public var flavour: String
    public var version: String?
    public var progress: ProgressReporter

    public init(
        cache: CacheDirectory, flavour: String = "amd64", version: String? = nil,
        progress: ProgressReporter = ProgressReporter(mode: .quiet)
    ) {
        self.cache = cache
        self.flavour = flavour
        self.version = version
        self.progress = progress
    }

    static let cacheNamespace = "kernels/debian"

    /// The exact package and version apt would give (`linux-image-6.1.0-56-amd64`, `6.1.192-2`), or nil
    /// when apt cannot say (no apt, no package lists). Asking apt takes about a second, so the answer
    /// is kept in the cache until apt's package lists change (`apt-get update`).
    func resolve() throws -> (package: String, version: String)? {
        let signature = Self.aptListsSignature()
        let key = "\(Self.cacheNamespace)/resolved-\(flavour)\(version.map { "-" + $0 } ?? "")"
        let record = try? cache.entryPath(key.replacingOccurrences(of: ":", with: "_")) + ".json"
        if let signature, let record, let saved = CacheDirectory.readRecord([String: String].self, at: record),
            saved["signature"] == signature, let package = saved["package"], let version = saved["version"]
        {
            return (package, version)
        }
        guard let resolved = try resolveWithApt() else { return nil }
        if let signature, let record {
            CacheDirectory.writeRecord(
                ["signature": signature, "package": resolved.package, "version": resolved.version], to: record)
        }
        return resolved
    }

    /// Names, sizes and times of apt's package lists: they change exactly when `apt-get update` does.
    static func aptListsSignature(directory: String = "/var/lib/apt/lists") -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var parts: [String] = []
        for name in names.sorted() where name.contains("Packages") || name.hasSuffix("Release") {
            var st = stat()
            guard stat(directory + "/" + name, &st) == 0 else { continue }
            parts.append("\(name):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
        }
        return parts.isEmpty ? nil : SHA256Hex.of(Array(parts.joined(separator: "\n").utf8))
    }

    private func resolveWithApt() throws -> (package: String, version: String)? {
        if let version {
            // `debian:6.1.0-56` names an ABI (package linux-image-6.1.0-56-amd64); `debian:6.1.192-2` a
            // version of the linux-image-amd64 metapackage.
            if let direct = try DebianPackage.show("linux-image-\(version)-\(flavour)"), let v = direct["Version"] {
                return ("linux-image-\(version)-\(flavour)", v)
            }
            return try fromMetapackage("linux-image-\(flavour)=\(version)")
        }
        return try fromMetapackage("linux-image-\(flavour)")
    }

    private func fromMetapackage(_ spec: String) throws -> (String, String)? {
        guard let meta = try DebianPackage.show(spec) else { return nil }
        let prefix = "linux-image-"
        guard
            let dependency = (meta["Depends"] ?? "").split(separator: ",")
                .map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { $0.hasPrefix(prefix) })
        else {
            throw InputError("\(spec) depends on no linux-image package; cannot tell which kernel it means")
        }
        let name = String(dependency.split(separator: " ").first!)
        guard let real = try DebianPackage.show(name), let version = real["Version"] else {
            throw InputError(
                "apt knows \(spec) but not the kernel package \(name) it depends on", hint: "run `apt-get update`")
        }
        return (name, version)
    }

    static func cacheKey(package: String, version: String) -> String {
        "\(cacheNamespace)/\(package)_\(CacheDirectory.keyComponent(version))"
    }

    public func bundle() throws -> KernelBundle {
        let resolved: (package: String, version: String)
        if let found = try? resolve() {
            resolved = found
        } else if let cached = try newestCachedEntry() {
            // Offline: apt cannot answer, but an earlier build left a kernel in the cache.
            var bundle = try Self.bundle(
                at: cached.path, origin: "debian \(cached.name) (cached; apt could not resolve linux-image-\(flavour))")
            // Entries are `<package>_<version>`; versions with characters a key cannot hold are not
            // recoverable, and the package is then unknown.
            let parts = cached.name.split(separator: "_")
            if parts.count == 2 { bundle.debianPackage = (String(parts[0]), String(parts[1])) }
            return bundle
        } else {
            throw InputError(
                "cannot resolve linux-image-\(flavour)\(version.map { " \($0)" } ?? "") through apt, and no Debian kernel is cached",
                hint: "run `apt-get update` (Debian's main component), or pass --kernel file:PATH")
        }
        let key = Self.cacheKey(package: resolved.package, version: resolved.version)
        let path = try cache.entry(key) { staging in
            try progress.step("downloading \(resolved.package) \(resolved.version)") {
                let deb = try DebianPackage.download(
                    resolved.package, version: resolved.version, into: staging + "/download")
                try DebianPackage.extract(deb, into: staging) { path in
                    path.hasPrefix("boot/vmlinuz-") || path.hasPrefix("boot/config-") || path.hasPrefix("lib/modules/")
                        || path.hasPrefix("usr/lib/modules/")
                }
                try FileManager.default.removeItem(atPath: staging + "/download")
            }
        }
        var bundle = try Self.bundle(at: path, origin: "debian \(resolved.package) \(resolved.version)")
        bundle.debianPackage = (resolved.package, resolved.version)
        return bundle
    }

    private func newestCachedEntry() throws -> (name: String, path: String)? {
        let directory = cache.root + "/entries/" + Self.cacheNamespace
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // Entries are `linux-image-<abi>-<flavour>_<version>`; the ABI is digits, dots and dashes, so
        // `…-cloud-amd64` is not taken for flavour `amd64`.
        let matching = names.filter { name in
            guard let underscore = name.firstIndex(of: "_"), name.hasPrefix("linux-image-") else { return false }
            let package = name[..<underscore]
            guard package.hasSuffix("-\(flavour)") else { return false }
            let abi = package.dropFirst("linux-image-".count).dropLast(flavour.count + 1)
            return !abi.isEmpty && abi.allSatisfy { $0.isNumber || $0 == "." || $0 == "-" }
                && (version.map { name.contains($0) } ?? true)
        }
        let newest = matching.max { a, b in
            let ta =
                (try? FileManager.default.attributesOfItem(atPath: directory + "/" + a)[.modificationDate] as? Date)
                ?? .distantPast
            let tb =
                (try? FileManager.default.attributesOfItem(atPath: directory + "/" + b)[.modificationDate] as? Date)
                ?? .distantPast
            return ta < tb
        }
        return newest.map { ($0, directory + "/" + $0) }
    }

    /// A bundle from an unpacked kernel package: `boot/vmlinuz-R`, `boot/config-R`, `lib/modules/R`.
    static func bundle(at root: String, origin: String) throws -> KernelBundle {
        let boot = (try? FileManager.default.contentsOfDirectory(atPath: root + "/boot")) ?? []
        guard let image = boot.first(where: { $0.hasPrefix("vmlinuz-") }) else {
            throw InputError(
                "\(root) holds no boot/vmlinuz-*", hint: "remove the damaged cache entry \(root) and build again")
        }
        let release = String(image.dropFirst("vmlinuz-".count))
        let modules = ["lib/modules/\(release)", "usr/lib/modules/\(release)"].map { root + "/" + $0 }
            .first { FileManager.default.fileExists(atPath: $0) }
        return KernelBundle(
            release: release, image: root + "/boot/" + image,
            config: try KernelConfig(path: root + "/boot/config-\(release)"),
            modulesDirectory: modules, origin: origin)
    }
}
