import Foundation

/// One layer of a fixture image. `digestOverride`/`diffIDOverride` let tests lie in the manifest.
public struct LayerFixture {
    public var members: [TarMember]
    public var compression: Compression
    /// Replace the blob bytes after digests are computed (content/digest mismatch tests).
    public var tamper: ((Data) -> Data)?
    /// Bytes to store instead of the real compressed tar, with a digest computed over them.
    public var rawBlob: Data?
    public var digestOverride: String?
    public var diffIDOverride: String?
    public var mediaType: String?
    public var skipWritingBlob = false

    public init(_ members: [TarMember], compression: Compression = .gzip) {
        self.members = members
        self.compression = compression
    }
}

/// Writes OCI image layouts for tests: blobs, manifests, configs, index.json.
public final class OCILayoutBuilder {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/blobs/sha256", withIntermediateDirectories: true)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/oci-layout"))
    }

    @discardableResult
    public func putBlob(_ data: Data) throws -> (digest: String, size: Int) {
        let digest = TarBuilder.sha256(data)
        try data.write(to: URL(fileURLWithPath: "\(directory)/blobs/sha256/\(digest.dropFirst(7))"))
        return (digest, data.count)
    }

    public func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// Writes the layers, config and manifest; returns the manifest descriptor for an index.
    public func image(
        _ layers: [LayerFixture], architecture: String = "amd64", os: String = "linux",
        config: [String: Any] = [
            "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["PATH=/bin", "A=1"],
            "WorkingDir": "/work", "User": "1000:1000"
        ],
        tag: String? = "latest", platformInIndex: Bool = false,
        manifestMediaType: String = "application/vnd.oci.image.manifest.v1+json"
    ) throws -> [String: Any] {
        var layerDescriptors: [[String: Any]] = []
        var diffIDs: [String] = []
        for layer in layers {
            // An uncompressed raw blob is its own diff_id source; otherwise the members are.
            let plain =
                try layer.compression == .none
                ? (layer.rawBlob ?? TarBuilder.tar(layer.members)) : TarBuilder.tar(layer.members)
            var stored = try layer.rawBlob ?? TarBuilder.tar(layer.members, compression: layer.compression)
            var digest = TarBuilder.sha256(stored)
            let size = stored.count
            if let tamper = layer.tamper { stored = tamper(stored) }
            if !layer.skipWritingBlob {
                try stored.write(to: URL(fileURLWithPath: "\(directory)/blobs/sha256/\(digest.dropFirst(7))"))
            }
            if let override = layer.digestOverride { digest = override }
            let mediaType: String
            switch layer.compression {
            case .none: mediaType = "application/vnd.oci.image.layer.v1.tar"
            case .gzip: mediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
            case .zstd: mediaType = "application/vnd.oci.image.layer.v1.tar+zstd"
            }
            layerDescriptors.append(["mediaType": layer.mediaType ?? mediaType, "digest": digest, "size": size])
            diffIDs.append(layer.diffIDOverride ?? TarBuilder.sha256(plain))
        }
        let configObject: [String: Any] = [
            "architecture": architecture, "os": os, "config": config,
            "rootfs": ["type": "layers", "diff_ids": diffIDs]
        ]
        let (configDigest, configSize) = try putBlob(try json(configObject))
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": manifestMediaType,
            "config": [
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": configDigest, "size": configSize
            ],
            "layers": layerDescriptors
        ]
        let (manifestDigest, manifestSize) = try putBlob(try json(manifest))
        var descriptor: [String: Any] = [
            "mediaType": manifestMediaType,
            "digest": manifestDigest, "size": manifestSize
        ]
        if let tag { descriptor["annotations"] = ["org.opencontainers.image.ref.name": tag] }
        if platformInIndex { descriptor["platform"] = ["os": os, "architecture": architecture] }
        return descriptor
    }

    public func writeIndex(_ manifests: [[String: Any]]) throws {
        try json(["schemaVersion": 2, "manifests": manifests]).write(
            to: URL(fileURLWithPath: directory + "/index.json"))
    }

    /// Every file of the layout as tar members (for docker-archive / oci-archive fixtures).
    public func members(prefix: String = "") throws -> [TarMember] {
        var out: [TarMember] = []
        let enumerator = FileManager.default.enumerator(atPath: directory)!
        for case let relative as String in enumerator {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: directory + "/" + relative, isDirectory: &isDirectory)
            out.append(
                isDirectory.boolValue
                    ? .dir(prefix + relative)
                    : TarMember(
                        prefix + relative, .file(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + relative)))
                    ))
        }
        return out.sorted { $0.name < $1.name }
    }
}

/// A legacy `docker save` archive: `<id>/layer.tar`, `<config>.json`, `manifest.json`.
public enum DockerArchiveBuilder {
    public static func legacy(
        _ layers: [[TarMember]], config: [String: Any] = ["Cmd": ["/bin/sh"]], tags: [String] = ["example:latest"],
        architecture: String = "amd64"
    ) throws -> Data {
        var members: [TarMember] = []
        var layerPaths: [String] = []
        var diffIDs: [String] = []
        for (index, layer) in layers.enumerated() {
            let tar = try TarBuilder.tar(layer)
            let id = String(repeating: String(index), count: 64)
            members.append(.dir(id))
            members.append(TarMember("\(id)/VERSION", .file(Data("1.0".utf8))))
            members.append(TarMember("\(id)/layer.tar", .file(tar)))
            layerPaths.append("\(id)/layer.tar")
            diffIDs.append(TarBuilder.sha256(tar))
        }
        let configData = try JSONSerialization.data(withJSONObject: [
            "architecture": architecture, "os": "linux", "config": config,
            "rootfs": ["type": "layers", "diff_ids": diffIDs]
        ])
        let configName = "\(TarBuilder.sha256(configData).dropFirst(7)).json"
        members.append(TarMember(configName, .file(configData)))
        let manifest = try JSONSerialization.data(withJSONObject: [
            ["Config": configName, "RepoTags": tags, "Layers": layerPaths]
        ])
        members.append(TarMember("manifest.json", .file(manifest)))
        return try TarBuilder.tar(members)
    }

    /// The newer (Docker 25+) form: an OCI layout plus manifest.json whose Layers point at blobs, and
    /// legacy `<id>/layer.tar` symlinks into blobs/.
    public static func ociForm(
        layout: OCILayoutBuilder, manifestDescriptor: [String: Any], tags: [String] = ["example:latest"]
    ) throws -> Data {
        var members = try layout.members()
        let manifestDigest = (manifestDescriptor["digest"] as! String).dropFirst(7)
        let manifestData = try Data(
            contentsOf: URL(fileURLWithPath: "\(layout.directory)/blobs/sha256/\(manifestDigest)"))
        let manifest = try JSONSerialization.jsonObject(with: manifestData) as! [String: Any]
        let config = (manifest["config"] as! [String: Any])["digest"] as! String
        var layerPaths: [String] = []
        for layer in manifest["layers"] as! [[String: Any]] {
            let hex = (layer["digest"] as! String).dropFirst(7)
            members.append(.dir(String(hex)))
            members.append(.symlink("\(hex)/layer.tar", "../blobs/sha256/\(hex)"))
            layerPaths.append("\(hex)/layer.tar")
        }
        let dockerManifest = try JSONSerialization.data(withJSONObject: [
            [
                "Config": "blobs/sha256/\(config.dropFirst(7))",
                "RepoTags": tags, "Layers": layerPaths
            ]
        ])
        members.append(TarMember("manifest.json", .file(dockerManifest)))
        return try TarBuilder.tar(members)
    }
}
