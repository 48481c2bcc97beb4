import CHost
#if canImport(Glibc)
    import Glibc
#endif
import Foundation

/// An open file descriptor shared by every tree entry whose content lives in it. The descriptor closes
/// when the last reference goes, so spool files that were unlinked at creation vanish on their own.
public final class SharedFile: @unchecked Sendable {
    public let fd: Int32
    /// For messages only; the file may already be unlinked.
    public let displayName: String

    public init(fd: Int32, displayName: String) {
        self.fd = fd
        self.displayName = displayName
    }

    /// Opens a regular file for reading, refusing anything else before it can block or mislead: a FIFO
    /// (open would wait forever), a device, a directory, and (unless `followSymlinks`) a symlink.
    /// `what` names the file in errors.
    public static func openRegular(_ path: String, what: String, followSymlinks: Bool) throws -> SharedFile {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (followSymlinks ? 0 : O_NOFOLLOW))
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP {
                throw HostileInputError("\(what) \(path) is a symlink, which is refused inside an image layout")
            }
            throw SystemError("cannot open \(what)", path: path, errno: code)
        }
        let file = SharedFile(fd: fd, displayName: path)
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw InputError("\(what) \(path) is not a regular file")
        }
        return file
    }

    public static func openReadOnly(_ path: String) throws -> SharedFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("cannot open", path: path, errno: errno) }
        return SharedFile(fd: fd, displayName: path)
    }

    /// An anonymous scratch file in `directory`: it has no name from the start (O_TMPFILE), so no crash
    /// or signal can leave it behind.
    public static func anonymous(in directory: String) throws -> SharedFile {
        var fd = open(directory, Self.openTemporaryFile | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            // Some file systems have no O_TMPFILE: create a named file and unlink it at once.
            var template = Array((directory + "/.gvlt-spool-XXXXXX").utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkostemp($0.baseAddress!, O_CLOEXEC) }
            guard fd >= 0 else { throw SystemError("cannot create a scratch file in", path: directory, errno: errno) }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        return SharedFile(fd: fd, displayName: "scratch file in \(directory)")
    }

    /// O_TMPFILE (__O_TMPFILE | O_DIRECTORY), which the Glibc module does not export.
    static let openTemporaryFile: Int32 = 0o20000000 | O_DIRECTORY

    public var size: Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }

    /// Reads exactly `count` bytes at `offset`, or fails: a short read means the file changed under us.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot read", path: displayName, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot write", path: displayName, errno: errno)
            }
            done += n
        }
    }

    public func truncate(to length: Int64) throws {
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw SystemError("cannot resize", path: displayName, errno: errno)
        }
    }

    deinit { close(fd) }
}
