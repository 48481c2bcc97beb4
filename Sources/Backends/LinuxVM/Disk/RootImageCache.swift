import Core
import Foundation

/// Whole SquashFS roots by the digest of everything that goes into them: the complete root tree
/// (source layers, gvlt-init, the baked config, the accelerators' files), the compressor's
/// configuration, the block size, the time stamp and the compression libraries. A rebuild whose
/// inputs are all unchanged reuses the root instead of packing it again.
///
/// An entry is a directory `CACHE/squashfs-roots/KEY` holding `root.fs` and `sha256`, published by
/// rename from a staging directory in `CACHE/squashfs-roots/tmp` (swept when its build is gone).
/// The file is checked against its digest before every use.
struct RootImageCache {
    static let area = "squashfs-roots"
    let directory: String

    init(cache: CacheDirectory) {
        directory = cache.root + "/" + Self.area
    }

    static func key(treeDigest: String, configuration: [UInt8], toolVersion: String, blockSize: UInt32, mtime: UInt32)
        -> String
    {
        let description = [
            "gvlt-squashfs-root-v1", treeDigest, configuration.hexString, toolVersion, String(blockSize), String(mtime)
        ].joined(separator: "\n")
        return SHA256Hex.of(Array(description.utf8))
    }

    /// The entry for `key` as a file at `output` (a hard link, or the entry itself across file
    /// systems) and its sha256; nil when there is none. A damaged entry is removed, and `damaged` says so.
    func lookup(_ key: String, at output: String, damaged: inout Bool) throws -> (path: String, sha256: String)? {
        let entry = directory + "/" + key
        guard let recorded = try? String(contentsOfFile: entry + "/sha256", encoding: .utf8) else {
            if FileManager.default.fileExists(atPath: entry) { damaged = remove(entry) }
            return nil
        }
        let file = entry + "/root.fs"
        let path = link(file, output) == 0 ? output : file
        guard let actual = try? SHA256Hex.of(file: path),
            actual == recorded.trimmingCharacters(in: .whitespacesAndNewlines)
        else {
            if path == output { unlink(output) }
            damaged = remove(entry)
            return nil
        }
        // The entry's last use, for least-recently-used eviction.
        _ = utimes(entry, nil)
        return (path, actual)
    }

    /// Writes the root at `output` with `produce`, then stores a copy (a hard link where it can) as
    /// the entry for `key`. Storing is best effort: a cache that cannot take it only means a miss next time.
    func store<T>(_ key: String, at output: String, produce: (String) throws -> T) throws -> (T, sha256: String) {
        let result = try produce(output)
        let sha256 = try SHA256Hex.of(file: output)
        let temporary = directory + "/tmp"
        try? FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        ScratchDirectory.sweepAbandoned(in: temporary)
        guard let staging = try? ScratchDirectory(label: "gvlt-root", in: temporary) else { return (result, sha256) }
        // The entry is a directory inside the staging one, which keeps its owner lock to itself.
        let entry = staging.path + "/entry"
        let file = entry + "/root.fs"
        guard (try? FileManager.default.createDirectory(atPath: entry, withIntermediateDirectories: false)) != nil
        else { return (result, sha256) }
        if link(output, file) != 0 {
            guard (try? FileManager.default.copyItem(atPath: output, toPath: file)) != nil else {
                return (result, sha256)
            }
        }
        guard FileManager.default.createFile(atPath: entry + "/sha256", contents: Data((sha256 + "\n").utf8))
        else { return (result, sha256) }
        // A racing build may have published the same entry first; its bytes are the same.
        _ = rename(entry, directory + "/" + key)
        return (result, sha256)
    }

    /// Removes an entry by renaming it aside first, so no reader ever sees half of one.
    @discardableResult
    func remove(_ entry: String) -> Bool {
        let aside = directory + "/tmp/\(CachePruning.asidePrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        guard rename(entry, aside) == 0 else { return false }
        try? FileManager.default.removeItem(atPath: aside)
        return true
    }
}
