import Foundation

/// Where an image's blobs are: a layout directory, or members of an archive we never extract.
public protocol BlobStore {
    var displayName: String { get }
    /// The blob's bytes as a range of an open file. `context` names the referrer for messages.
    func blob(_ digest: ContentDigest, context: String) throws -> (file: SharedFile, offset: Int64, length: Int64)
    /// A manifest or an index. Files keep them with the blobs; registries serve them apart.
    func manifest(_ digest: ContentDigest, context: String) throws -> (file: SharedFile, offset: Int64, length: Int64)
}

extension BlobStore {
    public func manifest(_ digest: ContentDigest, context: String) throws -> (
        file: SharedFile, offset: Int64, length: Int64
    ) {
        try blob(digest, context: context)
    }

    /// Reads a small JSON document (a manifest or an index when `isManifest`, else a config),
    /// checking its size and digest first.
    func json<T: Decodable>(
        _ type: T.Type, _ digest: ContentDigest, expectedSize: Int64?, what: String, isManifest: Bool = false
    ) throws -> T {
        let (file, offset, length) = try isManifest ? manifest(digest, context: what) : blob(digest, context: what)
        if let expectedSize, expectedSize != length {
            throw HostileInputError(
                "\(displayName): \(what) \(digest.short) is \(length) bytes but its descriptor says \(expectedSize)")
        }
        let data = try JSONFiles.read(
            file: file, offset: offset, length: length, what: "\(what) \(digest.short) in \(displayName)")
        let actual = "sha256:" + Crypto.SHA256.hash(data: data).hexString
        guard actual == digest.description else {
            throw HostileInputError(
                "\(displayName): \(what) blob does not match its digest: expected \(digest), got \(actual)")
        }
        return try JSONFiles.decode(type, from: data, what: "\(what) \(digest.short) in \(displayName)")
    }
}

import Crypto

/// JSON documents of images: bounded in size, with errors that say which document is broken.
package enum JSONFiles {
    package static let maximumSize: Int64 = 16 << 20

    package static func read(file: SharedFile, offset: Int64, length: Int64, what: String) throws -> Data {
        guard length >= 0 else { throw HostileInputError("\(what) has a negative size (\(length))") }
        guard length <= maximumSize else {
            throw HostileInputError(
                "\(what) is \(length) bytes; JSON documents over \(maximumSize >> 20) MiB are refused")
        }
        // checked: 0 <= length <= maximumSize (guards above)
        var data = Data(count: Int(length))
        let got = try data.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        guard got == Int(length) else { throw InputError("\(what) is truncated") }
        return data
    }

    package static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                let (location, detail) = JSONValue.syntaxProblem(in: data)
            {
                throw InputError(
                    "malformed \(what)\(location): \(detail)",
                    hint: "the file is not a valid image document; re-export the image")
            }
            throw InputError(
                "malformed \(what): \(describe(error))",
                hint: "the file is not a valid image document; re-export the image")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [CodingKey]) -> String {
            codingPath.isEmpty
                ? "top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.debugDescription
        case .keyNotFound(let key, let context):
            return "missing key `\(key.stringValue)` at \(path(context.codingPath))"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// Blobs of an OCI layout directory: `blobs/sha256/<hex>`.
public struct DirectoryBlobStore: BlobStore {
    public let directory: String
    public var displayName: String { directory }

    public init(directory: String) {
        self.directory = directory
    }

    public func blob(_ digest: ContentDigest, context: String) throws -> (
        file: SharedFile, offset: Int64, length: Int64
    ) {
        // O_NOFOLLOW guards the blob's own name; the folders above it must not be links either, or
        // a layout could hand out any file on the host as a blob.
        for folder in ["blobs", "blobs/\(digest.algorithm)"] {
            var info = stat()
            if lstat("\(directory)/\(folder)", &info) == 0, info.st_mode & S_IFMT != S_IFDIR {
                throw HostileInputError(
                    "\(directory): \(folder) is \(info.st_mode & S_IFMT == S_IFLNK ? "a symlink" : "not a directory"), which is refused inside an image layout"
                )
            }
        }
        let path = "\(directory)/blobs/\(digest.algorithm)/\(digest.hex)"
        guard
            FileManager.default.fileExists(atPath: path)
                || (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
        else {
            throw InputError(
                "\(directory): blob \(digest) (\(context)) is missing",
                hint: "the layout is incomplete; re-export it (e.g. skopeo copy … oci:\(directory))")
        }
        let file = try SharedFile.openRegular(path, what: "blob", followSymlinks: false)
        return (file, 0, file.size)
    }

    /// A small file of the layout (`index.json`, `oci-layout`), read with the same bounds as JSON blobs;
    /// nil when it does not exist.
    public func document(_ name: String) throws -> Data? {
        let path = "\(directory)/\(name)"
        guard
            FileManager.default.fileExists(atPath: path)
                || (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
        else {
            return nil
        }
        let file = try SharedFile.openRegular(path, what: name, followSymlinks: false)
        return try JSONFiles.read(file: file, offset: 0, length: file.size, what: path)
    }
}
