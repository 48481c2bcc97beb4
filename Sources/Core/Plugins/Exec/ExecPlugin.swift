import Foundation
import Logging

/// Runs one request against an `exec` plugin: starts the program with the host's cookie, writes the
/// request, relays its progress and log lines, and returns its result. A plugin that crashes, hangs
/// past `timeout`, writes something that is not a protocol line, or reports an error, gives an error
/// naming it, with its stderr.
public struct ExecPlugin {
    public var entry: PluginEntry
    public var timeout: Double

    public init(entry: PluginEntry, timeout: Double) {
        self.entry = entry
        self.timeout = timeout
    }

    var commandLine: [String] { entry.commandLine }

    public func call(
        _ method: String, params: [String: Any] = [:], progress: ProgressReporter? = nil,
        logger: Logger? = nil
    ) throws -> [String: Any] {
        try entry.verifyDigest()

        final class State: @unchecked Sendable {
            let lock = NSLock()
            var stderr = PluginStderr()
            var lines = PluginLineSplitter()
            var child: ChildProcess?
            /// Why the plugin was killed for its output, if it was.
            var overflow: String?

            func exceed(_ reason: String) {
                guard overflow == nil else { return }
                overflow = reason
                if let child { kill(-child.pid, SIGKILL) }
            }
        }
        let state = State()
        let messages = PluginMessages(plugin: entry.name, progress: progress, logger: logger)
        let process: ChildProcess
        do {
            process = try entry.startChild()
        } catch {
            throw entry.startFailure(error)
        }
        state.lock.withLock { state.child = process }
        let errorReader = PipeReader(process.standardError.fileDescriptor, keep: false) { chunk in
            state.lock.withLock {
                if state.stderr.append(chunk) { state.exceed(state.stderr.overflowReason) }
            }
        }
        let outputReader = PipeReader(process.standardOutput.fileDescriptor, keep: false) { chunk in
            let lines = state.lock.withLock { () -> [Data] in
                let (lines, overflowed) = state.lines.append(chunk)
                if overflowed { state.exceed(state.lines.overflowReason) }
                return lines
            }
            lines.forEach(messages.handle(line:))
        }
        // On every way out the group is killed first, then the readers stop with the pipes still open.
        defer {
            _ = outputReader.stop(draining: 0)
            _ = errorReader.stop(draining: 0)
        }
        defer { process.killGroup() }
        var requestData = try PluginProtocol.request(method, params: params)
        requestData.append(0x0A)
        // A plugin that never reads its request must not block the host: write from another thread.
        let request = requestData
        DispatchQueue.global().async {
            try? process.standardInput.write(contentsOf: request)
            try? process.standardInput.close()
        }

        var ending = process.wait(timeout: timeout)
        let timedOut = ending == nil
        if timedOut { ending = process.killGroup() }
        // What the plugin wrote before it exited is in the pipe now; a child it left behind may
        // hold the pipe open for ever, so read what is there instead of waiting for EOF.
        _ = outputReader.stop(draining: PluginProtocol.outputLimit)
        let tail = state.lock.withLock { state.lines.remainder().map { [$0] } ?? [] }
        tail.forEach(messages.handle(line:))
        _ = errorReader.stop(draining: 64 << 10)
        let stderrNote = state.lock.withLock { state.stderr.note }

        let what = "plugin `\(entry.name)` (\(method))"
        if let overflow = state.lock.withLock({ state.overflow }) {
            throw InputError(
                "\(what) wrote \(overflow) and was killed\(stderrNote)",
                hint:
                    "a plugin's protocol lines and its stderr are bounded; write large data to a file and pass its path"
            )
        }
        if timedOut {
            throw InputError(
                "\(what) did not finish within \(Int(timeout)) s and was killed\(stderrNote)",
                hint: "raise its `timeout` option in \(entry.origin) if it needs longer")
        }
        let result = try messages.outcome(what: what, context: stderrNote)
        if let ending, ending != .exited(0) {
            throw InputError("\(what) \(ending.description) without a result\(stderrNote)")
        }
        guard let result else {
            throw InputError(
                "\(what) exited without a result\(stderrNote)",
                hint: "a plugin ends each request with a `result` or `error` line")
        }
        return result
    }
}

extension PluginEntry {
    /// An exec plugin's program and leading arguments: `command`, else `path`; a dylib's is `path`.
    var commandLine: [String] {
        if let command, !command.isEmpty { return command }
        return [path ?? ""]
    }

    /// The error for a plugin program that could not be started.
    func startFailure(_ error: Error) -> Error {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: commandLine[0], isDirectory: &isDirectory), isDirectory.boolValue {
            return InputError(
                "cannot start plugin `\(name)`: \(commandLine[0]) is a directory, not a program",
                hint: "point the `path`/`command` of its entry in \(origin) at the plugin's executable")
        }
        return InputError(
            "cannot start plugin `\(name)` (\(commandLine.joined(separator: " "))): \(error.localizedDescription)",
            hint: "check the `path`/`command` of its entry in \(origin)")
    }

    /// The plugin's process, not yet started, with the host's cookie in its environment.
    /// Starts the plugin program in its own process group, with the host's cookie in its environment.
    func startChild() throws -> ChildProcess {
        let program = commandLine[0]
        var environment = ProcessInfo.processInfo.environment
        environment[PluginProtocol.cookieVariable] = PluginProtocol.cookieValue
        return try ChildProcess(
            executable: program.contains("/")
                ? program : (HostTool(program, apt: program, purpose: "plugin \(name)").locate() ?? program),
            arguments: Array(commandLine.dropFirst()), environment: environment)
    }

    /// Checks the entry's `sha256`, when it has one, against the file it runs or loads
    /// (`commandLine[0]`), before that file is used.
    func verifyDigest() throws {
        guard let expected = sha256 else { return }
        let file = commandLine[0]
        guard FileManager.default.fileExists(atPath: file) else {
            throw InputError("plugin `\(name)` (from \(origin)): \(file) does not exist")
        }
        let actual = try SHA256Hex.of(file: file)
        guard actual.lowercased() == expected.lowercased() else {
            throw InputError(
                "plugin `\(name)` (from \(origin)): \(file) has sha256 \(actual), not the \(expected) its entry declares",
                hint:
                    "the plugin file changed since the entry was written; check where it came from, then update `sha256`"
            )
        }
    }
}
