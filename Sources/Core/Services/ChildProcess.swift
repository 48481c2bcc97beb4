import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A program started in a process group of its own, with pipes on its standard streams. When the
/// program exits, is timed out or fails, whatever it started in its group is killed with it, so no
/// grandchild is left running or holding a pipe open. For programs gvlt does not trust to clean up
/// after themselves: plugins.
public final class ChildProcess: @unchecked Sendable {
    public enum Ending: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)

        /// "exited with status N" or "was killed by signal N".
        public var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signaled(let signal): "was killed by signal \(signal)"
            }
        }
    }

    /// Why a program could not be started.
    public struct StartFailure: LocalizedError {
        public let program: String
        public let errno: Int32
        public var errorDescription: String? { String(cString: strerror(errno)) }
    }

    public let pid: pid_t
    public let standardInput: FileHandle
    public let standardOutput: FileHandle
    public let standardError: FileHandle
    private let lock = NSLock()
    private var ending: Ending?
    private let ended = DispatchSemaphore(value: 0)
    private let cleanupToken: Cleanup.Token

    public init(executable: String, arguments: [String], environment: [String: String]) throws {
        var pipes: [[Int32]] = []
        defer { for pipe in pipes { for fd in pipe where fd >= 0 { close(fd) } } }
        for _ in 0..<3 {
            var fds: [Int32] = [-1, -1]
            // pipe2 is not visible from Swift's Glibc; close-on-exec keeps other children off these pipes.
            guard pipe(&fds) == 0 else { throw StartFailure(program: executable, errno: errno) }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            pipes.append(fds)
        }
        // The child's ends: stdin reads pipe 0, stdout and stderr write pipes 1 and 2.
        let childEnds = [pipes[0][0], pipes[1][1], pipes[2][1]]

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, fd) in childEnds.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(target)) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // gvlt ignores SIGINT/SIGTERM while it runs (its handlers clean up); ignored signals survive
        // exec, so the child gets every signal back at its default and an empty mask.
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw StartFailure(program: executable, errno: status) }
        self.pid = pid
        for fd in childEnds { close(fd) }
        standardInput = FileHandle(fileDescriptor: pipes[0][1], closeOnDealloc: true)
        standardOutput = FileHandle(fileDescriptor: pipes[1][0], closeOnDealloc: true)
        standardError = FileHandle(fileDescriptor: pipes[2][0], closeOnDealloc: true)
        pipes = []
        // A negative pid names the group: an interrupted gvlt stops everything the program started.
        cleanupToken = Cleanup.shared.register(child: -pid)
        Thread.detachNewThread { [self] in reap() }
    }

    deinit { Cleanup.shared.unregister(cleanupToken) }

    /// Waits for the program to exit without reaping it, kills what is left of its group while its
    /// pid still holds the group's id (so the signal cannot reach a reused pid), then reaps it.
    private func reap() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F
        let ending: Ending = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
        lock.withLock { self.ending = ending }
        ended.signal()
    }

    public var isRunning: Bool { lock.withLock { ending == nil } }

    /// How the program ended, waiting up to `timeout` seconds (for ever when nil); nil if it is still running.
    @discardableResult
    public func wait(timeout: Double? = nil) -> Ending? {
        if let ending = lock.withLock({ ending }) { return ending }
        if let timeout {
            guard ended.wait(timeout: .now() + timeout) == .success else { return nil }
        } else {
            ended.wait()
        }
        ended.signal()
        return lock.withLock { ending }
    }

    /// Kills the program and its whole group, and waits for it.
    @discardableResult
    public func killGroup() -> Ending {
        if isRunning { kill(-pid, SIGKILL) }
        return wait()!
    }
}
