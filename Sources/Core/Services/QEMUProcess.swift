import Foundation

/// One QEMU run: the console streamed as it comes (and split into lines for whoever watches for a
/// result line), a timeout that stops the VM, and the child registered with Cleanup so Ctrl-C stops
/// it too. Backends' `gvlt run` paths build the arguments; this only runs them.
public enum QEMUProcess {
    public struct Finished: Sendable {
        public var status: Int32
        public var timedOut: Bool
        /// From start to exit, boot included.
        public var seconds: Double
    }

    /// `stderr`, when given, gets QEMU's own messages apart from the guest's console; otherwise they
    /// are mixed into `console` in the order they came.
    public static func run(
        _ qemu: String, _ arguments: [String], timeout: Double?, console: @escaping (Data) -> Void,
        stderr: ((Data) -> Void)? = nil, line: @escaping (Substring) -> Void = { _ in }
    ) throws -> Finished {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: qemu)
        process.arguments = arguments
        let pipe = Pipe()
        let errorPipe = stderr == nil ? pipe : Pipe()
        process.standardOutput = pipe
        process.standardError = errorPipe
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        let waitForExit = try process.runReturningWaiter()
        let token = Cleanup.shared.register(child: process.processIdentifier)
        defer { Cleanup.shared.unregister(token) }

        final class Pending: @unchecked Sendable {
            var data = Data()
        }
        let pending = Pending()
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let handle = pipe.fileHandleForReading
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                console(chunk)
                pending.data.append(chunk)
                while let newline = pending.data.firstIndex(of: UInt8(ascii: "\n")) {
                    let text = String(decoding: pending.data[pending.data.startIndex..<newline], as: UTF8.self)
                    pending.data.removeSubrange(pending.data.startIndex...newline)
                    line(Substring(text))
                }
            }
            finished.signal()
        }
        let errorsDone = DispatchSemaphore(value: 0)
        if let stderr {
            DispatchQueue.global().async {
                while true {
                    let chunk = errorPipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    stderr(chunk)
                }
                errorsDone.signal()
            }
        } else {
            errorsDone.signal()
        }
        var timedOut = false
        if let timeout {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning {
                timedOut = true
                process.terminate()
                usleep(500_000)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
        }
        waitForExit()
        let seconds = Date().timeIntervalSince(started)
        finished.wait()
        errorsDone.wait()
        return Finished(status: process.terminationStatus, timedOut: timedOut, seconds: seconds)
    }
}
