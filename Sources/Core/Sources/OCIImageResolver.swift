import Foundation

/// Walks index → (nested index →) manifest → config → layers, choosing by tag and platform.
package struct OCIImageResolver {
    let store: BlobStore
    let platform: Platform

    package init(store: BlobStore, platform: Platform) {
        self.store = store
        self.platform = platform
    }

    package static let refNameAnnotation = "org.opencontainers.image.ref.name"

    struct Resolved {
        var manifest: ImageManifest
        var config: ImageConfig
        var layers: [LayerBlob]
    }

    /// The image chosen by tag and platform: its manifest and config, before any layer is read.
    package struct Chosen {
        /// The manifest's descriptor, with the platform its index gave it.
        package var descriptor: Descriptor
        package var manifestDigest: ContentDigest
        package var manifest: ImageManifest
        package var config: ImageConfig
    }

    func resolve(index: ImageIndex, tag: String?) throws -> Resolved {
        let chosen = try choose(index: index, tag: tag)
        return Resolved(manifest: chosen.manifest, config: chosen.config, layers: try layers(of: chosen))
    }

    package func choose(index: ImageIndex, tag: String?) throws -> Chosen {
        var candidates = index.manifests
        if let tag {
            candidates = candidates.filter { descriptor in
                let annotations = descriptor.annotations ?? [:]
                return annotations[Self.refNameAnnotation] == tag
                    || annotations["io.containerd.image.name"].map { $0 == tag || $0.hasSuffix(":" + tag) } == true
            }
            guard !candidates.isEmpty else {
                let tags = index.manifests.compactMap { $0.annotations?[Self.refNameAnnotation] }
                throw InputError(
                    "\(store.displayName): no image tagged `\(tag)`",
                    hint: tags.isEmpty
                        ? "the index has no tagged images; leave the tag out"
                        : "available tags: \(tags.joined(separator: ", "))")
            }
        }
        let manifests = try expand(candidates, depth: 0)
        let chosen = try choose(manifests, tagGiven: tag != nil)
        let digest = try ContentDigest(chosen.digest, context: "\(store.displayName): manifest digest")
        let manifest = try store.json(
            ImageManifest.self, digest, expectedSize: chosen.size, what: "manifest", isManifest: true)
        if let type = manifest.mediaType ?? chosen.mediaType, !MediaType.manifestTypes.contains(type) {
            throw UnsupportedError(
                "\(store.displayName): manifest \(digest.short) has media type \(type)",
                hint: "supported: \(MediaType.manifestTypes.sorted().joined(separator: ", "))")
        }
        let configDigest = try ContentDigest(manifest.config.digest, context: "\(store.displayName): config digest")
        let config = try store.json(
            ImageConfig.self, configDigest, expectedSize: manifest.config.size, what: "image config")
        try config.check(platform: platform, where: store.displayName)
        guard manifest.layers.count == config.rootfs.diff_ids.count else {
            throw HostileInputError(
                "\(store.displayName): the manifest lists \(manifest.layers.count) layers but the config has \(config.rootfs.diff_ids.count) diff_ids"
            )
        }
        return Chosen(descriptor: chosen, manifestDigest: digest, manifest: manifest, config: config)
    }

    /// The chosen image's layers, each checked against its descriptor.
    package func layers(of chosen: Chosen) throws -> [LayerBlob] {
        let (manifest, config) = (chosen.manifest, chosen.config)
        var layers: [LayerBlob] = []
        for (index, descriptor) in manifest.layers.enumerated() {
            let label = "layer \(index + 1)/\(manifest.layers.count)"
            let digest = try ContentDigest(descriptor.digest, context: "\(store.displayName): \(label) digest")
            let diffID = try ContentDigest(
                config.rootfs.diff_ids[index], context: "\(store.displayName): diff_ids[\(index)]")
            let mediaType = descriptor.mediaType ?? "application/vnd.oci.image.layer.v1.tar"
            guard let declared = MediaType.layerTypes[mediaType] else {
                throw UnsupportedError(
                    "\(store.displayName): \(label) \(digest.short) has media type \(mediaType), which is not a layer type gvlt reads",
                    hint: "supported: \(MediaType.layerTypes.keys.sorted().joined(separator: ", "))")
            }
            let (file, offset, length) = try store.blob(digest, context: label)
            guard length == descriptor.size else {
                throw HostileInputError(
                    "\(store.displayName): \(label) \(digest.short) is \(length) bytes but the manifest says \(descriptor.size)"
                )
            }
            layers.append(
                LayerBlob(
                    label: "\(label) \(digest.short)", file: file, offset: offset, length: length,
                    digest: digest, diffID: diffID, declaredCompression: declared))
        }
        return layers
    }

    /// The most descriptors gvlt reads across an index and the indexes nested in it. A real
    /// multi-platform image lists tens; an index that fans out within the depth limit could list
    /// billions from a few hundred KiB.
    static let descriptorLimit = 4096

    /// Replaces nested indexes by their manifests (multi-platform images nest one level, some two).
    private func expand(_ descriptors: [Descriptor], depth: Int) throws -> [Descriptor] {
        var seen = 0
        return try expand(descriptors, depth: depth, seen: &seen)
    }

    private func expand(_ descriptors: [Descriptor], depth: Int, seen: inout Int) throws -> [Descriptor] {
        guard depth < 4 else { throw HostileInputError("\(store.displayName): image indexes nest too deeply") }
        var out: [Descriptor] = []
        for descriptor in descriptors {
            seen += 1
            guard seen <= Self.descriptorLimit else {
                throw HostileInputError(
                    "\(store.displayName): its image indexes list more than \(Self.descriptorLimit) manifests in all")
            }
            if let type = descriptor.mediaType, MediaType.indexTypes.contains(type) {
                let digest = try ContentDigest(descriptor.digest, context: "\(store.displayName): index digest")
                let nested = try store.json(
                    ImageIndex.self, digest, expectedSize: descriptor.size, what: "image index", isManifest: true)
                out += try expand(nested.manifests, depth: depth + 1, seen: &seen)
            } else {
                out.append(descriptor)
            }
        }
        return out
    }

    private func choose(_ manifests: [Descriptor], tagGiven: Bool) throws -> Descriptor {
        // Build attestations ride along in indexes as unknown/unknown manifests; they are not images.
        let images = manifests.filter { descriptor in
            descriptor.annotations?["vnd.docker.reference.type"] != "attestation-manifest"
                && descriptor.platform.map { $0.os != "unknown" } ?? true
        }
        guard !images.isEmpty else { throw InputError("\(store.displayName): the index lists no image manifests") }
        if images.count == 1 {
            // A lone manifest without a platform is checked against the config's os/architecture later.
            if let p = images[0].platform, !platform.matches(p) {
                throw InputError(
                    "\(store.displayName): no \(platform) manifest (the image is \(p))",
                    hint: "pass --platform \(p) to use it anyway")
            }
            return images[0]
        }
        let matching = images.filter { $0.platform.map(platform.matches) ?? false }
        if matching.count == 1 { return matching[0] }
        if matching.isEmpty {
            let available = Set(images.compactMap { $0.platform?.description }).sorted()
            throw InputError(
                "\(store.displayName): no \(platform) manifest; available: \(available.isEmpty ? "none with a platform" : available.joined(separator: ", "))",
                hint: "choose one with --platform")
        }
        let tags = matching.compactMap { $0.annotations?[Self.refNameAnnotation] }
        throw InputError(
            "\(store.displayName): \(matching.count) \(platform) images match",
            hint: tagGiven || tags.isEmpty
                ? "pin one by digest (REF@sha256:…), or keep one image in the layout"
                : "choose one by tag: \(tags.joined(separator: ", "))")
    }
}
