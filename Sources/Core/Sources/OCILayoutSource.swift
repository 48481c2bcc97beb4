import Foundation

/// `--container oci:DIR[:TAG]`: an OCI image layout directory, read in place.
public struct OCILayoutSource: ImageSource {
    public var directory: String
    public var tag: String?

    public init(directory: String, tag: String?) {
        self.directory = directory
        self.tag = tag
    }

    public var description: String { "oci:\(directory)" + (tag.map { ":\($0)" } ?? "") }

    public func load(_ context: SourceContext) throws -> LoadedImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError(
                "\(description): \(directory) is not a directory",
                hint:
                    "give an OCI layout directory (with oci-layout and index.json), e.g. from `skopeo copy … oci:DIR:TAG`"
            )
        }
        let store = DirectoryBlobStore(directory: directory)
        try Self.checkLayoutMarker(read: { try store.document($0) }, in: directory)
        guard let indexData = try store.document("index.json") else {
            throw InputError("\(directory)/index.json is missing", hint: "this is not a complete OCI layout")
        }
        let index = try JSONFiles.decode(ImageIndex.self, from: indexData, what: "index.json in \(directory)")
        let resolver = OCIImageResolver(store: store, platform: context.platform)
        let resolved = try resolver.resolve(index: index, tag: tag)
        let tree = try context.flattener().flatten(resolved.layers)
        return LoadedImage(
            tree: tree, runSpec: resolved.config.runSpec,
            origin: "\(description) (\(resolved.layers.count) layers)")
    }

    /// `oci-layout` must exist and declare version 1.x.
    static func checkLayoutMarker(read: (String) throws -> Data?, in location: String) throws {
        struct Marker: Decodable { var imageLayoutVersion: String }
        guard let data = try read("oci-layout") else {
            throw InputError(
                "\(location) has no oci-layout file, so it is not an OCI image layout",
                hint: "export one with `skopeo copy SRC oci:DIR:TAG` or `podman save --format oci-dir`")
        }
        let marker = try JSONFiles.decode(Marker.self, from: data, what: "oci-layout in \(location)")
        guard marker.imageLayoutVersion.hasPrefix("1.") else {
            throw UnsupportedError(
                "\(location): OCI layout version \(marker.imageLayoutVersion) is not supported (1.x is)")
        }
    }
}
