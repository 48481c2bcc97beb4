import Dispatch
import Foundation

/// Temp files, scratch directories and child processes that must not outlive a failed or interrupted
/// run. Normal code paths remove their own; this registry covers SIGINT/SIGTERM, where no `defer` runs.
public final class Cleanup: @unchecked Sendable {
    public static let shared = Cleanup()

    private let lock = NSLock()
    private var paths: [Int: String] = [:]
    private var children: [Int: Int32] = [:]
    private var actions: [Int: () -> Void] = [:]
    private var nextToken = 0
    private var signalSources: [DispatchSourceSignal] = []

    public struct Token: Hashable { let value: Int }

    public func register(path: String) -> Token {
        lock.withLock {
            nextToken += 1
            paths[nextToken] = path
            return Token(value: nextToken)
        }
    }

    public func register(child pid: Int32) -> Token {
        lock.withLock {
            nextToken += 1
            children[nextToken] = pid
            return Token(value: nextToken)
        }
    }

    /// Work that must happen if the run dies, e.g. removing a temporary image from podman's storage.
    public func register(action: @escaping () -> Void) -> Token {
        lock.withLock {
            nextToken += 1
            actions[nextToken] = action
            return Token(value: nextToken)
        }
    }

    public func unregister(_ token: Token) {
        lock.withLock {
            paths[token.value] = nil
            children[token.value] = nil
            actions[token.value] = nil
        }
    }

    /// Removes a registered path now and forgets it.
    public func remove(_ token: Token) {
        let path = lock.withLock { paths.removeValue(forKey: token.value) }
        if let path { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Stops children (waiting up to 3 s, so they cannot recreate what is removed next), runs the
    /// registered actions, then removes every registered path, newest first.
    public func runAll() {
        let (pids, pending, list) = lock.withLock { () -> ([Int32], [() -> Void], [String]) in
            defer {
                paths.removeAll()
                children.removeAll()
                actions.removeAll()
            }
            return (
                Array(children.values), actions.sorted { $0.key > $1.key }.map(\.value),
                paths.sorted { $0.key > $1.key }.map(\.value)
            )
        }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline && pids.contains(where: { kill($0, 0) == 0 }) { usleep(20_000) }
        for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        for action in pending { action() }
        for path in list { try? FileManager.default.removeItem(atPath: path) }
    }

    /// On SIGINT or SIGTERM: clean up, then exit with 128 + the signal number, as a shell would report.
    public func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                self?.runAll()
                FileHandle.standardError.write("\ninterrupted: temporary files removed\n".data(using: .utf8)!)
                exit(128 + sig)
            }
            source.resume()
            signalSources.append(source)
        }
    }
}

/// A private temp directory for one run (spools, tool output), removed when the run ends or dies.
/// It holds a lock file its process keeps locked: a run killed with SIGKILL cannot remove its
/// directory, so the next gvlt run removes every such directory whose lock nobody holds any more.
/// (A lock, not a pid: pids are reused and differ between containers sharing one TMPDIR.)
public final class ScratchDirectory {
    public let path: String
    private let token: Cleanup.Token
    private let owner: Int32

    /// The lock file inside each scratch directory.
    package static let ownerFile = ".gvlt-owner"

    public static var base: String {
        ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    /// A new directory `LABEL-XXXXXX` in `directory` (default: TMPDIR, or /tmp).
    public init(label: String = "gvlt", in directory: String? = nil) throws {
        let base = directory ?? Self.base
        Self.sweepOnce
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SystemError(
                "cannot create a scratch directory in", path: base, errno: errno,
                hint: "set TMPDIR to a writable directory with free space")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        token = Cleanup.shared.register(path: path)
        // Locked under another name, then renamed: a sweeper never sees the lock file unlocked.
        let pending = path + "/" + Self.ownerFile + ".new"
        owner = open(pending, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if owner >= 0, flock(owner, LOCK_EX) == 0 { rename(pending, path + "/" + Self.ownerFile) }
    }

    public func remove() {
        Cleanup.shared.remove(token)
    }

    deinit {
        remove()
        if owner >= 0 { close(owner) }
    }

    /// Sweeps once per process, before its first scratch directory.
    private static let sweepOnce: Void = sweepAbandoned(in: base)

    /// Removes scratch directories in `base` that belong to this user and whose owner is gone
    /// (their lock is free). Anything else, another user's or a live run's, is left alone.
    public static func sweepAbandoned(in base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix("gvlt-") {
            let directory = base + "/" + name
            var info = stat()
            guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid() else {
                continue
            }
            let lock = open(directory + "/" + ownerFile, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            guard lock >= 0 else { continue }
            defer { close(lock) }
            guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { continue }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
