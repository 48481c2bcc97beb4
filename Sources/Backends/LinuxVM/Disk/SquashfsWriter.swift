import CSquashfs
import Core
import Foundation

/// Writes a tree as SquashFS in-process, through libsquashfs: its block processor compresses the
/// data on `jobs` threads, packs tails into fragment blocks and drops duplicate blocks, and with a
/// `SquashfsBlockCache` it compresses only the blocks the cache has not seen.
///
/// A file of a block or more keeps its last partial block to itself (as mksquashfs does by
/// default) instead of sharing a fragment block, so a rebuild after one program changed size moves
/// no other file's tail and recompresses only that program's blocks.
struct SquashfsWriter {
    var compressor: RootFilesystem.SquashfsCompressor
    var blockSize: UInt32 = 128 << 10
    /// The super block's time stamp.
    var mtime: UInt32
    var jobs: Int
    var cache: SquashfsBlockCache?

    struct Report {
        var blockHits: UInt64 = 0
        var blockMisses: UInt64 = 0
        /// With a cache: the index of this root's blocks, for its cache entry.
        var blockIndex: Data?
        /// The root's size in bytes, padded to 4 KiB as its file is.
        var size: Int64 = 0
    }

    /// The configuration bytes libsquashfs compresses with, for cache keys; nil for a compressor this
    /// libsquashfs does not have (lzo: squashfs-tools-ng keeps it out of the library).
    static func configuration(_ compressor: RootFilesystem.SquashfsCompressor, blockSize: UInt32) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let status = bytes.withUnsafeMutableBufferPointer {
            gvlt_sqfs_compressor_config(compressor.rawValue, blockSize, $0.baseAddress!)
        }
        return status == 0 ? bytes : nil
    }

    /// What else decides the compressed bytes: the compression libraries this process loaded (their
    /// file names carry their versions), and gvlt's own version for a static build, which links them in.
    static var toolVersion: String {
        // procfs files report a size of 0, so they are read until read(2) says the end.
        var maps = [UInt8]()
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { break }
                maps += chunk[0..<got]
            }
            close(fd)
        }
        let libraries = Set(
            String(decoding: maps, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
                guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last, path.hasPrefix("/")
                else { return nil }
                let name = String(path.split(separator: "/").last!)
                let prefixes = ["libsquashfs.so", "libzstd.so", "liblzma.so", "libz.so", "liblz4.so"]
                return prefixes.contains(where: name.hasPrefix) ? name : nil
            })
        return (["gvlt \(Installation.version) \(Installation.sourceCommit)"] + libraries.sorted()).joined(
            separator: "\n")
    }

    /// Writes the root to `path`, and with `image` into that open file at that offset too; with an
    /// image, `path` may be nil, for a root that needs no file of its own.
    @discardableResult
    func write(_ tree: FileTree, to path: String?, image: (fd: Int32, offset: Int64)? = nil) throws -> Report {
        precondition(path != nil || image != nil, "a root is written somewhere")
        let place = path ?? "the disk image"
        let layout = try Layout(tree, blockSize: blockSize)
        defer { layout.release() }
        var callbacks = cache?.callbacks ?? gvlt_sqfs_block_cache()
        let caching = cache != nil
        var writer: OpaquePointer?
        var what: UnsafePointer<CChar>?
        let created = withUnsafePointer(to: &callbacks) { pointer -> Int32 in
            gvlt_sqfs_writer_create(
                path, image?.fd ?? -1, UInt64(max(0, image?.offset ?? 0)), compressor.rawValue, blockSize, mtime,
                UInt32(max(1, jobs)), UInt32(layout.nodes.count),
                caching ? pointer : nil, &writer, &what)
        }
        guard created == 0, let writer else { throw failure(created, what, path: place) }
        defer { gvlt_sqfs_writer_destroy(writer) }

        for (index, content) in layout.files {
            var status = gvlt_sqfs_writer_begin_file(writer, index, content.size >= Int64(blockSize) ? 1 : 0)
            if status == 0 {
                try content.stream { chunk in
                    guard status == 0, chunk.count > 0 else { return }
                    status = gvlt_sqfs_writer_append(writer, chunk.baseAddress, chunk.count)
                }
            }
            if status == 0 { status = gvlt_sqfs_writer_end_file(writer) }
            guard status == 0 else {
                throw failure(status, nil, path: place, entry: "/" + layout.paths[Int(index)])
            }
        }
        let data = gvlt_sqfs_writer_finish_data(writer)
        guard data == 0 else { throw failure(data, nil, path: place) }
        // Where each block went is known now, and only until the inodes are written.
        let index = cache?.index(writer: writer)
        var node = UInt32.max
        let finished = layout.nodes.withUnsafeBufferPointer { nodes in
            layout.entries.withUnsafeBufferPointer { entries in
                layout.xattrs.withUnsafeBufferPointer { xattrs in
                    gvlt_sqfs_writer_finish(
                        writer, nodes.baseAddress, UInt32(nodes.count), entries.baseAddress, xattrs.baseAddress,
                        &what, &node)
                }
            }
        }
        guard finished == 0 else {
            throw failure(
                finished, what, path: place, entry: node == .max ? nil : "/" + layout.paths[Int(node)])
        }
        // checked: a file's size is at most Int64.max
        var report = Report(blockIndex: index, size: Int64(gvlt_sqfs_writer_size(writer)))
        gvlt_sqfs_writer_cache_counts(writer, &report.blockHits, &report.blockMisses)
        return report
    }

    private func failure(_ status: Int32, _ what: UnsafePointer<CChar>?, path: String, entry: String? = nil) -> Error {
        let step = what.map { String(cString: $0) } ?? "writing the file data"
        let place = entry.map { " at \($0)" } ?? ""
        switch status {
        case -2:  // SQFS_ERROR_IO
            return SystemError("cannot write the SquashFS root (\(step))", path: path, errno: errno)
        case -6:  // SQFS_ERROR_UNSUPPORTED
            return UnsupportedError(
                "the root tree cannot be stored as SquashFS\(place): \(step) is not supported (an extended attribute outside user., trusted. and security.?)",
                hint: "remove it from the image, or build with --root-fs ext4")
        default:
            return InputError(
                "the root tree cannot be stored as SquashFS\(place): \(step) failed (libsquashfs error \(status))",
                hint: "build with --squashfs-writer tar2sqfs to compare; please report this")
        }
    }
}

/// The tree as libsquashfs' writer takes it: inodes in an order where each directory follows what it
/// lists (numbers 1...n, the root last), their entries and extended attributes, and the regular files
/// in the order their data is written. Strings are C copies, freed by `release`.
private final class Layout {
    var nodes: [gvlt_sqfs_node] = []
    var entries: [gvlt_sqfs_entry] = []
    var xattrs: [gvlt_sqfs_xattr] = []
    var files: [(UInt32, FileContent)] = []
    /// Each node's first path, for errors.
    var paths: [String] = []
    private var allocations: [UnsafeMutableRawPointer] = []

    init(_ tree: FileTree, blockSize: UInt32) throws {
        var names: [ObjectIdentifier: UInt32] = [:]
        Self.countNames(tree.root, into: &names)
        var index: [ObjectIdentifier: UInt32] = [:]

        final class Frame {
            let directory: FileTree.Directory
            let name: FileTree.Name
            let path: String
            let names: [FileTree.Name]
            var next = 0
            var listed: [(name: FileTree.Name, node: UInt32)] = []
            var subdirectories: [UInt32] = []
            init(_ directory: FileTree.Directory, name: FileTree.Name, path: String) {
                self.directory = directory
                self.name = name
                self.path = path
                names = directory.children.keys.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            }
        }
        var stack = [Frame(tree.root, name: FileTree.Name(""), path: "")]
        while let frame = stack.last {
            if frame.next < frame.names.count {
                let name = frame.names[frame.next]
                frame.next += 1
                let path = frame.path.isEmpty ? name.string : frame.path + "/" + name.string
                guard name.bytes.count <= 256 else {
                    throw InputError(
                        "/\(path): the name is \(name.bytes.count) bytes long, and SquashFS holds names of up to 256",
                        hint: "shorten it, or build with --root-fs ext4")
                }
                switch frame.directory.children[name]! {
                case .directory(let directory):
                    stack.append(Frame(directory, name: name, path: path))
                case .leaf(let inode):
                    let id = ObjectIdentifier(inode)
                    if let existing = index[id] {
                        frame.listed.append((name, existing))
                    } else {
                        let number = try addLeaf(inode, path: path, names: names[id] ?? 1)
                        index[id] = number
                        frame.listed.append((name, number))
                    }
                }
            } else {
                stack.removeLast()
                let number = try addDirectory(frame)
                for child in frame.subdirectories { nodes[Int(child)].parent = number }
                if let parent = stack.last {
                    parent.listed.append((frame.name, number))
                    parent.subdirectories.append(number)
                } else {
                    nodes[Int(number)].parent = number
                }
            }
        }
        guard nodes.count < Int(UInt32.max) else {
            throw InputError("the root tree has more inodes than SquashFS can number")
        }

        func addDirectory(_ frame: Frame) throws -> UInt32 {
            let first = UInt32(entries.count)
            for (name, node) in frame.listed {
                entries.append(gvlt_sqfs_entry(name: cString(name.bytes), inode: node))
            }
            var node = try baseNode(frame.directory.metadata, type: S_IFDIR, path: frame.path)
            node.nlink = UInt32(2 + frame.subdirectories.count)
            node.first_entry = first
            node.entry_count = UInt32(frame.listed.count)
            return append(node, path: frame.path)
        }

        func addLeaf(_ inode: FileTree.Inode, path: String, names: UInt32) throws -> UInt32 {
            var node: gvlt_sqfs_node
            switch inode.kind {
            case .regularFile(let content):
                node = try baseNode(inode.metadata, type: S_IFREG, path: path)
                files.append((UInt32(nodes.count), content))
            case .symlink(let target):
                node = try baseNode(inode.metadata, type: S_IFLNK, path: path)
                let bytes = Array(target.utf8)
                node.target = UnsafePointer(cString(bytes))
                node.target_size = UInt32(bytes.count)
            case .characterDevice(let major, let minor), .blockDevice(let major, let minor):
                let isBlock: Bool
                if case .blockDevice = inode.kind { isBlock = true } else { isBlock = false }
                node = try baseNode(inode.metadata, type: isBlock ? S_IFBLK : S_IFCHR, path: path)
                guard major < 1 << 12, minor < 1 << 20 else {
                    throw InputError(
                        "/\(path): device \(major):\(minor) does not fit SquashFS's 12-bit major and 20-bit minor numbers"
                    )
                }
                node.devno = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)
            case .fifo:
                node = try baseNode(inode.metadata, type: S_IFIFO, path: path)
            case .socket:
                node = try baseNode(inode.metadata, type: S_IFSOCK, path: path)
            case .directory, .hardlink:
                preconditionFailure("a tree's leaves are never directories or hard links")
            }
            node.nlink = names
            return append(node, path: path)
        }

        func baseNode(_ metadata: FileMetadata, type: mode_t, path: String) throws -> gvlt_sqfs_node {
            var node = gvlt_sqfs_node()
            node.mode = UInt16(type) | metadata.permissions
            node.uid = metadata.uid
            node.gid = metadata.gid
            // SquashFS keeps whole seconds in 32 bits.
            node.mtime = UInt32(clamping: max(0, metadata.mtime.seconds))
            node.first_xattr = UInt32(xattrs.count)
            for (key, value) in metadata.xattrs.sorted(by: { $0.key < $1.key }) {
                xattrs.append(
                    gvlt_sqfs_xattr(
                        key: UnsafePointer(cString(Array(key.utf8))), value: UnsafeRawPointer(copy(value)),
                        size: UInt32(value.count)))
            }
            node.xattr_count = UInt32(xattrs.count) - node.first_xattr
            return node
        }

        func append(_ node: gvlt_sqfs_node, path: String) -> UInt32 {
            nodes.append(node)
            paths.append(path)
            return UInt32(nodes.count - 1)
        }
    }

    private static func countNames(_ root: FileTree.Directory, into counts: inout [ObjectIdentifier: UInt32]) {
        var pending = [root]
        while let directory = pending.popLast() {
            for node in directory.children.values {
                switch node {
                case .directory(let child): pending.append(child)
                case .leaf(let inode): counts[ObjectIdentifier(inode), default: 0] += 1
                }
            }
        }
    }

    private func cString(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar> {
        let pointer = copy(bytes + [0])
        return pointer.assumingMemoryBound(to: CChar.self)
    }

    private func copy(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { pointer.copyMemory(from: base, byteCount: bytes.count) }
        }
        allocations.append(pointer)
        return pointer
    }

    func release() {
        for pointer in allocations { pointer.deallocate() }
        allocations = []
    }
}
