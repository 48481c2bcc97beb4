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

    /// The program and its leading arguments.
    var commandLine: [String] {
        if let command = entry.command, !command.isEmpty { return command }
        return [entry.path ?? ""]
    }

    /// The file the entry's sha256 is checked against: `path`, else the command's program.
    func checkDigest() throws {
        guard let expected = entry.sha256 else { return }
        let file = commandLine[0]
        guard FileManager.default.fileExists(atPath: file) else {
            throw InputError("plugin `\(entry.name)` (from \(entry.origin)): \(file) does not exist")
        }
        let actual = try SHA256Hex.of(file: file)
        guard actual.lowercased() == expected.lowercased() else {
            throw InputError("plugin `\(entry.name)` (from \(entry.origin)): \(file) has sha256 \(actual), not the \(expected) its entry declares",
                             hint: "the plugin file changed since the entry was written; check where it came from, then update `sha256`")
        }
    }

    public func call(_ method: String, params: [String: Any] = [:], progress: ProgressReporter? = nil,
                     logger: Logger? = nil) throws -> [String: Any] {
        try checkDigest()
        let process = Process()
        let program = commandLine[0]
        process.executableURL = URL(fileURLWithPath: program.contains("/") ? program : (HostTool(program, apt: program, purpose: "plugin \(entry.name)").locate() ?? program))
        process.arguments = Array(commandLine.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment[PluginProtocol.cookieVariable] = PluginProtocol.cookieValue
        process.environment = environment
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors

        final class State: @unchecked Sendable {
            let lock = NSLock()
            var stderr = Data()
            var buffer = Data()
            var result: [String: Any]?
            var failure: String?
            var protocolError: String?
        }
        let state = State()
        let name = entry.name
        errors.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            state.lock.withLock { state.stderr.append(chunk) }
        }
        @Sendable func handle(line: Data) {
            guard !line.isEmpty else { return }
            guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], let type = object["type"] as? String else {
                state.lock.withLock {
                    if state.protocolError == nil {
                        state.protocolError = "wrote a line that is not a \(PluginProtocol.name) message: \(String(decoding: line.prefix(200), as: UTF8.self))"
                    }
                }
                return
            }
            switch type {
            case "progress": progress?.note("\(name): \(object["message"] as? String ?? "")")
            case "log":
                let message = "\(name): \(object["message"] as? String ?? "")"
                switch object["level"] as? String {
                case "debug": logger?.debug("\(message)")
                case "warning": logger?.warning("\(message)")
                case "error": logger?.error("\(message)")
                default: logger?.info("\(message)")
                }
            case "result": state.lock.withLock { state.result = object["result"] as? [String: Any] ?? [:] }
            case "error": state.lock.withLock { state.failure = object["message"] as? String ?? "(no message)" }
            default: state.lock.withLock { if state.protocolError == nil { state.protocolError = "sent an unknown message type `\(type)`" } }
            }
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
            lines.forEach(handle(line:))
        }

        let wait: () -> Void
        do {
            wait = try process.runReturningWaiter()
        } catch {
            throw InputError("cannot start plugin `\(entry.name)` (\(commandLine.joined(separator: " "))): \(error.localizedDescription)",
                             hint: "check the `path`/`command` of its entry in \(entry.origin)")
        }
        let token = Cleanup.shared.register(child: process.processIdentifier)
        defer { Cleanup.shared.unregister(token) }
        let request: [String: Any] = ["protocol": PluginProtocol.version, "method": method, "params": params]
        var requestData = try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys])
        requestData.append(0x0A)
        try? input.fileHandleForWriting.write(contentsOf: requestData)
        try? input.fileHandleForWriting.close()

        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { wait(); finished.signal() }
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
        let tail = state.lock.withLock { () -> Data in let data = state.buffer; state.buffer = Data(); return data }
        for line in tail.split(separator: 0x0A) { handle(line: Data(line)) }
        let stderrRest = errors.fileHandleForReading.readDataToEndOfFile()
        let stderrText = state.lock.withLock { String(decoding: state.stderr + stderrRest, as: UTF8.self) }
        let shown = stderrText.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
        let stderrNote = shown.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "" : "\nits stderr:\n\(shown)"

        let what = "plugin `\(entry.name)` (\(method))"
        if timedOut {
            throw InputError("\(what) did not finish within \(Int(timeout)) s and was killed\(stderrNote)",
                             hint: "raise its `timeout` option in \(entry.origin) if it needs longer")
        }
        if let problem = state.lock.withLock({ state.protocolError }) {
            throw InputError("\(what) \(problem)\(stderrNote)", hint: "plugins write only \(PluginProtocol.name) JSON lines to stdout; diagnostics go to stderr")
        }
        if let failure = state.lock.withLock({ state.failure }) {
            throw InputError("\(what) failed: \(failure)\(stderrNote)")
        }
        guard process.terminationStatus == 0, process.terminationReason == .exit else {
            let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
            throw InputError("\(what) \(how) without a result\(stderrNote)")
        }
        guard let result = state.lock.withLock({ state.result }) else {
            throw InputError("\(what) exited without a result\(stderrNote)", hint: "a plugin ends each request with a `result` or `error` line")
        }
        return result
    }
}
