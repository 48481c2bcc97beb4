import Core
import Foundation

/// Whole build products by the digest of everything that goes into them: SquashFS roots (the
/// complete root tree, the compressor's configuration, the block size, the time stamp and the
/// compression libraries) and boot partitions (kernel, initramfs, command line, time stamp and the
/// FAT tools). A rebuild whose inputs are unchanged reuses the product instead of making it again.
///
/// An entry is a directory `CACHE/AREA/KEY` holding the file and its `sha256`, published by rename
/// from a staging directory in `CACHE/AREA/tmp` (swept when its build is gone). The file is checked
/// against its digest before every use.
struct BuildFileCache {
    let directory: String
    let fileName: String

    static func roots(_ cache: CacheDirectory) -> BuildFileCache {
        BuildFileCache(directory: cache.root + "/" + CachePruning.squashfsRoots, fileName: "root.fs")
    }

    static func bootPartitions(_ cache: CacheDirectory) -> BuildFileCache {
        BuildFileCache(directory: cache.root + "/" + CachePruning.bootPartitions, fileName: "boot.img")
    }

    /// A key from the lines that describe every input: sha256 of them, newline-joined.
    static func key(_ parts: [String]) -> String {
        SHA256Hex.of(Array(parts.joined(separator: "\n").utf8))
    }

    /// A host tool as one line of a key: its path, size and time, since another version of it may
    /// write other bytes.
    static func toolPart(_ path: String) -> String {
        var info = stat()
        return stat(path, &info) == 0 ? "\(path) \(info.st_size) \(info.st_mtim.tv_sec)" : path
    }

    /// The entry for `key` as a file at `output` (a hard link, or the entry itself across file
    /// systems) and its sha256; nil when there is none. A damaged entry is removed, and `damaged` says so.
    func lookup(_ key: String, at output: String, damaged: inout Bool) throws -> (path: String, sha256: String)? {
        let entry = directory + "/" + key
        guard let recorded = try? String(contentsOfFile: entry + "/sha256", encoding: .utf8) else {
            if FileManager.default.fileExists(atPath: entry) { damaged = remove(entry) }
            return nil
        }
        let file = entry + "/" + fileName
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

    /// Writes the file at `output` with `produce`, then stores a copy (a hard link where it can) as
    /// the entry for `key`. Storing is best effort: a cache that cannot take it only means a miss next time.
    func store<T>(_ key: String, at output: String, produce: (String) throws -> T) throws -> T {
        let result = try produce(output)
        publish(key, file: output)
        return result
    }

    /// Stores `file` (a hard link where it can, else a copy) and `extras` as the entry for `key`,
    /// with the file's sha256, read here. Best effort: a cache that cannot take it only means a miss
    /// next time.
    func publish(_ key: String, file output: String, extras: [String: Data] = [:]) {
        guard let sha256 = try? SHA256Hex.of(file: output) else { return }
        let temporary = directory + "/tmp"
        try? FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        ScratchDirectory.sweepAbandoned(in: temporary)
        guard let staging = try? ScratchDirectory(label: "gvlt-entry", in: temporary) else { return }
        // The entry is a directory inside the staging one, which keeps its owner lock to itself.
        let entry = staging.path + "/entry"
        let file = entry + "/" + fileName
        guard (try? FileManager.default.createDirectory(atPath: entry, withIntermediateDirectories: false)) != nil
        else { return }
        if link(output, file) != 0 {
            guard (try? FileManager.default.copyItem(atPath: output, toPath: file)) != nil else { return }
        }
        guard FileManager.default.createFile(atPath: entry + "/sha256", contents: Data((sha256 + "\n").utf8))
        else { return }
        for (name, data) in extras {
            guard FileManager.default.createFile(atPath: entry + "/" + name, contents: data) else { return }
        }
        TestTrap.reach("cache-store-" + URL(fileURLWithPath: directory).lastPathComponent)
        // A racing build may have published the same entry first; its bytes are the same.
        _ = rename(entry, directory + "/" + key)
    }

    /// The entries there, most recently used first, at most `limit`.
    func entries(limit: Int) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0 != "tmp" }
        let dated = names.compactMap { name -> (String, Int64)? in
            var info = stat()
            let path = directory + "/" + name
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
            return (path, Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
        }
        return dated.sorted { ($0.1, $0.0) > ($1.1, $1.0) }.prefix(limit).map(\.0)
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
