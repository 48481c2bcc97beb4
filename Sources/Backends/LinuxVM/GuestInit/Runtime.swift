import CInit

/// PID 1 on the real root: default mounts, the config chain (baked, then `follow-config`), the
/// program, and the exit the worker expects.
struct Runtime {
    static let bakedConfig = "/etc/gvlt/config.yaml"
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// The mount points of the worker's 9p shares; a share the host did not provide is not an error.
    static let optionalShares = ["/mnt/gevulot/input", "/mnt/gevulot/output", "/mnt/gevulot/rt-config"]

    var command: String?
    var args: [String] = []
    var env: [(key: String, value: String)] = []
    var workingDir = "/"
    var debugExit: RuntimeConfig.DebugExit?

    mutating func defaultMounts() throws(InitError) {
        if !cinit_exists("/proc/self") {
            try System.mount("proc", "/proc", "proc", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
        }
        if !cinit_exists("/sys/kernel") {
            try System.mount("sysfs", "/sys", "sysfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
        }
        if !cinit_exists("/dev/null") { try System.mount("devtmpfs", "/dev", "devtmpfs", flags: UInt(MS_NOSUID)) }
        // Started by the kernel straight from a root without /dev/console (no initramfs), PID 1 has no
        // stdin/stdout/stderr; give it the console now that devtmpfs provides one.
        if !cinit_fd_open(2) {
            let console = cinit_open("/dev/console", O_RDWR)
            if console >= 0 {
                for target: Int32 in 0...2 { _ = dup2(console, target) }
                if console > 2 { close(console) }
            }
        }
        System.makeDirectory("/dev/shm")
        try System.mount("shm", "/dev/shm", "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV))
        System.makeDirectory("/dev/pts")
        try System.mount(
            "devpts", "/dev/pts", "devpts", flags: UInt(MS_NOSUID | MS_NOEXEC), data: "gid=5,mode=620,ptmxmode=666")
        try System.mount("tmpfs", "/run", "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV), data: "mode=755")
        try System.mount("tmpfs", "/tmp", "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV), data: "mode=1777")
    }

    /// Applies one config in MIA's order: mounts, env, working-dir, kernel-modules, bootcmd, command.
    mutating func apply(_ config: RuntimeConfig) throws(InitError) {
        // First, so that a failure in anything below is reported through the worker's debug-exit.
        if let exit = config.debugExit { debugExit = exit }
        for mount in config.mounts {
            do {
                try System.mount(mount.source, mount.target, mount.fstype, flags: UInt(mount.flags), data: mount.data)
            } catch {
                guard Self.optionalShares.contains(mount.target) else { throw error }
                Console.say("share \(mount.source) not mounted on \(mount.target) (\(error.message)); continuing")
            }
        }
        for variable in config.env {
            env.removeAll { $0.key == variable.key }
            env.append(variable)
        }
        if let dir = config.workingDir { workingDir = dir }
        for module in config.kernelModules { try Self.loadModule(named: module) }
        for command in config.bootcmd {
            guard !command.isEmpty else { continue }
            let status = try spawnAndWait(command)
            guard status == 0 else {
                throw InitError("bootcmd `\(command.joined(separator: " "))` failed with status \(status)")
            }
        }
        // A command comes with its args. Args alone replace the image's only when there are some: the
        // worker writes `args: []` next to `command: null`, which must keep the image's own args.
        if let newCommand = config.command {
            command = newCommand
            args = config.args ?? []
        } else if let newArgs = config.args, !newArgs.isEmpty {
            args = newArgs
        }
    }

    static func loadModule(named name: String) throws(InitError) {
        let root = "/lib/modules/" + String(cString: cinit_release())
        let wanted = KernelCommandLine.underscored(name) + ".ko"
        func search(_ dir: String) -> String? {
            for entry in System.listDirectory(dir) {
                let path = dir + "/" + entry
                if cinit_is_real_directory(path) {
                    if let found = search(path) { return found }
                } else if KernelCommandLine.underscored(entry) == wanted {
                    return path
                }
            }
            return nil
        }
        guard cinit_is_directory(root) else {
            throw InitError(
                "kernel module \(name) was requested, but the image has no modules for kernel \(String(cString: cinit_release())) in \(root)"
            )
        }
        guard let path = search(root) else { throw InitError("kernel module \(name) is not in \(root)") }
        try System.loadModule(path)
        Console.say("loaded kernel module \(name)")
    }

    func environmentValue(_ key: String) -> String? { env.last { $0.key == key }?.value }

    func resolve(_ program: String) -> String? {
        if program.contains("/") { return program }
        for dir in (environmentValue("PATH") ?? Self.defaultPath).split(separator: ":") {
            let candidate = String(dir) + "/" + program
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Starts `argv` in a child with the current env and working dir; returns its pid.
    func spawn(_ argv: [String]) throws(InitError) -> pid_t {
        guard let path = resolve(argv[0]) else { throw InitError("command \(argv[0]) not found in PATH") }
        let pid = fork()
        if pid == 0 {
            _ = setsid()
            if chdir(workingDir) != 0 {
                Console.say("cannot enter working directory \(workingDir): \(Console.errnoText())")
                _exit(126)
            }
            System.exec(path, argv, environment: env.map { $0.key + "=" + $0.value })
            Console.say("cannot execute \(path): \(Console.errnoText())")
            _exit(127)
        }
        guard pid > 0 else { throw InitError("fork failed: \(Console.errnoText())") }
        return pid
    }

    func spawnAndWait(_ argv: [String]) throws(InitError) -> Int32 {
        let pid = try spawn(argv)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && cinit_errno() == EINTR {}
        return cinit_wifexited(status) != 0 ? cinit_wexitstatus(status) : 128 + cinit_wtermsig(status)
    }
}

/// How the program ended.
enum Outcome {
    case exited(Int32)
    case signaled(Int32)
    case initFailed(String)
}
