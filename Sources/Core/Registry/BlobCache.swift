import Crypto
import Foundation

/// The content-addressed blob cache under the cache directory: `blobs/sha256/HEX`, laid out as an OCI
/// layout's blobs, so that `DirectoryBlobStore(directory: root)` reads it. A blob enters only whole
/// and verified, by rename from a staging directory in `tmp/` (same file system); staging directories
/// of a killed run are swept by the next one. Tag records (`refs/`) let `--offline` resolve a tag.
public struct BlobCache: Sendable {
    public let root: String

    public init(_ cache: CacheDirectory) {
        root = cache.root
    }

    public var store: DirectoryBlobStore { DirectoryBlobStore(directory: root) }

    public func path(_ digest: ContentDigest) -> String { "\(root)/blobs/\(digest.algorithm)/\(digest.hex)" }

    /// Whether the blob is cached (with `size`, when given).
    public func contains(_ digest: ContentDigest, size: Int64? = nil) -> Bool {
        var info = stat()
        guard lstat(path(digest), &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        return size.map { Int64(info.st_size) == $0 } ?? true
    }

    /// A staging directory for this run's downloads; what is left in it is never a cache entry.
    public func staging() throws -> ScratchDirectory {
        let tmp = root + "/tmp"
        do {
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/blobs/sha256", withIntermediateDirectories: true)
        } catch {
            throw InputError(
                "cannot create the cache directory \(root): \(error.localizedDescription)",
                hint: "set --cache-dir or GVLT_CACHE_DIR to a writable directory")
        }
        ScratchDirectory.sweepAbandoned(in: tmp)
        return try ScratchDirectory(label: "gvlt-pull", in: tmp)
    }

    /// Moves a verified file into the cache under its digest, read-only. Another process may have
    /// published it meanwhile; the same digest means the same bytes, so either copy will do.
    public func publish(_ file: String, as digest: ContentDigest) throws {
        chmod(file, 0o444)
        guard rename(file, path(digest)) == 0 else {
            throw SystemError("cannot publish the blob \(digest.short) into the cache", path: root, errno: errno)
        }
    }

    /// A small document (a manifest) into the cache, after checking its digest.
    public func store(_ data: Data, as digest: ContentDigest, staging: ScratchDirectory) throws {
        guard !contains(digest, size: Int64(data.count)) else { return }
        let actual = "sha256:" + SHA256.hash(data: data).hexString
        guard actual == digest.description else {
            throw HostileInputError("a document does not match its digest \(digest): it is \(actual)")
        }
        let temporary = staging.path + "/doc-" + digest.hex
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw SystemError("cannot write", path: temporary, errno: errno)
        }
        try publish(temporary, as: digest)
    }

    // MARK: Tags, for --offline

    public struct TagRecord: Codable, Sendable {
        public var digest: String
        public var mediaType: String
        public var size: Int64

        public init(digest: String, mediaType: String, size: Int64) {
            self.digest = digest
            self.mediaType = mediaType
            self.size = size
        }
    }

    func tagPath(_ reference: ImageReference) -> String? {
        guard let tag = reference.tag else { return nil }
        let host = CacheDirectory.keyComponent(reference.registry)
        // Repository components and tags have been checked against their grammars: no `/` tricks.
        return "\(root)/refs/\(host)/\(reference.repository)/_tags/\(tag)"
    }

    public func tag(_ reference: ImageReference) -> TagRecord? {
        tagPath(reference).flatMap { CacheDirectory.readRecord(TagRecord.self, at: $0) }
    }

    public func record(_ reference: ImageReference, _ record: TagRecord) {
        guard let path = tagPath(reference) else { return }
        CacheDirectory.writeRecord(record, to: path)
    }
}
