import Foundation

/// A program on the host that some feature runs, and the Debian package that provides it.
public struct HostTool: Sendable, Hashable {
    public var name: String
    public var aptPackage: String
    /// For `gvlt doctor` and errors: "`--containerfile` builds".
    public var purpose: String

    public init(_ name: String, apt: String, purpose: String) {
        self.name = name
        self.aptPackage = apt
        self.purpose = purpose
    }

    public static let skopeo = HostTool("skopeo", apt: "skopeo", purpose: "`--container containers-storage:…`")
    public static let podman = HostTool("podman", apt: "podman", purpose: "`--containerfile` builds")
    public static let buildah = HostTool(
        "buildah", apt: "buildah", purpose: "`--containerfile` builds (alternative to podman)")
    public static let docker = HostTool(
        "docker", apt: "docker.io", purpose: "`--containerfile` builds with --container-backend docker")

    /// The absolute path of the tool in PATH, if installed. A `name` that is an absolute path is a
    /// data file a package ships (SYSLINUX's MBR code), found when it is readable.
    public func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if name.hasPrefix("/") { return access(name, R_OK) == 0 ? name : nil }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        for dir in ["/usr/sbin", "/sbin"] where access("\(dir)/\(name)", X_OK) == 0 {
            return "\(dir)/\(name)"
        }
        return nil
    }

    /// The tool's path, or an error naming the tool and its package.
    public func require() throws -> String {
        guard let path = locate() else {
            throw MissingToolError(tool: name, aptPackage: aptPackage, purpose: purpose)
        }
        return path
    }
}

/// Runs a host program to completion. Its output is kept so that a failure shows what the tool said;
/// the child is registered with `Cleanup` so an interrupt stops it too.
public enum HostCommand {
    public struct Result {
        public var status: Int32
        public var output: String
    }

    public struct Failed: UserFacingError {
        public var command: [String]
        public var status: Int32
        public var output: String
        public var hint: String?

        public init(command: [String], status: Int32, output: String, hint: String?) {
            self.command = command
            self.status = status
            self.output = output
            self.hint = hint
        }

        public var message: String {
            let tail = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(
                separator: "\n")
            return "`\(command.joined(separator: " "))` failed with exit status \(status)"
                + (tail.isEmpty ? "" : ":\n\(tail)")
        }
    }

    /// Runs `executable args…`, stdout and stderr together in `output`. With `echo`, the child's output
    /// also goes to our stderr as it comes (for long builds the user should see).
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], workingDirectory: String? = nil,
        environment: [String: String]? = nil, echo: Bool = false, check: Bool = true,
        hint: String? = nil
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let wait: () -> Void
        do {
            wait = try process.runReturningWaiter()
        } catch {
            throw InputError("cannot run \(executable): \(error.localizedDescription)")
        }
        // The output is read with blocking reads (see PipeReader), not `readabilityHandler`.
        let reader = PipeReader(pipe.fileHandleForReading.fileDescriptor) { chunk in
            if echo { FileHandle.standardError.write(chunk) }
        }
        let token = Cleanup.shared.register(child: process.processIdentifier)
        wait()
        Cleanup.shared.unregister(token)
        // The reader ends at EOF: when the child, and whatever it left holding its output, is gone.
        let output = String(decoding: reader.finish(), as: UTF8.self)
        let result = Result(status: process.terminationStatus, output: output)
        if check && result.status != 0 {
            throw Failed(
                command: [URL(fileURLWithPath: executable).lastPathComponent] + arguments, status: result.status,
                output: output, hint: hint)
        }
        return result
    }
}

extension Process {
    /// Starts the process and returns a wait that blocks until it exits. Foundation's
    /// `waitUntilExit` polls a run loop in 50 ms steps on Linux, which adds up to seconds over the
    /// dozens of short tools a build runs; the termination handler wakes the waiter at once.
    public func runReturningWaiter() throws -> () -> Void {
        let exited = DispatchSemaphore(value: 0)
        terminationHandler = { _ in exited.signal() }
        try run()
        return { exited.wait() }
    }
}
