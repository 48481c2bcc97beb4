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
    private var process: ChildProcess?
    private var input: FileHandle?
    private var pending: (messages: PluginMessages, done: DispatchSemaphore)?
    private var stdoutClosed = false
    private var stray: Data?
    private var stderr = PluginStderr()
    private var stderrDone = DispatchSemaphore(value: 0)
    /// Why the plugin was killed for its output, if it was.
    private var overflowReason: String?

    init(entry: PluginEntry) {
        self.entry = entry
    }

    deinit { finish() }

    private func start() throws {
        try entry.verifyDigest()
        let process: ChildProcess
        do {
            process = try entry.startChild()
        } catch {
            throw entry.startFailure(error)
        }
        self.process = process
        self.input = process.standardInput
        let out = process.standardOutput, err = process.standardError
        // Blocking readers on their own threads: lines reach the request waiting for them in order.
        Thread.detachNewThread { [weak self] in
            var splitter = PluginLineSplitter()
            while true {
                let chunk = out.availableData
                if chunk.isEmpty { break }
                let (lines, overflowed) = splitter.append(chunk)
                lines.forEach { self?.deliver($0) }
                if overflowed { self?.overflow(splitter.overflowReason) }
            }
            if let last = splitter.remainder() { self?.deliver(last) }
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
                guard let self else { continue }
                let past = self.lock.withLock { self.stderr.append(chunk) }
                if past { self.overflow(self.lock.withLock { self.stderr.overflowReason }) }
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
        if let reason = lock.withLock({ overflowReason }) {
            throw InputError(
                "\(what) wrote \(reason) and was killed\(stderrNote())",
                hint:
                    "a plugin's protocol lines and its stderr are bounded; write large data to a file and pass its path"
            )
        }
        // Its stdout ended before the answer did: it exited or crashed.
        let status = process?.wait()?.description ?? "ended"
        throw InputError(
            "\(what) \(status) without a result\(stderrNote())",
            hint: "a streaming plugin keeps reading requests until its stdin closes")
    }

    private func stderrNote() -> String {
        if process?.isRunning == false { _ = stderrDone.wait(timeout: .now() + 1) }
        return lock.withLock { stderr.note }
    }

    private func kill() {
        process?.killGroup()
    }

    /// Kills a plugin that wrote past its bound; the request waiting for it fails with `reason`.
    private func overflow(_ reason: String) {
        let first = lock.withLock { () -> Bool in
            guard overflowReason == nil else { return false }
            overflowReason = reason
            return true
        }
        if first { kill() }
    }

    /// Closes the plugin's stdin, which ends the session; one that does not exit within 5 s is killed.
    func finish() {
        try? input?.close()
        input = nil
        if let process, process.wait(timeout: 5) == nil { kill() }
    }
}
