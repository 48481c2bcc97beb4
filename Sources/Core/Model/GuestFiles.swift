import Foundation

/// Tree entries for files taken from the host, with fixed metadata so images stay reproducible.
/// Accelerators build their contributions with it.
public final class GuestFiles {
    public private(set) var entries: [FileEntry] = []
    public let mtime: Timestamp

    public init(mtime: Timestamp) { self.mtime = mtime }

    public func add(host: String, at path: String, permissions: UInt16 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0) throws
    {
        var st = stat()
        guard stat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw SystemError("cannot read", path: host, errno: errno)
        }
        entries.append(
            FileEntry(
                path: path,
                kind: .regularFile(.hostFile(path: host, size: Int64(st.st_size), identity: FileIdentity(st))),
                metadata: FileMetadata(permissions: permissions, uid: uid, gid: gid, mtime: mtime)))
    }

    public func link(_ path: String, to target: String, uid: UInt32 = 0, gid: UInt32 = 0) {
        entries.append(
            FileEntry(
                path: path, kind: .symlink(target: target),
                metadata: FileMetadata(permissions: 0o777, uid: uid, gid: gid, mtime: mtime)))
    }

    public func directory(_ path: String, permissions: UInt16 = 0o755, uid: UInt32 = 0, gid: UInt32 = 0) {
        entries.append(
            FileEntry(
                path: path, kind: .directory,
                metadata: FileMetadata(permissions: permissions, uid: uid, gid: gid, mtime: mtime)))
    }

    /// Writes `text` to a file in `scratch` and adds it at `path`.
    public func add(text: String, at path: String, scratch: String, permissions: UInt16 = 0o644) throws {
        let host = scratch + "/guest-" + path.replacingOccurrences(of: "/", with: "_")
        try Data(text.utf8).write(to: URL(fileURLWithPath: host))
        try add(host: host, at: path, permissions: permissions)
    }
}
