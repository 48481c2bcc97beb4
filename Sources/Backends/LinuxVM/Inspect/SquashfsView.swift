import CSquashfs
import Core
import Foundation

/// A SquashFS root read in place through libsquashfs, for `gvlt inspect`. Paths resolve inside the
/// image the way the guest's kernel would resolve them (symlinks followed there, `..` stopping at
/// the root), so nothing the image says can name a host file; reads and walks are bounded.
final class SquashfsView {
    let label: String
    private let fs: OpaquePointer
    private let file: SharedFile
    private let root: Inode

    /// The most symlinks one lookup follows, as Linux's MAXSYMLINKS.
    static let symlinkHops = 40

    /// One inode, freed with its owner.
    final class Inode {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { gvlt_sqfs_free(pointer) }

        var isDirectory: Bool { gvlt_sqfs_kind(pointer) == Int32(GVLT_SQFS_DIR) }
        var isFile: Bool { gvlt_sqfs_kind(pointer) == Int32(GVLT_SQFS_FILE) }
        var size: UInt64 { gvlt_sqfs_file_size(pointer) }
        /// The target of a symlink, nil for anything else.
        var symlinkTarget: String? {
            var length = 0
            guard let target = gvlt_sqfs_symlink_target(pointer, &length) else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: target, count: length), as: UTF8.self)
        }
    }

    struct Problem: UserFacingError {
        let message: String
        var hint: String? { "the image's root file system is damaged; rebuild it with gvlt build" }
    }

    /// The SquashFS that fills `length` bytes of `image` from `offset`.
    init(image: String, offset: Int64, length: Int64) throws {
        label = "\(image) (root partition)"
        file = try SharedFile.openReadOnly(image)
        var error: Int32 = 0
        var step: UnsafePointer<CChar>?
        guard offset >= 0, length >= 0,
            let fs = gvlt_sqfs_open(file.fd, UInt64(offset), UInt64(length), &error, &step)
        else {
            throw Problem(
                message:
                    "\(image): the root SquashFS cannot be read (\(step.map { String(cString: $0) } ?? "range"): libsquashfs error \(error))"
            )
        }
        self.fs = fs
        var rootPointer: OpaquePointer?
        guard gvlt_sqfs_root(fs, &rootPointer) == 0, let rootPointer else {
            gvlt_sqfs_close(fs)
            throw Problem(message: "\(image): the root SquashFS has no readable root directory")
        }
        root = Inode(rootPointer)
    }

    deinit { gvlt_sqfs_close(fs) }

    var compressor: String { String(cString: gvlt_sqfs_compressor(fs)) }
    var bytesUsed: UInt64 { gvlt_sqfs_bytes_used(fs) }

    /// The inode at `path` (absolute or relative to the root), following symlinks inside the image;
    /// nil when nothing is there.
    func resolve(_ path: String) throws -> Inode? {
        var chain = [root]
        var pending = Self.components(path)
        var hops = 0
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name == ".." {
                if chain.count > 1 { chain.removeLast() }
                continue
            }
            guard let directory = chain.last, directory.isDirectory else { return nil }
            var found: OpaquePointer?
            let status = name.withCString { gvlt_sqfs_lookup(fs, directory.pointer, $0, &found) }
            if status == 1 { return nil }
            guard status == 0, let found else {
                throw Problem(
                    message: "\(label): cannot read directory entries on the way to \(path) (error \(status))")
            }
            let child = Inode(found)
            if let target = child.symlinkTarget {
                hops += 1
                guard hops <= Self.symlinkHops else {
                    throw Problem(message: "\(label): \(path) goes through more than \(Self.symlinkHops) symlinks")
                }
                if target.hasPrefix("/") { chain = [root] }
                pending = Self.components(target) + pending
                continue
            }
            chain.append(child)
        }
        return chain.last
    }

    /// The bytes of the regular file at `path`, or nil when there is none; a file larger than
    /// `limit` is an error, as is something that is not a regular file.
    func contents(_ path: String, limit: Int) throws -> [UInt8]? {
        guard let inode = try resolve(path) else { return nil }
        guard inode.isFile else { throw Problem(message: "\(label): \(path) is not a regular file") }
        guard inode.size <= UInt64(limit) else {
            throw Problem(message: "\(label): \(path) is \(inode.size) bytes, more than the \(limit) inspect reads")
        }
        // checked: size <= limit, an Int (guard above)
        var bytes = [UInt8](repeating: 0, count: Int(inode.size))
        var done = 0
        while done < bytes.count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                gvlt_sqfs_read(
                    fs, inode.pointer, UInt64(done), buffer.baseAddress! + done,
                    UInt32(min(buffer.count - done, 1 << 20)))
            }
            guard got > 0 else { throw Problem(message: "\(label): \(path) cannot be read (error \(got))") }
            // checked: got is a positive Int32
            done += Int(got)
        }
        return bytes
    }

    /// Every non-directory path in the image, depth first in stored order, up to `limit` entries.
    func paths(limit: Int = 2_000_000) throws -> [String] {
        var out: [String] = []
        var pending: [(String, Inode)] = [("", root)]
        var seen = 0
        while let (prefix, directory) = pending.popLast() {
            guard gvlt_sqfs_open_dir(fs, directory.pointer) == 0 else {
                throw Problem(message: "\(label): directory /\(prefix) cannot be read")
            }
            var name = [CChar](repeating: 0, count: 257)
            var subdirectories: [(String, Inode)] = []
            while true {
                var found: OpaquePointer?
                let status = gvlt_sqfs_next(fs, &name, name.count, &found)
                if status > 0 { break }
                guard status == 0, let found else {
                    throw Problem(message: "\(label): directory /\(prefix) cannot be read (error \(status))")
                }
                seen += 1
                guard seen <= limit else { throw Problem(message: "\(label): more than \(limit) entries") }
                let inode = Inode(found)
                let path = prefix + "/" + String(cString: name)
                if inode.isDirectory { subdirectories.append((path, inode)) } else { out.append(path) }
            }
            pending.append(contentsOf: subdirectories.reversed())
        }
        return out
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init).filter { $0 != "." }
    }
}
