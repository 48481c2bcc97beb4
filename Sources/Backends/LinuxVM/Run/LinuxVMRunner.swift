import Core
import Foundation

/// `gvlt run` for Firestarter images (and disks a plugin backend wrote to boot the same way): the
/// request's command, args, env and inputs become the worker's config and shares (LocalRun).
public final class LinuxVMRunner: ImageRunning, ImageInspecting {
    public let name = "linuxvm"
    public let imageKind = "Linux VM"
    public let runOptionKeys: [String] = []

    public init() {}

    /// Certain for an MBR with a boot and a root partition; possible for any other disk QEMU can
    /// boot, so that a wrong file gets this backend's own explanation.
    public func recognizes(image: String) -> ImageRecognition {
        guard let file = try? SharedFile.openRegular(image, what: "image", followSymlinks: true) else {
            return .possible
        }
        var sector = [UInt8](repeating: 0, count: 512)
        guard (try? sector.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }) == 512 else { return .possible }
        return (try? MBR.decode(sector))?.partitions.count == 2 ? .certain : .possible
    }

    func localRun(_ request: RunRequest, checking: Bool) throws -> LocalRun {
        var run = LocalRun(image: request.image)
        let task = request.task
        for context in task?.inputContexts ?? [] {
            run.inputs.append((try GevulotTask.localPath(context.source, what: "input context source"), context.target))
        }
        run.inputs += request.inputs
        run.movableInputs = request.downloadedInputs
        run.outputs = (task?.outputContexts.map(\.source) ?? []) + request.outputs
        run.outputDirectory = request.outputDirectory
        run.env = (task?.env ?? []) + request.env
        // The task's command carries its first arguments; its args follow. gvltctl drops the task's
        // args unless --command is given: here they are passed either way.
        let taskCommand = task?.command ?? []
        if let command = request.command {
            run.command = command
            run.args = request.args
        } else {
            run.command = taskCommand.first
            let chosen = request.args.isEmpty ? Array(taskCommand.dropFirst()) + (task?.args ?? []) : request.args
            run.args = run.command != nil || !chosen.isEmpty ? chosen : nil
        }
        run.timeout = try request.timeoutSeconds()
        (run.cpus, run.memory) = try request.fitted(
            cpus: try request.cpuCount() ?? 1, memory: try request.memoryArgument() ?? "512M")
        run.accel = request.accel
        run.gpus = try request.passthroughGPUs(
            wanted: request.taskGPUs ?? 0, from: "the task's resources.gpus", checking: checking)
        run.extraQEMUArguments = request.qemuArguments
        run.qemuPath = request.qemuPath
        run.sharesDirectory = request.sharesDirectory
        run.storeStdout = request.storeStdout || task?.storeStdout == true
        run.storeStderr = request.storeStderr || task?.storeStderr == true
        return run
    }

    public func qemuCommand(_ request: RunRequest) throws -> [String] {
        let run = try localRun(request, checking: false)
        try run.preflight()
        // Without a shares directory this is the checking pass, whose command is not shown.
        if let shares = request.sharesDirectory { try run.prepareShares(at: shares) }
        return [request.qemuPath ?? "qemu-system-x86_64"]
            + run.qemuArguments(accel: request.accel.shown, shares: request.sharesDirectory ?? "SHARES")
    }

    public func run(_ request: RunRequest, context: RunContext) throws -> RunReport {
        let run = try localRun(request, checking: true)
        if run.diskFormat != "raw" {
            context.note(
                "\(request.image) is a \(run.diskFormat) disk; gvlt boots it as one, but a Gevulot worker boots raw disks only"
            )
        }
        var streams = LocalRun.Streams()
        streams.console = context.console
        streams.program = context.program
        streams.qemuStderr = context.qemuStderr
        let outcome = try run.run(
            scratch: context.scratch, progress: context.progress, streams: streams, note: context.note)
        let result: RunReport.Outcome
        switch outcome.result {
        case .exited(let code): result = .exited(code)
        case .signaled(let signal): result = .signaled(signal)
        case .initError: result = .initError
        case .timedOut(let seconds): result = .timedOut(seconds)
        case .noResult(let status):
            result = .noResult(why: "the VM stopped (QEMU status \(status)) without reporting the program's result")
        }
        return RunReport(
            image: request.image, outcome: result, executionTime: outcome.executionTime, accel: outcome.accel,
            outputs: outcome.copiedOutputs, missingOutputs: outcome.missingOutputs)
    }

    public func inspect(image: String, scratch: ScratchDirectory) throws -> InspectionReport {
        let report = try ImageInspector.inspect(image, scratch: scratch.path)
        var lines = ["image:      \(report.image) (\(ProgressReporter.bytes(report.bytes)), \(report.sha256))"]
        for partition in report.partitions {
            lines.append(
                "partition \(partition.number): \(partition.type)\(partition.active ? ", active" : ""), at \(partition.start), \(ProgressReporter.bytes(partition.size))"
            )
        }
        lines.append("kernel:     \(report.kernelRelease ?? "unknown")")
        if let line = report.kernelCommandLine { lines.append("cmdline:    \(line)") }
        if let modules = report.initramfsModules {
            lines.append("initramfs:  \(modules.count) modules: \(modules.joined(separator: " "))")
        }
        lines.append(
            "root:       \(report.rootFilesystem)\(report.rootCompressor.map { " (\($0))" } ?? "")\(report.rootBytes.map { ", \(ProgressReporter.bytes($0))" } ?? "")"
        )
        lines.append("init:       \(report.initSHA256 ?? "not found")")
        if let config = report.bakedConfig {
            lines.append("baked config (/etc/gvlt/config.yaml):")
            for line in config.split(separator: "\n") { lines.append("  \(line)") }
        }
        if let nvidia = report.nvidia {
            lines.append("nvidia:     driver \(nvidia.driverVersion)\(nvidia.requireGPU ? ", GPU required" : "")")
            for module in nvidia.modules {
                lines.append(
                    "  module    \(module.path)\(module.version.map { " (\($0))" } ?? ""): vermagic `\(module.vermagic ?? "unreadable")`"
                )
            }
            for file in nvidia.firmware { lines.append("  firmware  \(file)") }
            for library in nvidia.libraries { lines.append("  library   \(library)") }
        }
        return InspectionReport(text: lines.joined(separator: "\n") + "\n", value: report)
    }
}
