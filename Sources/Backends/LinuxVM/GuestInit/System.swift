import CInit

/// Thin wrappers over the system calls the init makes, with errors that name what failed.
enum System {
    static func mount(_ source: String, _ target: String, _ fstype: String?, flags: UInt = 0, data: String? = nil)
        throws(InitError)
    {
        let result: Int32
        if let data {
            result = data.withCString { CInit.mount(source, target, fstype, flags, $0) }
        } else {
            result = CInit.mount(source, target, fstype, flags, nil)
        }
        guard result == 0 else {
            throw InitError("mount \(source) on \(target) (\(fstype ?? "bind/move")): \(Console.errnoText())")
        }
    }

    /// Replaces this process with `path`, every signal unblocked (PID 1 blocks the ones it waits
    /// for, and a blocked mask survives execve). Returns only when execve failed; errno says why.
    static func exec(_ path: String, _ argv: [String], environment: [String]) {
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        var all = sigset_t()
        _ = cinit_block_signals(&all)
        _ = cinit_unblock_signals(&all)
        execve(path, &cArgs, &cEnv)
    }

    static func makeDirectory(_ path: String) {
        if !cinit_is_directory(path) { _ = mkdir(path, 0o755) }
    }

    static func readFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = cinit_open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }

    static func readBytes(_ path: String, at offset: Int, count: Int) -> [UInt8] {
        let fd = cinit_open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return n == count ? buffer : []
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = String(cString: cinit_dirent_name(entry))
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Loads a module with `parameters` ("name=value …"): those the kernel command line gives it
    /// (`module.name=value`, which the kernel leaves to modprobe for loadable modules) come last and win.
    static func loadModule(_ path: String, parameters: [String] = []) throws(InitError) {
        let error = tryLoadModule(path, parameters: parameters)
        guard error == 0 else {
            throw InitError("cannot load kernel module \(path): \(String(cString: strerror(error)))")
        }
    }

    /// Like `loadModule`, returning the errno instead (0 when loaded or already there).
    static func tryLoadModule(_ path: String, parameters: [String] = []) -> Int32 {
        let fd = cinit_open(path, O_RDONLY)
        guard fd >= 0 else { return cinit_errno() }
        defer { close(fd) }
        let name = KernelCommandLine.moduleName(ofPath: path)
        let all = (parameters + KernelCommandLine.current.parameters(forModule: name)).joined(separator: " ")
        if cinit_finit_module(fd, all) != 0 {
            let error = cinit_errno()
            return error == EEXIST ? 0 : error
        }
        return 0
    }

    /// Writes `text` to an existing file such as a sysfs attribute; false when it could not.
    @discardableResult
    static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = cinit_open(path, O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    static func monotonicMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }

    static func sleepMilliseconds(_ milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        _ = nanosleep(&request, nil)
    }
}
