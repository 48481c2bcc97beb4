import Foundation
import Logging

/// An `exec` plugin whose entry says `"stream": true`: one process answers every request of a gvlt
/// run (describe, then build or contribute), one JSON line in and its answer lines out per request.
/// It saves a start per request for plugins that are slow to start (a JVM, a large Python import).
/// The host closes the plugin's stdin when it is done with it, and the plugin then exits. A crash, a
/// hang past the request's timeout or a stray line ends the session with the same errors as a
/// one-shot plugin.
final class ExecStream: PluginTransport, @unchecked Sendable {
    let entry: PluginEntry
    /// The timeout of the next request (describe's, then build's).
    var timeout: Double = 30
    private let lock = NSLock()
    private var process: Process?
    private var input: FileHandle?
    private var pending: (messages: PluginMessages, done: DispatchSemaphore)?
    private var stdoutClosed = false
    private var stray: Data?
    private var stderr = Data()
    private var stderrDone = DispatchSemaphore(value: 0)
    private var cleanupToken: Cleanup.Token?

    init(entry: PluginEntry) {
        self.entry = entry
    }

    deinit { finish() }

    private func start() throws {
        try entry.verifyDigest()
        let process = entry.makeProcess()
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw entry.startFailure(error)
        }
        cleanupToken = Cleanup.shared.register(child: process.processIdentifier)
        self.process = process
        self.input = input.fileHandleForWriting
        let out = output.fileHandleForReading, err = errors.fileHandleForReading
        // Blocking readers on their own threads: lines reach the request waiting for them in order.
        Thread.detachNewThread { [weak self] in
            var buffer = Data()
            while true {
                let chunk = out.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = Data(buffer[buffer.startIndex..<newline])
                    buffer.removeSubrange(buffer.startIndex...newline)
                    self?.deliver(line)
                }
            }
            if !buffer.isEmpty { self?.deliver(buffer) }
            self?.lock.withLock {
                self?.stdoutClosed = true
                self?.pending?.done.signal()
            }
        }
        let stderrDone = self.stderrDone
        Thread.detachNewThread { [weak self] in
            while true {
                let chunk = err.availableData
                if chunk.isEmpty { break }
                self?.lock.withLock { self?.stderr.append(chunk) }
            }
            stderrDone.signal()
        }
    }

    private func deliver(_ line: Data) {
        let current = lock.withLock { () -> (messages: PluginMessages, done: DispatchSemaphore)? in
            if pending == nil, stray == nil, !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { stray = line }
            return pending
        }
        guard let current else { return }
        current.messages.handle(line: line)
        if current.messages.isFinished { current.done.signal() }
    }

    func call(_ method: String, params: [String: Any], progress: ProgressReporter?, logger: Logger?) throws -> [String:
        Any]
    {
        if process == nil { try start() }
        let what = "plugin `\(entry.name)` (\(method))"
        let messages = PluginMessages(plugin: entry.name, progress: progress, logger: logger)
        let done = DispatchSemaphore(value: 0)
        let (closed, earlier) = lock.withLock { () -> (Bool, Data?) in
            pending = (messages, done)
            return (stdoutClosed, stray)
        }
        defer { lock.withLock { pending = nil } }
        if let earlier {
            finish()
            throw InputError(
                "\(what): the plugin wrote a line outside any request: \(String(decoding: earlier.prefix(200), as: UTF8.self))\(stderrNote())",
                hint: "a streaming plugin answers each request line with its own lines, ending in `result` or `error`")
        }
        var request = try PluginProtocol.request(method, params: params)
        request.append(0x0A)
        if !closed { try? input?.write(contentsOf: request) }
        if !closed && done.wait(timeout: .now() + timeout) == .timedOut {
            kill()
            throw InputError(
                "\(what) did not finish within \(Int(timeout)) s and was killed\(stderrNote())",
                hint: "raise its `timeout` option in \(entry.origin) if it needs longer")
        }
        if messages.isFinished, let result = try messages.outcome(what: what, context: stderrNote()) {
            return result
        }
        // Its stdout ended before the answer did: it exited or crashed.
        process?.waitUntilExit()
        let status =
            process.map {
                $0.terminationReason == .uncaughtSignal
                    ? "was killed by signal \($0.terminationStatus)" : "exited with status \($0.terminationStatus)"
            } ?? "ended"
        throw InputError(
            "\(what) \(status) without a result\(stderrNote())",
            hint: "a streaming plugin keeps reading requests until its stdin closes")
    }

    private func stderrNote() -> String {
        if process?.isRunning == false { _ = stderrDone.wait(timeout: .now() + 1) }
        return PluginProtocol.stderrNote(lock.withLock { String(decoding: stderr, as: UTF8.self) })
    }

    private func kill() {
        guard let process, process.isRunning else { return }
        process.terminate()
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Closes the plugin's stdin, which ends the session; one that does not exit within 5 s is killed.
    func finish() {
        try? input?.close()
        input = nil
        if let process, process.isRunning {
            let exited = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                process.waitUntilExit(); exited.signal()
            }
            if exited.wait(timeout: .now() + 5) == .timedOut { kill() }
        }
        if let cleanupToken { Cleanup.shared.unregister(cleanupToken) }
        cleanupToken = nil
    }
}
