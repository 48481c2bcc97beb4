import Core
import Foundation

/// `gvlt run`, `inspect` and `extract` for Nanos images, as `ops run` boots them on-prem: the
/// program, its arguments and environment are fixed in the image, so only resources, a volume
/// and the timeout come from the request.
public final class NanosRunner: ImageRunning, ImageInspecting, ImageExtracting {
    public let name = "nanos"
    public let imageKind = "Nanos"
    /// `--volume DIR` (attachment %1) and `-c MANIFEST` (its RunConfig).
    public struct RunSettings: BuildSettings {
        public var volume: String?
        public var manifest: String?
        public enum CodingKeys: String, CodingKey, CaseIterable { case volume, manifest }
    }

    public let runOptionKeys = RunSettings.optionKeys

    public init() {}

    public func recognizes(image: String) -> ImageRecognition {
        NanosInspector.isNanosImage(image) ? .certain : .no
    }

    /// The parts of a request a Nanos image cannot take, with the flag or task field that gave them.
    static func refuseLinuxOnly(_ request: RunRequest) throws {
        let task = request.task
        for (flag, used) in [
            ("--input", !request.inputs.isEmpty), ("--output", !request.outputs.isEmpty),
            ("--env", !request.env.isEmpty),
            ("--command", request.command != nil), ("--args", !request.args.isEmpty),
            ("the task's command", !(task?.command.isEmpty ?? true)),
            ("the task's args", !(task?.args.isEmpty ?? true)),
            ("the task's env", !(task?.env.isEmpty ?? true)),
            ("the task's inputContexts", !(task?.inputContexts.isEmpty ?? true)),
            ("the task's outputContexts", !(task?.outputContexts.isEmpty ?? true))
        ] where used {
            throw InputError(
                "\(flag) is for Linux VM images; a Nanos image's program, arguments and environment are fixed when it is built",
                hint: "rebuild with the manifest changed, and pass files to the program with --volume DIR")
        }
        for (flag, used) in [
            ("--stdout", request.showProgramOnly), ("--store-stdout", request.storeStdout || task?.storeStdout == true),
            ("--store-stderr", request.storeStderr || task?.storeStderr == true)
        ] where used {
            throw InputError(
                "\(flag) is for Linux VM images: a Nanos console has no marks that set the program's output apart",
                hint: "the whole console is shown live; drop \(flag) (or storeStdout/storeStderr in the task)")
        }
    }

    func nanosRun(_ request: RunRequest, checking: Bool) throws -> NanosRun {
        try Self.refuseLinuxOnly(request)
        let settings = try RunSettings.decode(request.options)
        let manifestPath = settings.manifest
        let manifest = try manifestPath.map(OpsManifest.init(path:))
        var run = NanosRun(image: request.image)
        run.volume = settings.volume
        run.outputDirectory = request.outputDirectory
        run.timeout = try request.timeoutSeconds()
        run.cpus = try request.cpuCount() ?? manifest?.run.cpus ?? 1
        guard run.cpus >= 1 else {
            throw InputError("\(manifestPath ?? "the manifest"): RunConfig.CPUs must be at least 1")
        }
        if let memory = try request.memoryArgument() {
            run.memory = memory
        } else if let text = manifest?.run.memory, let bytes = OpsManifest.parseSize(text) {
            run.memory = "\(max(1, bytes >> 20))M"
        }
        (run.cpus, run.memory) = try request.fitted(
            cpus: run.cpus,
            cpuOrigin: request.cpus == nil && request.task?.millicores == nil && manifest?.run.cpus != nil
                ? "\(manifestPath ?? "the manifest"): RunConfig.CPUs" : nil,
            memory: run.memory,
            memoryOrigin: request.memory == nil && request.task?.memoryBytes == nil && manifest?.run.memory != nil
                ? "\(manifestPath ?? "the manifest"): RunConfig.Memory" : nil)
        let wanted =
            request.taskGPUs.map { ($0, "the task's resources.gpus") } ?? (
                request.withoutGPUs ? 0 : manifest?.run.gpus ?? 0, "the manifest's RunConfig.GPUs"
            )
        run.gpus = try request.passthroughGPUs(wanted: wanted.0, from: wanted.1, checking: checking)
        run.extraQEMUArguments = request.qemuArguments
        run.qemuPath = request.qemuPath
        return run
    }

    public func qemuCommand(_ request: RunRequest) throws -> [String] {
        let run = try nanosRun(request, checking: false)
        try run.preflight()
        var volumeImage: String?
        if let volume = run.volume {
            // The checking pass has no shares directory; the shown command gets the real volume.
            volumeImage = "VOLUME"
            if let shares = request.sharesDirectory {
                try RunRequest.prepareEmptyDirectory(shares)
                volumeImage = shares + "/volume.img"
                try NanosRun.makeVolume(from: volume, to: volumeImage!, freeSpace: run.volumeFreeSpace)
            }
        }
        return [request.qemuPath ?? "qemu-system-x86_64"]
            + run.qemuArguments(accel: request.accel.shown, volumeImage: volumeImage)
    }

    public func run(_ request: RunRequest, context: RunContext) throws -> RunReport {
        let run = try nanosRun(request, checking: true)
        let accel = try request.accel.resolve(
            qemu: try QEMUProbe.resolve(request.qemuPath), scratch: context.scratch.path, note: context.note)
        let outcome = try run.run(accel: accel, scratch: context.scratch, console: context.console)
        let result: RunReport.Outcome
        switch outcome.result {
        case .exited(let code): result = .exited(code)
        case .timedOut(let seconds): result = .timedOut(seconds)
        case .qemuFailed(let code): result = .qemuFailed(code)
        case .unknown(let code) where outcome.klibFailure != nil:
            result = .noResult(
                why:
                    "Nanos stopped before the program ran (QEMU status \(code)): it printed `\(outcome.klibFailure!)`. A klib in the image could not start: the gpu_nvidia klib finds no NVIDIA GPU on this host (pass one with --gpu), was built for another Nanos release than the image's kernel, or is larger than the 2 MiB that Nanos releases since December 2024 can load"
            )
        case .unknown(let code):
            result = .noResult(
                why: outcome.debugExit
                    ? "the VM powered off (QEMU status \(code)) without reporting an exit code"
                    : "the VM stopped (QEMU status \(code)); the image has no debug_exit:t, so the program's exit code is unknown (build with --local-run to get it)"
            )
        }
        return RunReport(
            image: request.image, outcome: result, executionTime: outcome.executionTime, accel: accel,
            outputs: outcome.copiedOutputs)
    }

    public func inspect(image: String, scratch: ScratchDirectory) throws -> InspectionReport {
        let report = try NanosInspector.inspect(image)
        var lines = [
            "image:      \(report.image) (\(ProgressReporter.bytes(report.bytes)), \(report.sha256))",
            "kind:       Nanos unikernel\(report.stage2Bytes.map { " (stage2 \($0) bytes)" } ?? "")"
        ]
        for partition in report.partitions {
            lines.append(
                "partition \(partition.number): \(partition.type)\(partition.active ? ", active" : ""), at \(partition.start), \(ProgressReporter.bytes(partition.size))"
            )
        }
        for file in report.bootFiles { lines.append("boot:       \(file.path) (\(file.bytes) bytes)") }
        lines.append(
            "root:       label `\(report.rootLabel)`, UUID \(report.rootUUID), \(report.rootLogExtensions) log extension\(report.rootLogExtensions == 1 ? "" : "s")"
        )
        lines.append(report.root)
        return InspectionReport(text: lines.joined(separator: "\n") + "\n", value: report)
    }

    /// PATH in the root filesystem, or `boot:PATH` in the boot filesystem.
    public func extract(image: String, path: String, to output: String, force: Bool) throws -> Int64 {
        let nanos = try NanosImageReader.open(image)
        let inBoot = path.hasPrefix("boot:")
        let inside = inBoot ? String(path.dropFirst("boot:".count)) : path
        let volume = inBoot ? nanos.boot : nanos.root
        guard let entry = volume.entry(at: inside) else {
            throw InputError("\(path) is not in \(image)", hint: "gvlt inspect \(image) lists what the image holds")
        }
        if case .symlink(let target) = TFSVolume.kind(of: entry) {
            throw InputError("\(path) is a symlink to \(target) in the image", hint: "extract \(target) instead")
        }
        try OutputPrecheck.check(output, force: force)
        let atomic = try AtomicOutput(path: output, force: force)
        var committed = false
        defer { if !committed { atomic.abandon() } }
        let bytes = try volume.write(entry, path: path, to: atomic.fd, displayName: output)
        try atomic.commit()
        committed = true
        return Int64(bytes)
    }
}
