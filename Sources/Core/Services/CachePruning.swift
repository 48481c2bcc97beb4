import Foundation

/// The cache's areas, what they hold on disk (`gvlt cache du`), and the size bound of the build
/// caches, kept by evicting their least recently used entries (`gvlt cache prune`, and after every
/// build that stored something).
///
/// Only the build caches are evicted by size: their entries are rebuilt from the inputs at the cost
/// of one compression. Kernels, drivers and pulled blobs are downloads, removed only by `--all`.
public struct CachePruning {
    public struct Area: Sendable {
        public var name: String
        /// Entries sit one directory level down (`XX/KEY`) rather than directly in the area.
        public var sharded: Bool
        public var evictable: Bool
        public var summary: String
    }

    public struct Usage: Codable, Equatable, Sendable {
        public var area: String
        public var summary: String
        public var entries: Int
        public var bytes: Int64
    }

    public struct Outcome: Codable, Equatable, Sendable {
        public var removedEntries: Int
        public var freedBytes: Int64
        public var remainingBytes: Int64
        public var limitBytes: Int64
    }

    /// Whole SquashFS roots by the digest of their inputs, each with the index of its compressed
    /// blocks, which later builds reuse by content (LinuxVM builds).
    public static let squashfsRoots = "squashfs-roots"
    /// Boot partitions by the digest of their inputs (LinuxVM builds).
    public static let bootPartitions = "boot-partitions"
    /// Where an entry goes to be deleted, inside an area's `tmp`: `PREFIX<pid>-<n>`.
    public static let asidePrefix = "gone-"

    public static let areas: [Area] = [
        Area(
            name: squashfsRoots, sharded: false, evictable: true,
            summary: "SquashFS roots and their block indexes (build cache)"),
        Area(name: bootPartitions, sharded: false, evictable: true, summary: "boot partitions (build cache)"),
        Area(name: "blobs", sharded: true, evictable: false, summary: "pulled registry blobs and task images"),
        Area(
            name: "entries", sharded: true, evictable: false,
            summary: "kernels and their slimmed modules, drivers, Nanos releases"),
        Area(name: "refs", sharded: true, evictable: false, summary: "tag and URL records")
    ]

    /// Sizes as `--size` takes them (`512M`, `10G`, bytes), and 0 for an empty cache.
    public static let sizeDialect: ByteSize.Dialect = {
        var dialect = ByteSize.disk
        dialect.allowsZero = true
        return dialect
    }()

    /// The build caches' bound when none is given: `$GVLT_CACHE_MAX_SIZE`, else 10 GiB.
    public static func defaultLimit(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> Int64
    {
        guard let text = environment["GVLT_CACHE_MAX_SIZE"], !text.isEmpty else { return 10 << 30 }
        guard let bytes = ByteSize.parse(text, Self.sizeDialect).flatMap({ Int64(exactly: $0) }) else {
            throw InputError(
                "GVLT_CACHE_MAX_SIZE=\(text) is not a size", hint: "e.g. GVLT_CACHE_MAX_SIZE=20G, or unset it for 10G")
        }
        return bytes
    }

    public let cache: CacheDirectory

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    private struct Entry {
        var path: String
        var bytes: Int64
        /// mtime in nanoseconds: entries are marked on every use.
        var lastUse: Int64
    }

    public func usage() -> [Usage] {
        Self.areas.map { area in
            let entries = entries(of: area)
            return Usage(
                area: area.name, summary: area.summary, entries: entries.count,
                bytes: entries.reduce(0) { $0 + $1.bytes } + Self.diskUsage(cache.root + "/" + area.name + "/tmp"))
        }
    }

    /// Evicts the build caches' least recently used entries until they hold at most `limit` bytes;
    /// `everything` also empties the download areas. Leftovers of builds that died are swept first.
    @discardableResult
    public func prune(to limit: Int64, everything: Bool = false) -> Outcome {
        sweepLeftovers()
        var removed = 0
        var freed: Int64 = 0
        for area in Self.areas where everything && !area.evictable {
            for entry in entries(of: area) where remove(entry.path, area: area) {
                removed += 1
                freed += entry.bytes
            }
        }
        var candidates: [(Area, Entry)] = Self.areas.filter(\.evictable).flatMap { area in
            entries(of: area).map { (area, $0) }
        }
        var total = candidates.reduce(Int64(0)) { $0 + $1.1.bytes }
        candidates.sort { ($0.1.lastUse, $0.1.path) < ($1.1.lastUse, $1.1.path) }
        for (area, entry) in candidates where total > limit {
            guard remove(entry.path, area: area) else { continue }
            removed += 1
            freed += entry.bytes
            total -= entry.bytes
        }
        return Outcome(removedEntries: removed, freedBytes: freed, remainingBytes: total, limitBytes: limit)
    }

    /// Removes what builds killed before they finished left in the areas' `tmp`: staging directories
    /// whose owner lock is free, and entries renamed aside by a process that is gone.
    public func sweepLeftovers() {
        for area in Self.areas where area.evictable {
            let temporary = cache.root + "/" + area.name + "/tmp"
            ScratchDirectory.sweepAbandoned(in: temporary)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] {
                let digits = name.hasPrefix(Self.asidePrefix) ? name.dropFirst(Self.asidePrefix.count) : name[...]
                guard let pid = digits.split(separator: "-").first.flatMap({ pid_t($0) }), pid > 0,
                    kill(pid, 0) != 0, errno == ESRCH
                else { continue }
                try? FileManager.default.removeItem(atPath: temporary + "/" + name)
            }
        }
    }

    private func entries(of area: Area) -> [Entry] {
        let base = cache.root + "/" + area.name
        let fm = FileManager.default
        var paths: [String] = []
        for name in (try? fm.contentsOfDirectory(atPath: base)) ?? [] where name != "tmp" {
            let path = base + "/" + name
            if area.sharded {
                var info = stat()
                if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
                    paths += ((try? fm.contentsOfDirectory(atPath: path)) ?? []).map { path + "/" + $0 }
                    continue
                }
            }
            paths.append(path)
        }
        return paths.compactMap { path in
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            return Entry(
                path: path, bytes: Self.diskUsage(path),
                lastUse: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
        }
    }

    private func remove(_ path: String, area: Area) -> Bool {
        let temporary = cache.root + "/" + area.name + "/tmp"
        try? FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        let aside = temporary + "/\(Self.asidePrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(path, aside) == 0 else { return false }
        try? FileManager.default.removeItem(atPath: aside)
        return true
    }

    /// Bytes allocated on disk, for a file or a directory tree; symlinks are not followed.
    static func diskUsage(_ path: String) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        var total = Int64(info.st_blocks) * 512
        guard info.st_mode & S_IFMT == S_IFDIR else { return total }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            total += diskUsage(path + "/" + name)
        }
        return total
    }
}
