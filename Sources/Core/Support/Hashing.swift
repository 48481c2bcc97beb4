import Crypto
import Foundation

/// sha256 of bytes and files, for backends that derive identifiers from content.
public enum SHA256Hex {
    public static func of(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hexString }

    public static func of(data: Data) -> String { SHA256.hash(data: data).hexString }

    /// Streams the file; never holds it in memory whole.
    public static func of(file path: String) throws -> String {
        try of(try SharedFile.openRegular(path, what: "file", followSymlinks: true))
    }

    /// The same for an open file, which may have no name (an output not yet committed).
    public static func of(_ file: SharedFile) throws -> String {
        var hasher = SHA256()
        try FileContent.blobRange(file: file, offset: 0, length: file.size).stream { hasher.update(bufferPointer: $0) }
        return hasher.finalize().hexString
    }
}

extension SHA256Hex {
    /// A digest of a directory tree's content: every entry's relative path, kind, executable bit and
    /// bytes (or link target), in byte order of names. Owners, times and other mode bits are left
    /// out: they change with checkouts and copies, not with what the tree builds. `skip` names
    /// top-level entries to leave out (e.g. `.git`).
    public static func of(directoryTree root: String, skip: Set<String> = []) throws -> String {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        func feed(_ text: String) { hasher.update(data: Array(text.utf8) + [0]) }
        func walk(_ relative: String) throws {
            let directory = relative.isEmpty ? root : root + "/" + relative
            guard let handle = opendir(directory) else {
                throw SystemError("cannot read directory", path: directory, errno: errno)
            }
            var names: [[UInt8]] = []
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                if name == [46] || name == [46, 46] { continue }
                names.append(name)
            }
            closedir(handle)
            names.sort { $0.lexicographicallyPrecedes($1) }
            for name in names {
                let nameText = String(decoding: name, as: UTF8.self)
                if relative.isEmpty && skip.contains(nameText) { continue }
                let path = relative.isEmpty ? nameText : relative + "/" + nameText
                let full = root + "/" + path
                var st = stat()
                guard lstat(full, &st) == 0 else { throw SystemError("cannot stat", path: full, errno: errno) }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    feed("d \(path)")
                    try walk(path)
                case S_IFLNK:
                    var target = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
                    let count = readlink(full, &target, target.count - 1)
                    guard count >= 0 else { throw SystemError("cannot read link", path: full, errno: errno) }
                    feed("l \(path) \(String(decoding: target.prefix(count), as: UTF8.self))")
                case S_IFREG:
                    feed("f \(path) \(st.st_mode & 0o111 != 0 ? "x" : "-") \(st.st_size)")
                    let fd = open(full, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw SystemError("cannot open", path: full, errno: errno) }
                    defer { close(fd) }
                    while true {
                        let got = read(fd, buffer.baseAddress, buffer.count)
                        if got < 0 && errno == EINTR { continue }
                        guard got >= 0 else { throw SystemError("cannot read", path: full, errno: errno) }
                        if got == 0 { break }
                        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
                    }
                default:
                    feed("o \(path) \(st.st_mode & S_IFMT)")
                }
            }
        }
        try walk("")
        return hasher.finalize().hexString
    }
}
