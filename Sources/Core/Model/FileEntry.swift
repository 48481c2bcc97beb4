/// What an entry is. `hardlink` appears in listings (the second and later names of one file) and in
/// tar input; inside a `FileTree` the names of one file share a node instead.
public enum EntryKind: Sendable {
    case directory
    case regularFile(FileContent)
    case symlink(target: String)
    case hardlink(target: String)
    case characterDevice(major: UInt32, minor: UInt32)
    case blockDevice(major: UInt32, minor: UInt32)
    case fifo
    case socket

    /// A short name for listings and JSON.
    public var name: String {
        switch self {
        case .directory: return "dir"
        case .regularFile: return "file"
        case .symlink: return "symlink"
        case .hardlink: return "hardlink"
        case .characterDevice: return "chardev"
        case .blockDevice: return "blockdev"
        case .fifo: return "fifo"
        case .socket: return "socket"
        }
    }
}

/// One entry of a tree listing. `path` is relative to the image root with no leading `/`; the root is "".
public struct FileEntry: Sendable {
    public var path: String
    public var kind: EntryKind
    public var metadata: FileMetadata

    public init(path: String, kind: EntryKind, metadata: FileMetadata) {
        self.path = path
        self.kind = kind
        self.metadata = metadata
    }
}
