import Core
import Foundation

/// Whole build products by the digest of everything that goes into them: SquashFS roots (the
/// complete root tree, the compressor's configuration, the block size, the time stamp and the
/// compression libraries) and boot partitions (kernel, initramfs, command line, time stamp and the
/// FAT tools). A rebuild whose inputs are unchanged reuses the product instead of making it again.
///
/// An entry is a directory `CACHE/AREA/KEY` holding the file and its `sha256`, published by rename
/// from a staging directory in `CACHE/AREA/tmp` (swept when its build is gone). The file is checked
/// against its digest before every use. A product that went into a larger file (a SquashFS root
/// written into its disk image) is stored as that file, with a `range` (offset and size) saying
/// where the product lies in it: the disk is hard-linked in, so the root's bytes are written once.
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

    /// A product found in the cache: the file holding it (checked against the entry's sha256), and
    /// where in the file the product lies (the whole file, unless the entry has a `range`).
    struct Hit {
        var path: String
        var offset: Int64
        var size: Int64
    }

    /// The entry for `key` as a file at `output` (a hard link, or the entry itself across file
    /// systems); nil when there is none. A damaged entry is removed, and `damaged` says so.
    func lookup(_ key: String, at output: String, damaged: inout Bool) throws -> Hit? {
        let entry = directory + "/" + key
        guard let recorded = try? String(contentsOfFile: entry + "/sha256", encoding: .utf8) else {
            if FileManager.default.fileExists(atPath: entry) { damaged = remove(entry) }
            return nil
        }
        let file = entry + "/" + fileName
        let path = link(file, output) == 0 ? output : file
        guard let opened = try? SharedFile.openRegular(path, what: "cached file", followSymlinks: false),
            let range = Self.range(of: entry, fileSize: opened.size),
            let actual = try? SHA256Hex.of(opened),
            actual == recorded.trimmingCharacters(in: .whitespacesAndNewlines)
        else {
            if path == output { unlink(output) }
            damaged = remove(entry)
            return nil
        }
        // The entry's last use, for least-recently-used eviction.
        _ = utimes(entry, nil)
        return Hit(path: path, offset: range.offset, size: range.size)
    }

    /// Where an entry's product lies in its file of `fileSize` bytes: its `range` ("OFFSET SIZE"),
    /// or the whole file without one; nil for a range that is not a part of the file.
    static func range(of entry: String, fileSize: Int64) -> (offset: Int64, size: Int64)? {
        guard let text = try? String(contentsOfFile: entry + "/range", encoding: .utf8) else {
            return FileManager.default.fileExists(atPath: entry + "/range") ? nil : (0, fileSize)
        }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let offset = Int64(fields[0]), let size = Int64(fields[1]), offset >= 0, size > 0,
            offset <= fileSize, size <= fileSize - offset
        else { return nil }
        return (offset, size)
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
        stage(key, file: output, extras: extras)?()
    }

    /// The first half of `publish`: the entry made whole in a staging directory, which the returned
    /// closure renames into place (and which goes away unused when the closure does). `sha256` is the
    /// file's digest when the caller has it, and `range` says where in the file the product lies,
    /// when it is not the whole file. A disk not yet named (`output` /proc/self/fd/N) is staged before
    /// it takes its name and published after: the staging link is removed only then, since a file
    /// that had a name and lost its last one can never be named again.
    func stage(
        _ key: String, file output: String, sha256 known: String? = nil, range: (offset: Int64, size: Int64)? = nil,
        extras: [String: Data] = [:]
    ) -> (() -> Void)? {
        guard let sha256 = known ?? (try? SHA256Hex.of(file: output)) else { return nil }
        let temporary = directory + "/tmp"
        try? FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        ScratchDirectory.sweepAbandoned(in: temporary)
        guard let staging = try? ScratchDirectory(label: "gvlt-entry", in: temporary) else { return nil }
        // The entry is a directory inside the staging one, which keeps its owner lock to itself.
        let entry = staging.path + "/entry"
        let file = entry + "/" + fileName
        guard (try? FileManager.default.createDirectory(atPath: entry, withIntermediateDirectories: false)) != nil
        else { return nil }
        // AT_SYMLINK_FOLLOW: `output` may be /proc/self/fd/N, a disk not yet named.
        if linkat(AT_FDCWD, output, AT_FDCWD, file, AT_SYMLINK_FOLLOW) != 0 {
            // A copy of a magic link would be the link: such a file is not stored, not copied.
            guard !output.hasPrefix("/proc/"),
                (try? FileManager.default.copyItem(atPath: output, toPath: file)) != nil
            else { return nil }
        }
        var extras = extras
        if let range { extras["range"] = Data("\(range.offset) \(range.size)\n".utf8) }
        guard FileManager.default.createFile(atPath: entry + "/sha256", contents: Data((sha256 + "\n").utf8))
        else { return nil }
        for (name, data) in extras {
            guard FileManager.default.createFile(atPath: entry + "/" + name, contents: data) else { return nil }
        }
        TestTrap.reach("cache-store-" + URL(fileURLWithPath: directory).lastPathComponent)
        let destination = directory + "/" + key
        return {
            // A racing build may have published the same entry first; its bytes are the same.
            _ = rename(entry, destination)
            withExtendedLifetime(staging) {}
        }
    }

    /// Whether entries would be on the file system of the open file `fd` (so that it can be
    /// hard-linked in). Creates the cache's directory for it.
    func sameFileSystem(as fd: Int32) -> Bool {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var file = stat()
        var here = stat()
        return fstat(fd, &file) == 0 && stat(directory, &here) == 0 && file.st_dev == here.st_dev
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
