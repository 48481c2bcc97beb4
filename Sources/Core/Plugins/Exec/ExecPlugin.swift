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
        let process = entry.makeProcess()
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors

        final class State: @unchecked Sendable {
            let lock = NSLock()
            var stderr = Data()
            var buffer = Data()
        }
        let state = State()
        let messages = PluginMessages(plugin: entry.name, progress: progress, logger: logger)
        errors.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            state.lock.withLock { state.stderr.append(chunk) }
        }
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            var lines: [Data] = []
            state.lock.withLock {
                state.buffer.append(chunk)
                while let newline = state.buffer.firstIndex(of: 0x0A) {
                    lines.append(state.buffer[state.buffer.startIndex..<newline])
                    state.buffer.removeSubrange(state.buffer.startIndex...newline)
                }
            }
            lines.forEach(messages.handle(line:))
        }

        let wait: () -> Void
        do {
            wait = try process.runReturningWaiter()
        } catch {
            throw entry.startFailure(error)
        }
        let token = Cleanup.shared.register(child: process.processIdentifier)
        defer { Cleanup.shared.unregister(token) }
        var requestData = try PluginProtocol.request(method, params: params)
        requestData.append(0x0A)
        try? input.fileHandleForWriting.write(contentsOf: requestData)
        try? input.fileHandleForWriting.close()

        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            wait(); finished.signal()
        }
        let timedOut = finished.wait(timeout: .now() + timeout) == .timedOut
        if timedOut {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
        }
        output.fileHandleForReading.readabilityHandler = nil
        errors.fileHandleForReading.readabilityHandler = nil
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        state.lock.withLock { state.buffer.append(rest) }
        let tail = state.lock.withLock { () -> Data in
            let data = state.buffer; state.buffer = Data(); return data
        }
        messages.handle(lines: tail)
        let stderrRest = errors.fileHandleForReading.readDataToEndOfFile()
        let stderrText = state.lock.withLock { String(decoding: state.stderr + stderrRest, as: UTF8.self) }
        let stderrNote = PluginProtocol.stderrNote(stderrText)

        let what = "plugin `\(entry.name)` (\(method))"
        if timedOut {
            throw InputError(
                "\(what) did not finish within \(Int(timeout)) s and was killed\(stderrNote)",
                hint: "raise its `timeout` option in \(entry.origin) if it needs longer")
        }
        let result = try messages.outcome(what: what, context: stderrNote)
        guard process.terminationStatus == 0, process.terminationReason == .exit else {
            let how =
                process.terminationReason == .uncaughtSignal
                ? "was killed by signal \(process.terminationStatus)"
                : "exited with status \(process.terminationStatus)"
            throw InputError("\(what) \(how) without a result\(stderrNote)")
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
        InputError(
            "cannot start plugin `\(name)` (\(commandLine.joined(separator: " "))): \(error.localizedDescription)",
            hint: "check the `path`/`command` of its entry in \(origin)")
    }

    /// The plugin's process, not yet started, with the host's cookie in its environment.
    func makeProcess() -> Process {
        let process = Process()
        let program = commandLine[0]
        process.executableURL = URL(
            fileURLWithPath: program.contains("/")
                ? program : (HostTool(program, apt: program, purpose: "plugin \(name)").locate() ?? program))
        process.arguments = Array(commandLine.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment[PluginProtocol.cookieVariable] = PluginProtocol.cookieValue
        process.environment = environment
        return process
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
