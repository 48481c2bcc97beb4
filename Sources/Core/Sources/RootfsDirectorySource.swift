import CHost
import Foundation

/// `--rootfs-dir DIR`: a directory taken as the image root. Symlinks are recorded, never followed.
///
/// Ownership: as root, uid/gid are kept as the directory has them. Without root, every file a user
/// creates is theirs, so files owned by the invoking user are recorded as root (0:0) and others keep
/// their ids. The `security.selinux` label is host policy, not image data, and is dropped; other
/// readable xattrs are kept.
public struct RootfsDirectorySource: ImageSource {
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var description: String { "rootfs-dir:\(directory)" }

    public func load(_ context: SourceContext) throws -> LoadedImage {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        var st = stat()
        guard lstat(root, &st) == 0 else {
            throw InputError("--rootfs-dir \(directory): \(String(cString: strerror(errno)))", hint: "check the path")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw InputError(
                "--rootfs-dir \(directory) is not a directory", hint: "give the directory that becomes the image's /")
        }
        let tree = FileTree(rootMetadata: metadata(root, st))
        var inodes: [FileIdentity: FileTree.Inode] = [:]
        try context.progress.step("scanning \(directory)") {
            try walk(root, components: [], tree: tree, inodes: &inodes)
        }
        return LoadedImage(tree: tree, runSpec: RunSpec(), origin: description)
    }

    private let runningAsRoot = geteuid() == 0
    private let invokingUser = (getuid(), getgid())

    private func metadata(_ path: String, _ st: stat) -> FileMetadata {
        var uid = st.st_uid
        var gid = st.st_gid
        if !runningAsRoot {
            if uid == invokingUser.0 { uid = 0 }
            if gid == invokingUser.1 { gid = 0 }
        }
        return FileMetadata(
            permissions: UInt16(st.st_mode & 0o7777), uid: uid, gid: gid,
            // checked: time_t is an Int64
            mtime: Timestamp(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: UInt32(st.st_mtim.tv_nsec)),
            xattrs: xattrs(path))
    }

    private func xattrs(_ path: String) -> [String: [UInt8]] {
        let size = llistxattr(path, nil, 0)
        guard size > 0 else { return [:] }
        var names = [CChar](repeating: 0, count: size)
        let got = llistxattr(path, &names, size)
        guard got > 0 else { return [:] }
        var result: [String: [UInt8]] = [:]
        for raw in names[0..<got].split(separator: 0) {
            let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if name == "security.selinux" { continue }
            let valueSize = lgetxattr(path, name, nil, 0)
            guard valueSize >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: valueSize)
            let read = lgetxattr(path, name, &value, valueSize)
            guard read >= 0 else { continue }
            result[name] = Array(value.prefix(read))
        }
        return result
    }

    private func walk(
        _ path: String, components: [String], tree: FileTree, inodes: inout [FileIdentity: FileTree.Inode]
    ) throws {
        guard let dir = opendir(path) else {
            throw InputError(
                "cannot read directory \(path): \(String(cString: strerror(errno)))",
                hint: "run gvlt as a user that can read the whole rootfs directory")
        }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String? in
                String(validatingCString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            guard let name else {
                closedir(dir)
                throw InputError(
                    "\(path) holds a file name that is not valid UTF-8",
                    hint: "rename it; image file names must be UTF-8")
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names.sorted() {
            let childPath = path + "/" + name
            let childComponents = components + [name]
            var st = stat()
            guard lstat(childPath, &st) == 0 else {
                throw InputError("cannot stat \(childPath): \(String(cString: strerror(errno)))")
            }
            let meta = metadata(childPath, st)
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR {
                try tree.setDirectory(childComponents, metadata: meta)
                try walk(childPath, components: childComponents, tree: tree, inodes: &inodes)
                continue
            }
            let identity = FileIdentity(st)
            if st.st_nlink > 1, let inode = inodes[identity] {
                try tree.link(childComponents, to: inode)
                continue
            }
            let kind: EntryKind
            switch type {
            case S_IFREG:
                guard access(childPath, R_OK) == 0 else {
                    throw InputError(
                        "cannot read \(childPath): permission denied",
                        hint: "run gvlt as a user that can read every file of the rootfs directory")
                }
                kind = .regularFile(
                    st.st_size == 0
                        // checked: off_t is an Int64
                        ? .empty : .hostFile(path: childPath, size: Int64(st.st_size), identity: FileIdentity(st)))
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(childPath, &buffer, Int(PATH_MAX))
                guard length >= 0 else {
                    throw InputError("cannot read symlink \(childPath): \(String(cString: strerror(errno)))")
                }
                kind = .symlink(
                    target: String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            case S_IFCHR:
                kind = .characterDevice(major: DeviceNumber.major(st.st_rdev), minor: DeviceNumber.minor(st.st_rdev))
            case S_IFBLK:
                kind = .blockDevice(major: DeviceNumber.major(st.st_rdev), minor: DeviceNumber.minor(st.st_rdev))
            case S_IFIFO: kind = .fifo
            case S_IFSOCK: kind = .socket
            default: throw InputError("\(childPath) has an unknown file type")
            }
            let inode = try tree.setLeaf(childComponents, kind: kind, metadata: meta)
            if st.st_nlink > 1 { inodes[identity] = inode }
        }
    }
}

/// glibc's major()/minor() are macros; this is their definition.
enum DeviceNumber {
    static func major(_ device: dev_t) -> UInt32 {
        let dev = UInt64(device)
        return UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
    }

    static func minor(_ device: dev_t) -> UInt32 {
        let dev = UInt64(device)
        return UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
    }
}
