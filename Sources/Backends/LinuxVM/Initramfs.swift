import Core
import Foundation

/// The initramfs of an image whose kernel needs modules before the root can be mounted: the init at
/// `/init`, the modules at their `lib/modules/<release>/…` paths, and `etc/gvlt/modules`, the load order.
/// A cpio "newc" archive written by libarchive; every entry is root-owned with a fixed mtime, in a
/// fixed order, so the same inputs give the same bytes.
public struct Initramfs {
    public var release: String
    /// Module paths relative to the modules tree, in load order.
    public var modules: [(name: String, relativePath: String)]
    public var modulesDirectory: String
    public var initBinary: String
    public var mtime: Timestamp
    /// Where slimmed copies of the modules go (ModuleSlimmer); nil keeps the modules as they are.
    public var slimInto: String?
    /// Where slimmed copies are kept for later builds; nil makes them anew in `slimInto`.
    public var moduleCache: CacheDirectory?
    public var note: (String) -> Void = { _ in }

    public init(
        release: String, modules: [(name: String, relativePath: String)], modulesDirectory: String, initBinary: String,
        mtime: Timestamp = .epoch, slimInto: String? = nil
    ) {
        self.release = release
        self.modules = modules
        self.modulesDirectory = modulesDirectory
        self.initBinary = initBinary
        self.mtime = mtime
        self.slimInto = slimInto
    }

    /// The file the init reads to know which modules to load, one path per line, in order.
    public static let loadOrderPath = "etc/gvlt/modules"

    /// The tree that goes into the archive.
    public func tree() throws -> FileTree {
        let tree = FileTree(rootMetadata: FileMetadata(permissions: 0o755, mtime: mtime))
        func add(_ path: String, _ content: FileContent, permissions: UInt16) throws {
            let components = path.split(separator: "/").map(String.init)
            for depth in 1..<components.count {
                try tree.setDirectory(
                    Array(components.prefix(depth)), metadata: FileMetadata(permissions: 0o755, mtime: mtime))
            }
            try tree.setLeaf(
                components, kind: .regularFile(content), metadata: FileMetadata(permissions: permissions, mtime: mtime))
        }
        try add("init", try Self.hostFile(initBinary), permissions: 0o755)
        // The kernel opens /dev/console for PID 1's stdin/stdout/stderr before any devtmpfs exists.
        try tree.setDirectory(["dev"], metadata: FileMetadata(permissions: 0o755, mtime: mtime))
        try tree.setLeaf(
            ["dev", "console"], kind: .characterDevice(major: 5, minor: 1),
            metadata: FileMetadata(permissions: 0o600, mtime: mtime))
        var order = ""
        var noted = false
        for module in modules {
            let path = "lib/modules/\(release)/\(module.relativePath)"
            var source = modulesDirectory + "/" + module.relativePath
            if let slimInto {
                try FileManager.default.createDirectory(atPath: slimInto, withIntermediateDirectories: true)
                source = try ModuleSlimmer.slim(source, into: slimInto, cache: moduleCache) { message in
                    if !noted { note(message) }
                    noted = true
                }
            }
            try add(path, try Self.hostFile(source), permissions: 0o644)
            order += "/" + path + "\n"
        }
        let list = try SharedFile.anonymous(in: NSTemporaryDirectory())
        try Array(order.utf8).withUnsafeBytes { try list.write($0, at: 0) }
        try add(
            Self.loadOrderPath, .blobRange(file: list, offset: 0, length: Int64(order.utf8.count)), permissions: 0o644)
        return tree
    }

    /// Writes the cpio archive to `path` atomically.
    public func write(to path: String, force: Bool) throws -> (sha256: String, bytes: Int64) {
        let output = try AtomicOutput(path: path, force: force)
        let sink = FileSink(fd: output.fd, displayName: output.path)
        let writer = try ArchiveWriter(format: .cpioNewc, sink: sink, label: path)
        // The root is implied; the kernel's unpacker creates nothing for it.
        for entry in try tree().entries() where !entry.path.isEmpty {
            try writer.write(entry)
        }
        try writer.finish()
        try output.commit()
        return (sink.digest(), sink.byteCount)
    }

    static func hostFile(_ path: String) throws -> FileContent {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw InputError("\(path) is missing or not a regular file")
        }
        return .hostFile(
            path: URL(fileURLWithPath: path).resolvingSymlinksInPath().path, size: Int64(st.st_size),
            identity: FileIdentity(st))
    }
}
