import Core
import Foundation

/// Writes a pulled image as an OCI image layout (`gvlt pull -o oci:DIR[:TAG]`), for air-gapped
/// hand-off: `oci-layout`, `index.json` naming the platform's manifest (annotated with the tag), and
/// the manifest, config and layers under `blobs/sha256/`, exactly as the registry served them, so
/// digests still pin. Blobs are hard links into the cache where the file system allows (they are
/// read-only there), else copies. A new directory appears whole, by rename; an existing layout
/// gains the image, and its `index.json` is replaced atomically, as skopeo adds to a layout.
public struct OCILayoutWriter {
    public var directory: String
    public var tag: String?

    public init(directory: String, tag: String?) {
        self.directory = directory
        self.tag = tag
    }

    /// `oci:DIR[:TAG]`.
    public static func parse(_ text: String) throws -> OCILayoutWriter {
        guard text.hasPrefix("oci:"), text.count > 4 else {
            throw InputError("-o `\(text)` is not oci:DIR[:TAG]", hint: "e.g. -o oci:./prover-image:v1")
        }
        let rest = String(text.dropFirst(4))
        // DIR[:TAG]: a tag has no `/`; a directory that exists keeps its `:`.
        if FileManager.default.fileExists(atPath: rest) { return OCILayoutWriter(directory: rest, tag: nil) }
        if let colon = rest.lastIndex(of: ":") {
            let tag = String(rest[rest.index(after: colon)...])
            if !tag.isEmpty, !tag.contains("/") {
                guard ImageReference.isTag(tag) else {
                    throw InputError("-o `\(text)`: `\(tag)` is not a tag", hint: "letters, digits, `_`, `.`, `-`")
                }
                return OCILayoutWriter(directory: String(rest[..<colon]), tag: tag)
            }
        }
        return OCILayoutWriter(directory: rest, tag: nil)
    }

    public func write(_ image: PulledImage, cache: BlobCache) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        let exists = fileManager.fileExists(atPath: directory, isDirectory: &isDirectory)
        let existingEntries = exists ? ((try? fileManager.contentsOfDirectory(atPath: directory)) ?? []) : []
        let isLayout = existingEntries.contains("oci-layout") && existingEntries.contains("index.json")
        if exists && (!isDirectory.boolValue || (!existingEntries.isEmpty && !isLayout)) {
            throw InputError(
                "\(directory) exists and is not an OCI layout",
                hint: "give a new directory, an empty one, or an existing layout to add the image to")
        }
        // A new layout is made beside its place and renamed into it whole.
        let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
        let target: String
        var staging: ScratchDirectory?
        if isLayout {
            target = directory
        } else {
            // A killed pull's staging layout is swept by the next one writing beside it (only
            // directories gvlt made and whose owner is gone, as in $TMPDIR).
            ScratchDirectory.sweepAbandoned(in: parent)
            staging = try ScratchDirectory(label: "gvlt-layout", in: parent)
            target = staging!.path
            try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: target + "/oci-layout"))
        }
        defer { staging?.remove() }
        try fileManager.createDirectory(atPath: target + "/blobs/sha256", withIntermediateDirectories: true)
        let descriptors = [image.manifest, image.configDescriptor] + image.layerDescriptors
        for descriptor in descriptors {
            let digest = try ContentDigest(descriptor.digest, context: "\(image.reference)")
            try place(cache.path(digest), at: "\(target)/blobs/sha256/\(digest.hex)")
        }
        var manifests: [Descriptor] = []
        if isLayout {
            let data = try DirectoryBlobStore(directory: directory).document("index.json") ?? Data()
            manifests = try JSONFiles.decode(ImageIndex.self, from: data, what: "index.json in \(directory)").manifests
            // The tag moves to this image, as skopeo moves it.
            if let tag { manifests.removeAll { $0.annotations?[OCIImageResolver.refNameAnnotation] == tag } }
        }
        var entry = image.manifest
        entry.annotations = tag.map { [OCIImageResolver.refNameAnnotation: $0] }
        manifests.append(entry)
        let index = ImageIndex(schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: manifests)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let temporary = target + "/index.json.gvlt-tmp"
        // An interrupted write of an existing layout leaves no temp file in it.
        let token = Cleanup.shared.register(path: temporary)
        defer { Cleanup.shared.remove(token) }
        try encoder.encode(index).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, target + "/index.json") == 0 else {
            throw SystemError("cannot write", path: target + "/index.json", errno: errno)
        }
        TestTrap.reach("pull-layout")
        if let staging {
            // The staging directory's lock file is not part of the layout, and mkdtemp's 0700 is not
            // what a new directory gets.
            unlink(target + "/" + ScratchDirectory.ownerFile)
            let mask = umask(0)
            umask(mask)
            chmod(target, 0o777 & ~mask)
            if exists { rmdir(directory) }
            guard rename(staging.path, directory) == 0 else {
                throw SystemError("cannot create the layout", path: directory, errno: errno)
            }
        }
    }

    /// A hard link to the cached blob, or a copy where links cannot cross file systems.
    private func place(_ source: String, at destination: String) throws {
        if FileManager.default.fileExists(atPath: destination) { return }
        if link(source, destination) == 0 { return }
        let temporary = destination + ".gvlt-tmp"
        unlink(temporary)
        let token = Cleanup.shared.register(path: temporary)
        defer { Cleanup.shared.remove(token) }
        do {
            try FileManager.default.copyItem(atPath: source, toPath: temporary)
        } catch {
            unlink(temporary)
            throw InputError("cannot copy a blob into \(directory): \(error.localizedDescription)")
        }
        guard rename(temporary, destination) == 0 else {
            throw SystemError("cannot write", path: destination, errno: errno)
        }
    }
}
