import Foundation

/// What containers-registries.conf(5) says about pulling: per-prefix locations, mirrors, insecure and
/// blocked registries. Read from `$CONTAINERS_REGISTRIES_CONF` alone when set; otherwise from
/// `~/.config/containers/registries.conf` (else `/etc/containers/registries.conf`), then the drop-ins
/// in `/etc/containers/registries.conf.d/` and `~/.config/containers/registries.conf.d/`, later
/// files replacing the entries of earlier ones with the same prefix. Both the v2 `[[registry]]`
/// format and the v1 `[registries.insecure]`/`[registries.block]` lists are read.
public struct RegistriesConf: Sendable {
    public enum MirrorUse: String, Sendable {
        case all
        case digestOnly = "digest-only"
        case tagOnly = "tag-only"
    }

    public struct Mirror: Sendable, Equatable {
        public var location: String
        public var insecure: Bool
        public var use: MirrorUse
    }

    public struct Registry: Sendable, Equatable {
        /// `host[:port][/namespace…]` or `*.domain`.
        public var prefix: String
        /// Where the prefix's images really are; the prefix itself when empty.
        public var location: String
        public var insecure: Bool
        public var blocked: Bool
        public var mirrors: [Mirror]
        /// The file that says so, for messages.
        public var file: String
    }

    /// One place to try, in order: the mirrors first, then the registry's location.
    public struct PullSource: Sendable, Equatable {
        public var reference: ImageReference
        public var insecure: Bool
        public var isMirror: Bool
    }

    public var registries: [Registry] = []
    /// The files read, for messages and `gvlt doctor`.
    public var files: [String] = []

    public init(registries: [Registry] = [], files: [String] = []) {
        self.registries = registries
        self.files = files
    }

    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> RegistriesConf
    {
        var paths: [String] = []
        if let explicit = environment["CONTAINERS_REGISTRIES_CONF"], !explicit.isEmpty {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw InputError(
                    "$CONTAINERS_REGISTRIES_CONF names \(explicit), which does not exist",
                    hint: "point it at a registries.conf file, or unset it")
            }
            paths = [explicit]
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            let user =
                (environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config")
                + "/containers"
            let main =
                FileManager.default.fileExists(atPath: user + "/registries.conf")
                ? user + "/registries.conf" : "/etc/containers/registries.conf"
            if FileManager.default.fileExists(atPath: main) { paths.append(main) }
            for directory in ["/etc/containers/registries.conf.d", user + "/registries.conf.d"] {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                paths += names.filter { $0.hasSuffix(".conf") }.sorted().map { directory + "/" + $0 }
            }
        }
        var conf = RegistriesConf()
        for path in paths {
            let text = try ConfigFile.text(
                path, what: "registries.conf \(path)",
                hint: "fix it (containers-registries.conf(5)) or set CONTAINERS_REGISTRIES_CONF")
            try conf.merge(try parse(text, file: path))
        }
        return conf
    }

    mutating func merge(_ other: RegistriesConf) throws {
        for entry in other.registries {
            registries.removeAll { $0.prefix == entry.prefix }
            registries.append(entry)
        }
        files += other.files
    }

    public static func parse(_ text: String, file: String) throws -> RegistriesConf {
        let document: JSONValue
        do {
            document = try TOMLReader.parse(text)
        } catch let error as TOMLReader.SyntaxError {
            throw InputError("registries.conf \(file): \(error)", hint: "fix the TOML (containers-registries.conf(5))")
        }
        guard case .object(let top) = document else { return RegistriesConf(files: [file]) }
        var conf = RegistriesConf(files: [file])
        // v1: [registries.insecure] / [registries.block] lists of hosts.
        if case .object(let v1)? = top["registries"] {
            for (kind, insecure, blocked) in [("insecure", true, false), ("block", false, true)] {
                guard case .object(let table)? = v1[kind] else { continue }
                let hosts =
                    try StrictObject(.object(table), location: "\(file): registries.\(kind)", allowed: ["registries"])
                    .strings("registries") ?? []
                for host in hosts {
                    if let index = conf.registries.firstIndex(where: { $0.prefix == host }) {
                        conf.registries[index].insecure = conf.registries[index].insecure || insecure
                        conf.registries[index].blocked = conf.registries[index].blocked || blocked
                    } else {
                        conf.registries.append(
                            Registry(
                                prefix: host, location: host, insecure: insecure, blocked: blocked, mirrors: [],
                                file: file))
                    }
                }
            }
        }
        let list: [JSONValue]
        switch top["registry"] {
        case nil: list = []
        case .array(let items)?: list = items
        default: throw InputError("registries.conf \(file): `registry` must be written [[registry]]")
        }
        for (index, item) in list.enumerated() {
            let where_ = "\(file): [[registry]] #\(index + 1)"
            let entry = try StrictObject(
                item, location: where_,
                allowed: [
                    "prefix", "location", "insecure", "blocked", "mirror", "mirror-by-digest-only", "pull-from-mirror"
                ])
            let location = try entry.string("location") ?? ""
            let prefix = try entry.string("prefix").flatMap { $0.isEmpty ? nil : $0 } ?? location
            guard !prefix.isEmpty else {
                throw InputError("\(where_) has neither `prefix` nor `location`", hint: "give at least one")
            }
            if prefix.hasPrefix("*.") && !location.isEmpty {
                throw InputError(
                    "\(where_): a wildcard prefix (`\(prefix)`) cannot have a location", hint: "drop `location`")
            }
            let byDigestOnly = try entry.bool("mirror-by-digest-only")
            var mirrors: [Mirror] = []
            let mirrorItems: [JSONValue]
            switch entry.fields["mirror"] {
            case nil: mirrorItems = []
            case .array(let items)?: mirrorItems = items
            default: throw InputError("\(where_): `mirror` must be written [[registry.mirror]]")
            }
            for (number, mirrorItem) in mirrorItems.enumerated() {
                let mirror = try StrictObject(
                    mirrorItem, location: "\(where_) mirror #\(number + 1)",
                    allowed: ["location", "insecure", "pull-from-mirror"])
                if byDigestOnly != nil && mirror.fields["pull-from-mirror"] != nil {
                    throw InputError(
                        "\(mirror.location): pull-from-mirror cannot be combined with the registry's mirror-by-digest-only",
                        hint: "keep pull-from-mirror, as containers-registries.conf(5) asks")
                }
                let use = try mirror.string("pull-from-mirror").map { text -> MirrorUse in
                    guard let use = MirrorUse(rawValue: text) else {
                        throw InputError(
                            "\(mirror.location): pull-from-mirror `\(text)` is not all, digest-only or tag-only")
                    }
                    return use
                }
                mirrors.append(
                    Mirror(
                        location: try mirror.string("location", required: true)!,
                        insecure: try mirror.bool("insecure") ?? false,
                        use: use ?? (byDigestOnly == true ? .digestOnly : .all)))
            }
            let registry = Registry(
                prefix: prefix, location: location.isEmpty ? prefix : location,
                insecure: try entry.bool("insecure") ?? false, blocked: try entry.bool("blocked") ?? false,
                mirrors: mirrors, file: file)
            conf.registries.removeAll { $0.prefix == prefix }
            conf.registries.append(registry)
        }
        return conf
    }

    /// The entry whose prefix matches `reference` most closely: an exact `host/path` prefix at a
    /// component boundary, or a `*.domain` wildcard on the host.
    public func registry(for reference: ImageReference) -> Registry? {
        let name = reference.name
        var best: (Registry, Int)?
        for entry in registries {
            let length: Int
            if entry.prefix.hasPrefix("*.") {
                let domain = entry.prefix.dropFirst(1)
                guard Self.hostWithoutPort(reference.registry).hasSuffix(domain) else { continue }
                length = domain.count
            } else {
                guard name == entry.prefix || name.hasPrefix(entry.prefix + "/") || reference.registry == entry.prefix
                else { continue }
                length = entry.prefix.count
            }
            if best.map({ length > $0.1 }) ?? true { best = (entry, length) }
        }
        return best?.0
    }

    /// Where to pull `reference` from, in order; an error when the registry is blocked.
    public func pullSources(for reference: ImageReference) throws -> [PullSource] {
        guard let entry = registry(for: reference) else {
            return [PullSource(reference: reference, insecure: false, isMirror: false)]
        }
        if entry.blocked {
            throw InputError(
                "\(reference.name) is blocked by \(entry.file) (prefix `\(entry.prefix)`)",
                hint: "remove `blocked = true` there, or pull from another registry")
        }
        func relocate(_ location: String) throws -> ImageReference {
            // A wildcard matches the whole host (port included), which the location replaces; the
            // registry's own location of a wildcard entry is the reference itself.
            let matched = entry.prefix.hasPrefix("*.") ? reference.registry.count : entry.prefix.count
            if entry.prefix.hasPrefix("*.") && location == entry.prefix { return reference }
            // The prefix matched at a component boundary, so the rest is empty or starts with `/`.
            let rewritten = location + reference.name.dropFirst(matched)
            let parts = rewritten.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2,
                parts[1].split(separator: "/", omittingEmptySubsequences: false).allSatisfy(
                    ImageReference.isPathComponent)
            else {
                throw InputError(
                    "\(entry.file): location `\(location)` (prefix `\(entry.prefix)`) makes `\(rewritten)`, which is not an image name",
                    hint: "fix the location in registries.conf")
            }
            try ImageReference.checkRegistry(parts[0]) { why, _ in
                InputError("\(entry.file): location `\(location)`: \(why)", hint: "fix the location in registries.conf")
            }
            return reference.relocated(registry: parts[0], repository: parts[1])
        }
        var sources: [PullSource] = []
        for mirror in entry.mirrors {
            switch mirror.use {
            case .digestOnly where reference.digest == nil: continue
            case .tagOnly where reference.digest != nil: continue
            default: break
            }
            sources.append(
                PullSource(reference: try relocate(mirror.location), insecure: mirror.insecure, isMirror: true))
        }
        sources.append(PullSource(reference: try relocate(entry.location), insecure: entry.insecure, isMirror: false))
        return sources
    }

    static func hostWithoutPort(_ registry: String) -> Substring {
        guard !registry.hasPrefix("["), let colon = registry.lastIndex(of: ":") else { return Substring(registry) }
        return registry[..<colon]
    }
}
