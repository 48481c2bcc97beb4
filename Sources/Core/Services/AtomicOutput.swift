import CHost
import Foundation

/// Writes an output file so that it either appears whole or not at all. The file is created
/// unnamed in the target's directory (O_TMPFILE), so a crash or SIGKILL leaves nothing there; on
/// success it is fsynced and linked into place. File systems without O_TMPFILE get a named temp
/// file next to the target, renamed on success. An existing file is replaced only with `force`.
public final class AtomicOutput {
    public let path: String
    /// A path that opens the file being written: `/proc/self/fd/N` while it is unnamed.
    public let temporaryPath: String
    public let fd: Int32
    private let force: Bool
    /// Set for the named fallback only: the unnamed file needs no cleanup.
    private let token: Cleanup.Token?
    private let unnamed: Bool
    private var closed = false

    public init(path: String, force: Bool) throws {
        let url = URL(fileURLWithPath: path)
        self.path = url.path
        self.force = force
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError(
                "output directory \(directory) does not exist", hint: "create it first, or choose another -o path")
        }
        if FileManager.default.fileExists(atPath: self.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                throw InputError("output \(self.path) is a directory", hint: "give a file path with -o")
            }
            if !force {
                throw InputError("output \(self.path) already exists", hint: "pass --force to overwrite it")
            }
        }
        let anonymous = open(directory, SharedFile.openTemporaryFile | O_RDWR | O_CLOEXEC, 0o666 & ~Self.processUmask)
        if anonymous >= 0 {
            fd = anonymous
            unnamed = true
            temporaryPath = "/proc/self/fd/\(anonymous)"
            token = nil
        } else {
            var template = Array("\(directory)/.\(url.lastPathComponent).gvlt-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkostemp($0.baseAddress!, O_CLOEXEC) }
            guard fd >= 0 else {
                throw SystemError(
                    "cannot create a file in", path: directory, errno: errno,
                    hint: "check that the directory is writable")
            }
            self.fd = fd
            unnamed = false
            temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            token = Cleanup.shared.register(path: temporaryPath)
        }
        // O_TMPFILE and mkstemp make 0600 or less; outputs get the usual 0666 & ~umask.
        fchmod(fd, 0o666 & ~Self.processUmask)
    }

    /// Gives the unnamed file the name `target`; fails with EEXIST when the name is taken.
    private func linkUnnamed(to target: String) -> Int32 {
        // linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; through /proc it needs nothing.
        linkat(AT_FDCWD, temporaryPath, AT_FDCWD, target, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno
    }

    /// Makes the file visible under its final name.
    public func commit() throws {
        guard !closed else { return }
        TestTrap.reach("commit")
        closed = true
        defer { if let token { Cleanup.shared.remove(token) } }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("cannot flush", path: path, errno: errno) }
        if unnamed {
            var code = linkUnnamed(to: path)
            if code == EEXIST && force {
                // Replacing: link under a private name, then rename over the target in one step.
                let staging =
                    URL(fileURLWithPath: path).deletingLastPathComponent().path
                    + "/.\(URL(fileURLWithPath: path).lastPathComponent).gvlt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                code = linkUnnamed(to: staging)
                if code == 0 && rename(staging, path) != 0 {
                    code = errno
                    unlink(staging)
                }
            }
            if code == EEXIST {
                throw InputError("output \(path) already exists", hint: "pass --force to overwrite it")
            }
            if code != 0 { throw SystemError("cannot create", path: path, errno: code) }
        } else if force {
            guard rename(temporaryPath, path) == 0 else { throw SystemError("cannot create", path: path, errno: errno) }
        } else {
            // Never replace a file that appeared meanwhile: rename with RENAME_NOREPLACE, or, on file
            // systems without it, link() (which also fails on an existing name).
            var code: Int32 = 0
            if renameat2(AT_FDCWD, temporaryPath, AT_FDCWD, path, 1) != 0 {
                code = errno
                if code == EINVAL || code == ENOSYS || code == EOPNOTSUPP {
                    code = link(temporaryPath, path) == 0 ? 0 : errno
                }
            }
            if code == EEXIST {
                throw InputError("output \(path) already exists", hint: "pass --force to overwrite it")
            }
            if code != 0 { throw SystemError("cannot create", path: path, errno: code) }
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    /// The process umask, read from /proc so that no other thread ever sees a changed one.
    static let processUmask: mode_t = {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
            let value = mode_t(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8)
        {
            return value
        }
        let mask = umask(0o022)
        umask(mask)
        return mask
    }()

    /// Drops the temp file; the target is left as it was.
    public func abandon() {
        guard !closed else { return }
        closed = true
        close(fd)
        if let token { Cleanup.shared.remove(token) }
    }

    deinit { abandon() }
}
