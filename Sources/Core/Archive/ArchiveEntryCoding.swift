import CArchive
import Foundation

/// Converts between libarchive entries and our model, keeping every bit of metadata.
///
/// Names go through libarchive's locale ("MBS") accessors, with the locale set to UTF-8
/// (`ArchiveLocale`): its `_utf8` accessors treat the bytes as coming *from* UTF-8, and libarchive then
/// rewrites decomposed (NFD) names to composed (NFC) ones, turning two distinct files into one name.
/// The MBS accessors pass the bytes through. Names from PAX `path`/`linkpath` records libarchive
/// always normalizes (and cuts at a NUL); for those the tar reader hands over the record's own bytes
/// (`ArchiveReader.rawNames`), and they win.
public enum ArchiveEntryCoding {
    /// What a tar header says, before the entry is placed in a tree.
    public struct Header {
        public var name: String
        public var kind: EntryKind
        public var metadata: FileMetadata
        public var size: Int64
        public var isSparse: Bool
    }

    public enum DecodeProblem: Error, CustomStringConvertible {
        case nameNotUTF8
        case linkNotUTF8
        case linkTooLong
        case unknownType(UInt32)
        case outOfRange(String, Int64)
        case negativeSize(Int64)

        public var description: String {
            switch self {
            case .nameNotUTF8: return "the member name is missing or not valid UTF-8"
            case .linkNotUTF8: return "the link target is missing or not valid UTF-8"
            case .linkTooLong: return "the link target is longer than \(TreePath.maximumLength) bytes"
            case .unknownType(let t): return "unknown entry type 0o\(String(t, radix: 8))"
            case .outOfRange(let field, let value): return "\(field) \(value) does not fit in 32 bits"
            case .negativeSize(let value): return "the size \(value) is negative"
            }
        }
    }

    /// Decodes a header. Regular files get `.empty` content here; the caller attaches the real content.
    public static func decode(_ entry: OpaquePointer, names raw: TarRawNames = TarRawNames()) throws -> Header {
        let name: String
        if let bytes = raw.path {
            guard let exact = String(validating: bytes, as: UTF8.self) else { throw DecodeProblem.nameNotUTF8 }
            name = exact
        } else {
            guard let namePointer = archive_entry_pathname(entry),
                let fromHeader = String(validatingCString: namePointer)
            else { throw DecodeProblem.nameNotUTF8 }
            name = fromHeader
        }
        func linkTarget(_ pointer: UnsafePointer<CChar>?) throws -> String {
            let target: String?
            if let bytes = raw.linkpath {
                target = String(validating: bytes, as: UTF8.self)
            } else {
                target = pointer.flatMap { String(validatingCString: $0) }
            }
            guard let target else { throw DecodeProblem.linkNotUTF8 }
            guard target.utf8.count <= TreePath.maximumLength else { throw DecodeProblem.linkTooLong }
            return target
        }
        var xattrs: [String: [UInt8]] = [:]
        if archive_entry_xattr_reset(entry) > 0 {
            var xname: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(entry, &xname, &value, &size) == ARCHIVE_OK {
                guard let xname else { continue }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                xattrs[String(cString: xname)] = bytes
            }
        }
        let metadata = FileMetadata(
            permissions: UInt16(truncatingIfNeeded: archive_entry_perm(entry)),
            // checked: libarchive's la_int64_t values; `field` range-checks them for the tree
            uid: try field("uid", Int64(archive_entry_uid(entry))),
            gid: try field("gid", Int64(archive_entry_gid(entry))),
            mtime: Timestamp(
                // checked: time_t is an Int64
                seconds: Int64(archive_entry_mtime(entry)),
                nanoseconds: UInt32(truncatingIfNeeded: archive_entry_mtime_nsec(entry))),
            xattrs: xattrs)
        // checked: la_int64_t to Int64; negative sizes are refused next
        let size = archive_entry_size_is_set(entry) != 0 ? Int64(archive_entry_size(entry)) : 0
        guard size >= 0 else { throw DecodeProblem.negativeSize(size) }

        let kind: EntryKind
        // libarchive reports a tar hard link as a regular file with a link name.
        if let linkPointer = archive_entry_hardlink(entry) {
            kind = .hardlink(target: try linkTarget(linkPointer))
        } else {
            let type = UInt32(archive_entry_filetype(entry))
            switch type {
            case CARCHIVE_IFREG: kind = .regularFile(.empty)
            case CARCHIVE_IFDIR: kind = .directory
            case CARCHIVE_IFLNK:
                kind = .symlink(target: try linkTarget(archive_entry_symlink(entry)))
            case CARCHIVE_IFCHR:
                kind = .characterDevice(
                    // checked: major/minor are at most 32 bits in dev_t; `field` range-checks them
                    major: try field("device major", Int64(archive_entry_rdevmajor(entry))),
                    minor: try field("device minor", Int64(archive_entry_rdevminor(entry))))
            case CARCHIVE_IFBLK:
                kind = .blockDevice(
                    // checked: major/minor are at most 32 bits in dev_t; `field` range-checks them
                    major: try field("device major", Int64(archive_entry_rdevmajor(entry))),
                    minor: try field("device minor", Int64(archive_entry_rdevminor(entry))))
            case CARCHIVE_IFIFO: kind = .fifo
            case CARCHIVE_IFSOCK: kind = .socket
            default: throw DecodeProblem.unknownType(type)
            }
        }
        return Header(
            name: name, kind: kind, metadata: metadata, size: size,
            isSparse: archive_entry_sparse_count(entry) > 0)
    }

    /// A numeric header field that must fit the 32 bits Linux gives it; larger values are refused, not
    /// truncated (uid 2^32 must not silently become root).
    private static func field(_ name: String, _ value: Int64) throws -> UInt32 {
        guard let narrow = UInt32(exactly: value) else { throw DecodeProblem.outOfRange(name, value) }
        return narrow
    }

    /// Fills a libarchive entry from ours. Names are written without a leading "./"; the root is "./".
    static func fill(_ archiveEntry: OpaquePointer, from entry: FileEntry, directorySlash: Bool = true) {
        let name: String
        if entry.path.isEmpty {
            name = directorySlash ? "./" : "."
        } else if case .directory = entry.kind, directorySlash {
            name = entry.path + "/"
        } else {
            name = entry.path
        }
        archive_entry_copy_pathname(archiveEntry, name)
        // cpio needs a size on every entry; regular files set theirs below.
        archive_entry_set_size(archiveEntry, 0)
        let perm = mode_t(entry.metadata.permissions)
        archive_entry_set_uid(archiveEntry, la_int64_t(entry.metadata.uid))
        archive_entry_set_gid(archiveEntry, la_int64_t(entry.metadata.gid))
        archive_entry_set_mtime(
            // checked: nanoseconds is a UInt32
            archiveEntry, time_t(entry.metadata.mtime.seconds), Int(entry.metadata.mtime.nanoseconds))
        for key in entry.metadata.xattrs.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let value = entry.metadata.xattrs[key]!
            value.withUnsafeBytes { archive_entry_xattr_add_entry(archiveEntry, key, $0.baseAddress, $0.count) }
        }
        switch entry.kind {
        case .directory:
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFDIR)
        case .regularFile(let content):
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFREG)
            archive_entry_set_size(archiveEntry, la_int64_t(content.size))
        case .symlink(let target):
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFLNK)
            archive_entry_copy_symlink(archiveEntry, target)
        case .hardlink(let target):
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFREG)
            archive_entry_copy_hardlink(archiveEntry, target)
            archive_entry_set_size(archiveEntry, 0)
        case .characterDevice(let major, let minor):
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFCHR)
            archive_entry_set_rdevmajor(archiveEntry, dev_t(major))
            archive_entry_set_rdevminor(archiveEntry, dev_t(minor))
        case .blockDevice(let major, let minor):
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFBLK)
            archive_entry_set_rdevmajor(archiveEntry, dev_t(major))
            archive_entry_set_rdevminor(archiveEntry, dev_t(minor))
        case .fifo:
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFIFO)
        case .socket:
            archive_entry_set_filetype(archiveEntry, CARCHIVE_IFSOCK)
        }
        archive_entry_set_perm(archiveEntry, perm)
    }
}
