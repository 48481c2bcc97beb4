/// How a `gvlt run` ended and what came back, for every kind of image: the summary it prints,
/// its `--json` report and its exit status.
public struct RunReport: Encodable, Sendable {
    public enum Outcome: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
        /// The guest init failed before the program could run.
        case initError
        case timedOut(Double)
        /// QEMU itself failed.
        case qemuFailed(Int32)
        /// The VM stopped without reporting the program's result; `why` says what is known.
        case noResult(why: String)
    }

    public var image: String
    /// exited, signaled, init-error, timed-out, no-result or qemu-failed.
    public var result: String
    /// gvlt run's own exit status.
    public var status: Int32
    public var exitCode: Int32?
    public var signal: Int32?
    /// Seconds the VM ran, boot included.
    public var executionTime: Double
    public var accel: String
    public var outputs: [String]
    public var missingOutputs: [String]
    /// The line `gvlt run` prints.
    public let summary: String

    enum CodingKeys: String, CodingKey {
        case image, result, status, signal, accel, outputs
        case exitCode = "exit_code"
        case executionTime = "execution_time"
        case missingOutputs = "missing_outputs"
    }

    public init(
        image: String, outcome: Outcome, executionTime: Double, accel: String, outputs: [String],
        missingOutputs: [String] = []
    ) {
        self.image = image
        self.executionTime = executionTime
        self.accel = accel
        self.outputs = outputs
        self.missingOutputs = missingOutputs
        switch outcome {
        case .exited(let code):
            (result, status, exitCode, summary) = ("exited", code, code, "the program exited with status \(code)")
        case .signaled(let number):
            (result, status, signal, summary) = (
                "signaled", 128 + number, number, "the program was killed by signal \(number)"
            )
        case .initError:
            (result, status, summary) = (
                "init-error", 255, "the guest init failed before the program could run (see its error above)"
            )
        case .timedOut(let seconds):
            (result, status, summary) = ("timed-out", 124, "timed out after \(Int(seconds)) s; the VM was stopped")
        case .qemuFailed(let code):
            (result, status, summary) = ("qemu-failed", 125, "QEMU failed (status \(code)); see its message above")
        case .noResult(let why):
            (result, status, summary) = ("no-result", 125, why)
        }
        // Outputs the run was asked for and did not get fail it, as they fail a worker's task.
        if !missingOutputs.isEmpty && status == 0 { status = 1 }
    }

    /// What `gvlt run` prints on stderr when the VM is done.
    public var lines: String {
        var text = "gvlt run: \(summary) (\(String(format: "%.1f", executionTime)) s)\n"
        for path in outputs { text += "gvlt run: output \(path)\n" }
        if !missingOutputs.isEmpty {
            text +=
                "gvlt run: error: requested outputs not written by the program: \(missingOutputs.joined(separator: ", "))\n"
        }
        return text
    }
}
