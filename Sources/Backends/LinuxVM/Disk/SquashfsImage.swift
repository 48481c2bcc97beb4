import Core
import Foundation

/// Partition 2 of a Firestarter disk: the root tree as SquashFS, never extracted onto the host;
/// owners, devices and setuid bits come from the tree, not from the build user.
///
/// Two writers: `native` writes it in-process through libsquashfs, with the build caches (whole
/// roots by input digest, compressed blocks by content); `tool` streams the tree as a tar into
/// `tar2sqfs` (squashfs-tools-ng), or `mksquashfs -tar` when that is what is installed, and uses no cache.
public struct SquashfsImage {
    public enum Writer: String, CaseIterable, Sendable {
        case native, tool
    }

    public var compressor: RootFilesystem.SquashfsCompressor
    public var jobs: Int
    public var writer: Writer
    /// The build caches' home; nil for none (`--no-cache`).
    public var cache: CacheDirectory?
    /// The super block's time stamp (the tool writer's is 0).
    public var mtime: UInt32 = 0
    public var blockSize: UInt32 = 128 << 10

    public static let tar2sqfs = HostTool("tar2sqfs", apt: "squashfs-tools-ng", purpose: "SquashFS root file systems")
    public static let mksquashfs = HostTool("mksquashfs", apt: "squashfs-tools", purpose: "SquashFS root file systems")

    public init(
        compressor: RootFilesystem.SquashfsCompressor, writer: Writer = .native, cache: CacheDirectory? = nil,
        jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.compressor = compressor
        self.writer = writer
        self.cache = cache
        self.jobs = max(1, jobs)
    }

    /// The packed root: where it is, how large, and what the caches did.
    public struct Result {
        /// The file holding the root (a root file system, or a cached disk with the root at
        /// `offset`); nil for a root written into the disk image only.
        public var path: String?
        public var offset: Int64 = 0
        public var size: Int64
        public var cache: BuildCacheReport?
        /// Whether the root was also written into the disk image passed to `build`.
        public var inImage = false
        /// What is left of the build cache's work when `build` was asked to leave it.
        public var storeInCache: PendingStore?
    }

    /// Storing a compressed root in the build cache, left to the caller. Best effort, like every store.
    public enum PendingStore {
        /// Store `root.fs`: it is read once more to hash it, so the caller can do that while it
        /// completes the disk instead of after.
        case file(() -> Void)
        /// The root lives in the disk image only: the disk itself is stored (hard-linked, with the
        /// root's range and the disk's sha256, which completing it computes), so the root's bytes
        /// are written and hashed once. Called before the disk takes its name; what it returns
        /// publishes the entry, and is called after.
        case disk((DiskImage.Committing) -> (() -> Void)?)
    }

    /// Packs `tree` as `scratch/root.fs` (or, on a cache hit, the cached file holding it). The
    /// native writer also writes a root it compresses into `image` (an open disk image, at its root
    /// partition's offset); a root from the cache is not. Such a root is written into the image only
    /// when it needs no file of its own: without a cache, or with one on the image's file system,
    /// which then stores the disk (`PendingStore.disk`). With `leavingCacheStore` a cache miss returns
    /// before the root is stored (`Result.storeInCache`); a root in the disk only always does.
    public func build(
        _ tree: FileTree, scratch: String, image: (fd: Int32, offset: Int64)? = nil, leavingCacheStore: Bool = false
    ) throws -> Result {
        let output = scratch + "/root.fs"
        guard writer == .native else {
            try build(tree, to: output)
            return Result(path: output, size: try Self.size(of: output), cache: nil)
        }
        guard let configuration = SquashfsWriter.configuration(compressor, blockSize: blockSize) else {
            throw UnsupportedError(
                "the native SquashFS writer has no \(compressor.rawValue) compressor (libsquashfs leaves it out)",
                hint: "add --squashfs-writer tool (tar2sqfs), or pick another --squashfs-compressor")
        }
        var native = SquashfsWriter(compressor: compressor, blockSize: blockSize, mtime: mtime, jobs: jobs)
        guard let cache else {
            let path = image == nil ? output : nil
            let written = try native.write(tree, to: path, image: image)
            return Result(
                path: path, size: written.size, cache: BuildCacheReport(enabled: false), inImage: image != nil)
        }
        let toolVersion = SquashfsWriter.toolVersion
        let roots = BuildFileCache.roots(cache)
        let keyPrefix = SquashfsBlockCache.keyPrefix(compressorConfiguration: configuration, toolVersion: toolVersion)
        let plan = try SquashfsBlockPlan(tree, blockSize: blockSize, keyPrefix: keyPrefix, jobs: jobs)
        let key = BuildFileCache.key([
            "gvlt-squashfs-root-v2", plan.treeDigest, configuration.hexString, toolVersion, String(blockSize),
            String(mtime)
        ])
        var report = BuildCacheReport(enabled: true, key: key)
        var damaged = false
        if let hit = try roots.lookup(key, at: output, damaged: &damaged) {
            report.root = .hit
            return Result(path: hit.path, offset: hit.offset, size: hit.size, cache: report)
        }
        report.root = .miss
        // The blocks of the most recently used roots: a rebuild's base is almost always among them.
        let blocks = SquashfsBlockCache(
            keyPrefix: keyPrefix, entries: roots.entries(limit: 16), repeated: plan.repeated)
        native.cache = blocks
        let diskOnly = image.map { roots.sameFileSystem(as: $0.fd) } ?? false
        let written = try native.write(tree, to: diskOnly ? nil : output, image: image)
        report.blocksReused = written.blockHits
        report.blocksCompressed = written.blockMisses
        report.damagedEntries = blocks.problems.damaged + blocks.problems.unreadableIndexes + (damaged ? 1 : 0)
        let extras = [SquashfsBlockCache.indexName: written.blockIndex ?? Data()]
        if diskOnly {
            let store = PendingStore.disk { disk in
                // A disk made far larger than its root (--size) would be hashed whole, holes and all,
                // at every use of the entry: its root is copied out and stored on its own instead.
                guard disk.bytes - disk.rootStart - disk.rootSize > 1 << 20 else {
                    return roots.stage(
                        key, file: disk.path, sha256: disk.sha256, range: (disk.rootStart, disk.rootSize),
                        extras: extras)
                }
                guard let file = try? SharedFile.openRegular(disk.path, what: "disk image", followSymlinks: true),
                    (try? Self.copy(file, range: (disk.rootStart, disk.rootSize), to: output)) != nil
                else { return nil }
                return roots.stage(key, file: output, extras: extras)
            }
            return Result(path: nil, size: written.size, cache: report, inImage: true, storeInCache: store)
        }
        let store = { roots.publish(key, file: output, extras: extras) }
        if !leavingCacheStore { store() }
        return Result(
            path: output, size: written.size, cache: report, inImage: image != nil,
            storeInCache: leavingCacheStore ? .file(store) : nil)
    }

    private static func copy(_ file: SharedFile, range: (offset: Int64, size: Int64), to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("cannot create", path: path, errno: errno) }
        let copy = SharedFile(fd: fd, displayName: path)
        var offset: Int64 = 0
        try FileContent.blobRange(file: file, offset: range.offset, length: range.size).stream { chunk in
            try copy.write(chunk, at: offset)
            offset += Int64(chunk.count)
        }
    }

    private static func size(of path: String) throws -> Int64 {
        try SharedFile.openRegular(path, what: "root file system", followSymlinks: false).size
    }

    /// The tool writer: the tree as a tar into tar2sqfs or mksquashfs.
    func build(_ tree: FileTree, to output: String) throws {
        let (tool, arguments): (String, [String])
        if let tar2sqfs = Self.tar2sqfs.locate() {
            // -s: a tar record it cannot store is an error, never a silent skip.
            tool = tar2sqfs
            arguments = ["-q", "-f", "-s", "-c", compressor.rawValue, "-j", String(jobs), output]
        } else if let mksquashfs = Self.mksquashfs.locate() {
            tool = mksquashfs
            arguments = [
                "-", output, "-tar", "-noappend", "-quiet", "-no-progress", "-comp", compressor.rawValue,
                "-processors", String(jobs), "-mkfs-time", "0"
            ]
        } else {
            throw MissingToolError(
                tool: "tar2sqfs", aptPackage: "squashfs-tools-ng", purpose: "SquashFS root file systems")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let input = Pipe()
        let messages = Pipe()
        process.standardInput = input
        process.standardOutput = messages
        process.standardError = messages
        // A 1 MiB pipe (Linux's default is 64 KiB) lets the tar writer and tar2sqfs run in larger steps.
        _ = fcntl(input.fileHandleForWriting.fileDescriptor, 1031 /* F_SETPIPE_SZ */, 1 << 20)
        let waitForExit = try process.runReturningWaiter()
        let token = Cleanup.shared.register(child: process.processIdentifier)
        defer { Cleanup.shared.unregister(token) }
        // The tool's messages are drained on another thread so it can never block on a full pipe.
        let messagesReader = PipeReader(messages.fileHandleForReading.fileDescriptor)
        var streamError: Error?
        do {
            try TarExporter().stream(
                tree, to: input.fileHandleForWriting.fileDescriptor, label: "the root tree for \(tool)")
        } catch {
            streamError = error
        }
        try? input.fileHandleForWriting.close()
        waitForExit()
        let text = String(decoding: messagesReader.finish(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw HostCommand.Failed(
                command: [URL(fileURLWithPath: tool).lastPathComponent] + arguments, status: process.terminationStatus,
                output: text, hint: "the root tree could not be packed as SquashFS")
        }
        if let streamError { throw streamError }
    }
}
