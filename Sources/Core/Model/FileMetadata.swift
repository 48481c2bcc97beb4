import Foundation

/// Seconds and nanoseconds since the epoch, as tar's PAX `mtime` keeps them.
public struct Timestamp: Hashable, Comparable, Sendable, Codable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static let epoch = Timestamp(seconds: 0)

    /// The time reproducible builds stamp on what they write: `SOURCE_DATE_EPOCH`, else 0.
    public static var sourceDateEpoch: Timestamp {
        Timestamp(seconds: ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(Int64.init) ?? 0)
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// The metadata an image keeps for every entry. None of it is ever applied to the host.
public struct FileMetadata: Hashable, Sendable {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000); no file-type bits.
    public var permissions: UInt16
    public var uid: UInt32
    public var gid: UInt32
    public var mtime: Timestamp
    /// Extended attributes by full name (`user.x`, `security.capability`); written in name order.
    public var xattrs: [String: [UInt8]]

    public init(
        permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Timestamp = .epoch,
        xattrs: [String: [UInt8]] = [:]
    ) {
        self.permissions = permissions & 0o7777
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.xattrs = xattrs
    }

    /// The metadata of a directory that an image implies but never lists (a parent of a listed entry).
    /// Fixed values keep the output reproducible.
    public static let impliedDirectory = FileMetadata(permissions: 0o755)

    public var isSetuid: Bool { permissions & 0o4000 != 0 }
    public var isSetgid: Bool { permissions & 0o2000 != 0 }
    public var isSticky: Bool { permissions & 0o1000 != 0 }
}
