import Core
import Foundation

/// Tree entries for files taken from the host, with fixed metadata so images stay reproducible.
final class GuestFiles {
    var entries: [FileEntry] = []
    let mtime: Timestamp

    init(mtime: Timestamp) { self.mtime = mtime }

    func add(host: String, at path: String, permissions: UInt16 = 0o644) throws {
        var st = stat()
        guard stat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw SystemError("cannot read", path: host, errno: errno)
        }
        entries.append(FileEntry(path: path, kind: .regularFile(.hostFile(path: host, size: Int64(st.st_size), identity: FileIdentity(st))),
                                 metadata: FileMetadata(permissions: permissions, mtime: mtime)))
    }

    func link(_ path: String, to target: String) {
        entries.append(FileEntry(path: path, kind: .symlink(target: target), metadata: FileMetadata(permissions: 0o777, mtime: mtime)))
    }

    func add(text: String, at path: String, scratch: String) throws {
        let host = scratch + "/nvidia-" + path.replacingOccurrences(of: "/", with: "_")
        try Data(text.utf8).write(to: URL(fileURLWithPath: host))
        try add(host: host, at: path)
    }
}
