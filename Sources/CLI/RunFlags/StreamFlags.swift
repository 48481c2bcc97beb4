import ArgumentParser
import Core
import Foundation

/// Which of the guest's streams are shown live and which are stored.
struct StreamFlags: ParsableArguments {
    @Flag(help: "Show the program's output live (its part of the console) instead of the whole console.")
    var stdout = false

    @Flag(help: "Show QEMU's own messages live; with --stdout, only these two streams are shown.")
    var stderr = false

    @Flag(help: "Write the program's output to OUTPUT-DIR/stdout (a task's storeStdout).")
    var storeStdout = false

    @Flag(help: "Write QEMU's own messages to OUTPUT-DIR/stderr (a task's storeStderr).")
    var storeStderr = false

    func apply(to request: inout RunRequest) {
        request.showProgramOnly = stdout
        request.storeStdout = storeStdout
        request.storeStderr = storeStderr
    }

    /// Where each stream goes; `shown` is stdout, or stderr when the JSON report owns stdout.
    func context(scratch: ScratchDirectory, progress: ProgressReporter, shown: FileHandle, quiet: Bool) -> RunContext {
        let whole = !stdout && !stderr
        return RunContext(
            scratch: scratch, progress: progress,
            console: { if whole { shown.write($0) } },
            program: { if stdout { shown.write($0) } },
            qemuStderr: { if stderr || !stdout { FileHandle.standardError.write($0) } },
            note: Self.note(quiet: quiet))
    }

    /// Where a run's notes go: stderr, as `note: …`, unless --quiet.
    static func note(quiet: Bool) -> (String) -> Void {
        { if !quiet { FileHandle.standardError.write(Data("note: \($0)\n".utf8)) } }
    }
}
