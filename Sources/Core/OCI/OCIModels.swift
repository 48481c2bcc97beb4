/// The OCI and Docker v2 documents we read. Only the fields the flattener needs are decoded; the rest
/// of a document is ignored, as the specs require of consumers.
public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

    public static let indexTypes: Set<String> = [ociIndex, dockerManifestList]
    public static let manifestTypes: Set<String> = [ociManifest, dockerManifest]

    /// Layer media types and the compression they declare. The bytes are sniffed too.
    public static let layerTypes: [String: LayerCompression] = [
        "application/vnd.oci.image.layer.v1.tar": .none,
        "application/vnd.oci.image.layer.v1.tar+gzip": .gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd": .zstd,
        "application/vnd.oci.image.layer.nondistributable.v1.tar": .none,
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": .gzip,
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": .zstd,
        "application/vnd.docker.image.rootfs.diff.tar": .none,
        "application/vnd.docker.image.rootfs.diff.tar.gzip": .gzip,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": .gzip
    ]
}

public enum LayerCompression: String, Sendable {
    case none, gzip, zstd

    /// What the first bytes say. Unknown magic is taken as an uncompressed tar; the tar reader then
    /// decides. Compressions we cannot read are named, so the error is clear.
    public static func sniff(_ bytes: [UInt8]) -> Result<LayerCompression, UnsupportedError> {
        if bytes.starts(with: [0x1f, 0x8b]) { return .success(.gzip) }
        if bytes.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return .success(.zstd) }
        if bytes.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .failure(unsupported("xz")) }
        if bytes.starts(with: [0x42, 0x5a, 0x68]) { return .failure(unsupported("bzip2")) }
        return .success(.none)
    }

    private static func unsupported(_ name: String) -> UnsupportedError {
        UnsupportedError(
            "\(name)-compressed layers are not supported",
            hint: "layers must be uncompressed tar, gzip or zstd, as the OCI spec allows")
    }
}

public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// `linux/amd64` or `linux/arm64/v8`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/").map(String.init)
        guard parts.count == 2 || parts.count == 3, !parts.contains(where: \.isEmpty) else {
            throw InputError(
                "--platform `\(text)` is not OS/ARCH[/VARIANT]", hint: "for example --platform linux/amd64")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    public static let linuxAMD64 = Platform(os: "linux", architecture: "amd64")

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// A wanted platform without a variant matches any variant.
    public func matches(_ other: Platform) -> Bool {
        os == other.os && architecture == other.architecture && (variant == nil || variant == other.variant)
    }
}

public struct Descriptor: Codable, Sendable {
    public var mediaType: String?
    public var digest: String
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?

    public init(
        mediaType: String?, digest: String, size: Int64, platform: Platform? = nil, annotations: [String: String]? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }
}

public struct ImageIndex: Codable, Sendable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var manifests: [Descriptor]

    public init(schemaVersion: Int?, mediaType: String?, manifests: [Descriptor]) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.manifests = manifests
    }
}

public struct ImageManifest: Codable, Sendable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
}

public struct ImageConfig: Codable, Sendable {
    public struct RootFS: Codable, Sendable {
        public var type: String
        public var diff_ids: [String]
    }

    public struct Config: Codable, Sendable {
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Env: [String]?
        public var WorkingDir: String?
        public var User: String?
    }

    public var architecture: String?
    public var os: String?
    public var variant: String?
    public var config: Config?
    public var rootfs: RootFS
    public var created: String?

    /// Refuses a config whose os/architecture is not the wanted platform (`where` names the image).
    public func check(platform wanted: Platform, where location: String) throws {
        guard let os, let architecture else { return }
        let actual = Platform(os: os, architecture: architecture, variant: variant)
        guard wanted.matches(actual) else {
            throw InputError(
                "\(location): the image is \(actual), not \(wanted)",
                hint: "pass --platform \(actual) to use it anyway, or export the \(wanted) image")
        }
    }

    public var runSpec: RunSpec {
        RunSpec(
            entrypoint: config?.Entrypoint, cmd: config?.Cmd, env: config?.Env,
            workingDir: config?.WorkingDir, user: config?.User)
    }
}

/// `manifest.json` of a `docker save` archive.
public struct DockerArchiveManifestItem: Codable, Sendable {
    public var Config: String
    public var RepoTags: [String]?
    public var Layers: [String]
}
