import Core
import Crypto
import Foundation

/// Archive members for fixtures, including ones no well-behaved tool would write.
public struct TarMember {
    public enum Kind {
        case file(Data)
        case directory
        case symlink(String)
        case hardlink(String)
        case characterDevice(UInt32, UInt32)
        case blockDevice(UInt32, UInt32)
        case fifo
    }

    public var name: String
    public var kind: Kind
    public var mode: UInt16
    public var uid: UInt32
    public var gid: UInt32
    public var mtime: Int64
    public var xattrs: [String: [UInt8]]

    public init(
        _ name: String, _ kind: Kind, mode: UInt16? = nil, uid: UInt32 = 0, gid: UInt32 = 0,
        mtime: Int64 = 1_700_000_000,
        xattrs: [String: [UInt8]] = [:]
    ) {
        self.name = name
        self.kind = kind
        switch kind {
        case .directory: self.mode = mode ?? 0o755
        case .symlink: self.mode = mode ?? 0o777
        default: self.mode = mode ?? 0o644
        }
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.xattrs = xattrs
    }

    public static func file(_ name: String, _ text: String, mode: UInt16 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0)
        -> TarMember
    {
        TarMember(name, .file(Data(text.utf8)), mode: mode, uid: uid, gid: gid)
    }

    public static func dir(_ name: String, mode: UInt16 = 0o755, uid: UInt32 = 0, gid: UInt32 = 0) -> TarMember {
        TarMember(name, .directory, mode: mode, uid: uid, gid: gid)
    }

    public static func symlink(_ name: String, _ target: String) -> TarMember { TarMember(name, .symlink(target)) }
    public static func hardlink(_ name: String, _ target: String) -> TarMember { TarMember(name, .hardlink(target)) }
    /// `.wh.NAME` next to NAME.
    public static func whiteout(_ path: String) -> TarMember {
        let url = URL(fileURLWithPath: "/" + path)
        let parent = url.deletingLastPathComponent().path.dropFirst()
        return TarMember((parent.isEmpty ? "" : parent + "/") + ".wh." + url.lastPathComponent, .file(Data()))
    }
    /// `DIR/.wh..wh..opq`.
    public static func opaque(_ dir: String) -> TarMember { TarMember(dir + "/.wh..wh..opq", .file(Data())) }
}

public enum Compression {
    case none, gzip, zstd
}

public enum TarBuilder {
    /// A tar (pax) of `members`, optionally compressed, written with libarchive.
    public static func tar(_ members: [TarMember], compression: Compression = .none) throws -> Data {
        let path = NSTemporaryDirectory() + "/gvlt-fixture-\(UUID().uuidString).tar"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        let filter: ArchiveWriter.Filter
        switch compression {
        case .none: filter = .none
        case .gzip: filter = .gzip(level: 6)
        case .zstd: filter = .zstd(level: 3)
        }
        let writer = try ArchiveWriter(
            format: .pax, filter: filter, sink: FileSink(fd: fd, displayName: path), label: "fixture")
        for member in members {
            let metadata = FileMetadata(
                permissions: member.mode, uid: member.uid, gid: member.gid,
                mtime: Timestamp(seconds: member.mtime), xattrs: member.xattrs)
            let kind: EntryKind
            var body = Data()
            switch member.kind {
            case .file(let data):
                body = data
                let content = try SharedFile.anonymous(in: NSTemporaryDirectory())
                try data.withUnsafeBytes { try content.write($0, at: 0) }
                kind = .regularFile(
                    data.isEmpty ? .empty : .blobRange(file: content, offset: 0, length: Int64(data.count)))
            case .directory: kind = .directory
            case .symlink(let target): kind = .symlink(target: target)
            case .hardlink(let target): kind = .hardlink(target: target)
            case .characterDevice(let major, let minor): kind = .characterDevice(major: major, minor: minor)
            case .blockDevice(let major, let minor): kind = .blockDevice(major: major, minor: minor)
            case .fifo: kind = .fifo
            }
            _ = body
            // Names go out exactly as given (the writer only adds a `/` to directories).
            var name = member.name
            if case .directory = member.kind, name.hasSuffix("/") { name.removeLast() }
            try writer.write(FileEntry(path: name, kind: kind, metadata: metadata))
        }
        try writer.finish()
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    public static func sha256(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
