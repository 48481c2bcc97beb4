import Core
import Foundation

extension LocalRun {
    public struct Outcome {
        public var result: Result
        public var accel: String
        public var copiedOutputs: [String]
        public var missingOutputs: [String]
        /// How long the VM ran, boot included.
        public var executionTime: Double
    }

    /// Where a run's output goes as it comes.
    public struct Streams {
        /// The guest's whole console, unchanged.
        public var console: (Data) -> Void = { _ in }
        /// The program's part of the console (ProgramOutput).
        public var program: (Data) -> Void = { _ in }
        /// QEMU's own messages.
        public var qemuStderr: (Data) -> Void = { _ in }
        public init() {}
    }

    /// What a run checks before it starts anything, so that `--print-qemu-command` checks it too: the
    /// image is a Firestarter disk, and every input exists and lands under the input share.
    public func preflight() throws {
        guard FileManager.default.fileExists(atPath: image) else {
            throw InputError(
                "image \(image) does not exist", hint: "build one with `gvlt build --backend linuxvm … -o \(image)`")
        }
        let sector = try SharedFile.openRegular(image, what: "image", followSymlinks: true)
        var first = [UInt8](repeating: 0, count: 512)
        _ = try first.withUnsafeMutableBytes { try sector.read(into: $0, at: 0) }
        // A qcow2 disk's sectors are behind its cluster tables; QEMU itself reads those.
        guard diskFormat != "raw" || (try? MBR.decode(first))?.partitions.count == 2 else {
            throw InputError(
                "\(image) is not a Firestarter image (no MBR with a boot and a root partition)",
                hint: "gvlt run boots images made by `gvlt build --backend linuxvm`")
        }

        for input in inputs {
            _ = try GevulotTask.relative(
                input.destination, under: GevulotTask.inputRoot, at: "input \(input.source):\(input.destination)")
            guard FileManager.default.fileExists(atPath: input.source) else {
                throw InputError("input \(input.source): no such file or directory")
            }
        }
    }

    /// The worker's three shares in `shares`: the inputs copied into `input`, the worker's
    /// `config.yaml` in `rt-config`, an empty `output`. A directory that holds anything else is
    /// refused, so that nothing of the user's is mixed in or overwritten.
    public func prepareShares(at shares: String) throws {
        try RunRequest.prepareEmptyDirectory(shares)
        for share in ["input", "output", "rt-config"] {
            try FileManager.default.createDirectory(atPath: shares + "/" + share, withIntermediateDirectories: true)
        }
        try Data(workerConfig.yaml().utf8).write(to: URL(fileURLWithPath: shares + "/rt-config/config.yaml"))
        for input in inputs {
            // preflight() checked the destination and that the source exists.
            let relative = try GevulotTask.relative(
                input.destination, under: GevulotTask.inputRoot,
                at: "input \(input.source):\(input.destination)")
            let target = shares + "/input/" + relative
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: target).deletingLastPathComponent().path,
                withIntermediateDirectories: true)
            if movableInputs.contains(input.source), rename(input.source, target) == 0 { continue }
            try FileManager.default.copyItem(atPath: input.source, toPath: target)
        }
    }

    /// Runs the image: prepares the shares, starts QEMU, streams the console as it comes, enforces
    /// the timeout, copies the outputs and stores the streams asked for. Temp directories are
    /// removed, also on Ctrl-C.
    public func run(scratch: ScratchDirectory, progress: ProgressReporter, streams: Streams, note: (String) -> Void)
        throws -> Outcome
    {
        let qemu = try QEMUProbe.resolve(qemuPath)
        try preflight()

        let shares = sharesDirectory ?? scratch.path + "/shares"
        try prepareShares(at: shares)

        let resolvedAccel = try accel.resolve(qemu: qemu, scratch: scratch.path, note: note)

        final class Reported: @unchecked Sendable {
            let lock = NSLock()
            var result: Result?
        }
        let reported = Reported()
        let relativeOutputs = try outputs.map {
            try GevulotTask.relative($0, under: GevulotTask.outputRoot, at: "output \($0)")
        }
        if storeStdout || storeStderr {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        func create(_ name: String) throws -> FileHandle {
            let path = outputDirectory + "/" + name
            guard FileManager.default.createFile(atPath: path, contents: nil),
                let handle = FileHandle(forWritingAtPath: path)
            else {
                throw InputError("cannot write \(path)", hint: "check --output-dir")
            }
            return handle
        }
        let stdoutFile = try storeStdout ? create("stdout") : nil
        let stderrFile = try storeStderr ? create("stderr") : nil
        let program = ProgramOutput { data in
            streams.program(data)
            stdoutFile?.write(data)
        }
        let finished = try QEMUProcess.run(
            qemu, qemuArguments(accel: resolvedAccel, shares: shares), timeout: timeout,
            console: { data in
                streams.console(data)
                program.consume(data)
            },
            stderr: { data in
                streams.qemuStderr(data)
                stderrFile?.write(data)
            }
        ) { line in
            if let result = LocalRun.result(fromConsoleLine: line) {
                reported.lock.withLock { reported.result = result }
            }
        }
        program.finish()
        var stored: [String] = []
        for (file, name) in [(stdoutFile, "stdout"), (stderrFile, "stderr")] {
            guard let file else { continue }
            try file.close()
            stored.append(outputDirectory + "/" + name)
        }

        // The init's line says what happened; QEMU's status, set by the init through debug-exit, must
        // agree, so a program that prints a fake line (then crashes the guest) is not believed.
        let result: Result
        let qemuStatus = finished.status
        let success = Int32(workerConfig.debugExit?.successCode ?? 3)
        if finished.timedOut {
            result = .timedOut(timeout!)
        } else if let reported = reported.lock.withLock({ reported.result }) {
            switch reported {
            case .exited(0):
                result = qemuStatus == success ? reported : .noResult(qemuStatus: qemuStatus)
            default:
                result = qemuStatus == success || qemuStatus == 0 ? .noResult(qemuStatus: qemuStatus) : reported
            }
        } else {
            result = .noResult(qemuStatus: qemuStatus)
        }

        // Outputs: the requested paths, or everything the program wrote when none were requested.
        var copied = stored
        var missing: [String] = []
        let produced = shares + "/output"
        let wanted =
            relativeOutputs.isEmpty
            ? ((try? FileManager.default.contentsOfDirectory(atPath: produced))?.sorted() ?? []) : relativeOutputs
        if !wanted.isEmpty {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        for relative in wanted {
            let source = produced + "/" + relative
            guard FileManager.default.fileExists(atPath: source) else {
                missing.append(relative)
                continue
            }
            let destination = outputDirectory + "/" + relative
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: destination).deletingLastPathComponent().path,
                withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: destination) {
                try FileManager.default.removeItem(atPath: destination)
            }
            try FileManager.default.copyItem(atPath: source, toPath: destination)
            copied.append(destination)
        }
        return Outcome(
            result: result, accel: resolvedAccel, copiedOutputs: copied, missingOutputs: missing,
            executionTime: finished.seconds)
    }
}
