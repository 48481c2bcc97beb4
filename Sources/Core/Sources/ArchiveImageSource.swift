import Foundation

/// `--container docker-archive:FILE[:REF]` (`docker save`, legacy and OCI forms) and
/// `--container oci-archive:FILE[:TAG]` (an OCI layout in a tar). Members are read in place from the
/// archive; nothing is extracted. A compressed archive is first decompressed to an anonymous scratch
/// file so members can be addressed by offset.
public struct ArchiveImageSource: ImageSource {
    public var file: String
    public var reference: String?
    public var transport: String

    public init(file: String, reference: String?, transport: String) {
        self.file = file
        self.reference = reference
        self.transport = transport
    }

    public var description: String { "\(transport):\(file)" + (reference.map { ":\($0)" } ?? "") }

    public func load(_ context: SourceContext) throws -> LoadedImage {
        let archive = try TarMemberIndex(path: file, label: description, scratch: context.scratch.path)
        if archive.members["manifest.json"] != nil, transport == "docker-archive" {
            return try loadDockerManifest(archive, context)
        }
        if archive.members["index.json"] != nil {
            try OCILayoutSource.checkLayoutMarker(read: { try archive.data(of: $0) }, in: description)
            let index = try JSONFiles.decode(
                ImageIndex.self, from: try archive.data(of: "index.json")!, what: "index.json in \(description)")
            let resolver = OCIImageResolver(store: archive, platform: context.platform)
            let resolved = try resolver.resolve(index: index, tag: reference)
            let tree = try context.flattener().flatten(resolved.layers)
            return LoadedImage(
                tree: tree, runSpec: resolved.config.runSpec, origin: "\(description) (\(resolved.layers.count) layers)"
            )
        }
        throw InputError(
            "\(file) is not a \(transport) (it has neither manifest.json nor index.json)",
            hint: transport == "docker-archive"
                ? "create one with `docker save IMAGE -o FILE` or `podman save IMAGE -o FILE`"
                : "create one with `podman save --format oci-archive IMAGE -o FILE`")
    }

    private func loadDockerManifest(_ archive: TarMemberIndex, _ context: SourceContext) throws -> LoadedImage {
        let items = try JSONFiles.decode(
            [DockerArchiveManifestItem].self, from: try archive.data(of: "manifest.json")!,
            what: "manifest.json in \(description)")
        let item: DockerArchiveManifestItem
        if let reference {
            let matches = items.filter {
                ($0.RepoTags ?? []).contains { $0 == reference || $0.hasSuffix("/" + reference) }
            }
            guard let first = matches.first else {
                let tags = items.flatMap { $0.RepoTags ?? [] }
                throw InputError(
                    "\(description): no image tagged `\(reference)`",
                    hint: tags.isEmpty
                        ? "the archive has no tags; leave the reference out"
                        : "available: \(tags.joined(separator: ", "))")
            }
            item = first
        } else {
            guard items.count == 1 else {
                let tags = items.flatMap { $0.RepoTags ?? [] }
                throw InputError(
                    "\(description) holds \(items.count) images",
                    hint: "choose one: \(transport):\(file):REF with REF one of \(tags.joined(separator: ", "))")
            }
            item = items[0]
        }
        guard let configData = try archive.data(of: item.Config) else {
            throw InputError("\(description): config \(item.Config) named in manifest.json is missing from the archive")
        }
        let config = try JSONFiles.decode(
            ImageConfig.self, from: configData, what: "config \(item.Config) in \(description)")
        if let blobDigest = Self.digest(fromMemberName: item.Config) {
            let actual = "sha256:" + SHA256Hex.of(data: configData)
            guard actual == blobDigest.description else {
                throw HostileInputError(
                    "\(description): config \(item.Config) does not match its digest (content is \(actual))")
            }
        }
        try config.check(platform: context.platform, where: description)
        guard item.Layers.count == config.rootfs.diff_ids.count else {
            throw HostileInputError(
                "\(description): manifest.json lists \(item.Layers.count) layers but the config has \(config.rootfs.diff_ids.count) diff_ids"
            )
        }
        var layers: [LayerBlob] = []
        for (index, name) in item.Layers.enumerated() {
            guard let (member, memberFile) = try archive.member(name) else {
                throw InputError("\(description): layer \(name) named in manifest.json is missing from the archive")
            }
            let diffID = try ContentDigest(config.rootfs.diff_ids[index], context: "\(description): diff_ids[\(index)]")
            layers.append(
                LayerBlob(
                    label: "layer \(index + 1)/\(item.Layers.count) \(diffID.short)", file: memberFile,
                    offset: member.offset, length: member.size,
                    digest: Self.digest(fromMemberName: name), diffID: diffID, declaredCompression: nil))
        }
        let tree = try context.flattener().flatten(layers)
        return LoadedImage(tree: tree, runSpec: config.runSpec, origin: "\(description) (\(layers.count) layers)")
    }

    /// Members named by their digest (`blobs/sha256/<hex>`, or the legacy `<hex>.json` config and
    /// `<hex>.tar` layer) are checked against it like blobs.
    static func digest(fromMemberName name: String) -> ContentDigest? {
        let parts = name.split(separator: "/")
        if parts.count == 3, parts[0] == "blobs", parts[1] == "sha256" {
            return try? ContentDigest("sha256:\(parts[2])", context: name)
        }
        if parts.count == 1, let dot = name.lastIndex(of: "."), [".json", ".tar"].contains(String(name[dot...])) {
            return try? ContentDigest("sha256:\(name[..<dot])", context: name)
        }
        return nil
    }
}

/// The regular-file members of an uncompressed tar, by normalized name, with their data offsets.
/// Symlink members (newer `docker save` links `ID/layer.tar` to `blobs/sha256/…`) are followed inside
/// the archive's own name space only.
final class TarMemberIndex: BlobStore {
    struct Member {
        var offset: Int64
        var size: Int64
    }

    let file: SharedFile
    let label: String
    private(set) var members: [String: Member] = [:]
    private var symlinks: [String: String] = [:]
    var displayName: String { label }

    init(path: String, label: String, scratch: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw InputError("\(label): \(path) does not exist", hint: "check the path")
        }
        // The archive is addressed by offset, so it must be a regular file (not a pipe or /dev/stdin).
        var file = try SharedFile.openRegular(path, what: "archive", followSymlinks: true)
        self.label = label
        var magic = [UInt8](repeating: 0, count: 6)
        let count = try magic.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        switch LayerCompression.sniff(Array(magic.prefix(count))) {
        case .failure(let error): throw UnsupportedError("\(label): \(error.message)")
        case .success(.none): break
        case .success(let compression):
            // Members must be addressable by offset, so keep an uncompressed copy in scratch space.
            let copy = try SharedFile.anonymous(in: scratch)
            let reader = try ArchiveReader(
                format: .raw, filters: compression == .gzip ? [.gzip] : [.zstd],
                source: FileRangeSource(file: file, length: file.size), label: label)
            _ = try reader.nextHeader()
            var position: Int64 = 0
            while let (block, _) = try reader.readBlock() {
                try copy.write(block, at: position)
                // checked: block sizes, Int to Int64
                position += Int64(block.count)
            }
            file = copy
        }
        self.file = file
        let reader = try ArchiveReader(
            format: .tar, source: FileRangeSource(file: file, length: file.size), label: label)
        while let entry = try reader.nextHeader() {
            let header: ArchiveEntryCoding.Header
            do {
                header = try ArchiveEntryCoding.decode(entry, names: reader.rawNames)
            } catch let problem as ArchiveEntryCoding.DecodeProblem {
                throw HostileInputError("\(label): \(problem)")
            }
            // Names that could escape are never referenced legitimately; leave them out of the index.
            guard case .success(let parts) = TreePath.components(header.name), !parts.isEmpty else { continue }
            let name = TreePath.join(parts)
            // As when a tar is extracted, a later member of the same name replaces an earlier one.
            members[name] = nil
            symlinks[name] = nil
            switch header.kind {
            case .regularFile:
                guard !header.isSparse else { throw UnsupportedError("\(label): member \(name) is a sparse file") }
                members[name] = Member(offset: reader.consumedBytes, size: header.size)
            case .symlink(let target):
                symlinks[name] = target
            case .hardlink(let target):
                symlinks[name] = "/" + target
            default:
                continue
            }
        }
    }

    /// The member called `name` (after following in-archive symlinks), or nil.
    func member(_ name: String) throws -> (Member, SharedFile)? {
        guard case .success(var parts) = TreePath.components(name) else {
            throw HostileInputError("\(label): member name `\(name)` is refused (absolute or contains `..`)")
        }
        for _ in 0..<8 {
            let joined = TreePath.join(parts)
            if let member = members[joined] { return (member, file) }
            guard let target = symlinks[joined] else { return nil }
            // Resolve relative to the link's directory, lexically, inside the archive only.
            var resolved = target.hasPrefix("/") ? [] : Array(parts.dropLast())
            for part in target.split(separator: "/") {
                if part == "." || part.isEmpty { continue }
                if part == ".." {
                    guard !resolved.isEmpty else {
                        throw HostileInputError("\(label): member \(joined) links outside the archive")
                    }
                    resolved.removeLast()
                } else {
                    resolved.append(String(part))
                }
            }
            parts = resolved
        }
        throw HostileInputError("\(label): member \(name): too many levels of links")
    }

    func data(of name: String) throws -> Data? {
        guard let (member, file) = try member(name) else { return nil }
        return try JSONFiles.read(file: file, offset: member.offset, length: member.size, what: "\(name) in \(label)")
    }

    func blob(_ digest: ContentDigest, context: String) throws -> (file: SharedFile, offset: Int64, length: Int64) {
        guard let (member, file) = try member("blobs/\(digest.algorithm)/\(digest.hex)") else {
            throw InputError(
                "\(label): blob \(digest) (\(context)) is missing from the archive",
                hint: "the archive is incomplete; re-export it")
        }
        return (file, member.offset, member.size)
    }
}
