import ArgumentParser
import Core
import Foundation
import LinuxVM
import Nanos

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot an image locally exactly as a Gevulot worker would, and return the program's exit code.",
        discussion: """
        The image runs under QEMU with the worker's flags: q35, the disk read-only on virtio-scsi, the
        three 9p shares (input read-only, output read-write, rt-config read-only) and isa-debug-exit.
        gvlt writes the worker's config.yaml (your --command/--args/--env plus debug-exit) into the
        rt-config share. The guest's console is shown live; gvlt exits with the program's exact exit
        status (128+N when killed by signal N, 124 on --timeout, 125 when the guest stopped without
        reporting a result, 255 when the init itself failed) and copies the outputs to --output-dir.

        -f TASK.yaml runs a Gevulot task file (kind: Task, version: v0) as `gvltctl local-run -f` does:
        its spec's image, command, args, env, inputContexts, outputContexts, resources (cpus, gpus,
        memory, time as the timeout) and storeStdout/storeStderr. Units are gevulot-rs's: bare numbers
        are cores, megabytes and seconds. Flags given on the command line win; --env, --input and
        --output add to the file's. Remote images and input sources (URLs, CIDs) cannot be fetched
        offline: download them and give local paths.

        Streams: the guest has one console. --store-stdout writes the program's part of it (its stdout
        and stderr, without the firmware, kernel and gvlt-init lines) to OUTPUT-DIR/stdout;
        --store-stderr writes QEMU's own messages to OUTPUT-DIR/stderr. --stdout/--stderr (gvltctl's)
        show only those streams live instead of the whole console.

        Examples:
          gvlt run prover.img --input data/in.txt:in.txt --output out.txt
          gvlt run prover.img --timeout 600 --mem 4G --smp 2 --env LOG=debug
          gvlt run prover.img --command /usr/bin/prover --args --fast input.json
          gvlt run -f task.yaml prover.img --stdout --json
          gvlt run prover.img --print-qemu-command

        Nanos images (gvlt build --backend nanos, or ops build) boot the way `ops run` boots them
        on-prem. --volume DIR becomes a TFS volume attached as attachment 1 (what `mounts:(%1:…)`
        names); afterwards its files are copied to --output-dir. -c MANIFEST takes -smp/-m and GPUs from
        its RunConfig (flags and a task file's resources win; default 1 CPU and 2G, as ops). The exit
        code is the program's when the image was built with --local-run (debug_exit:t); otherwise gvlt
        says it cannot know it.
          gvlt run prover.img --volume ./workspace --output-dir results -c manifest.json --timeout 300
        """)

    @Argument(help: ArgumentHelp("The image (default: the task file's spec.image).", valueName: "image"))
    var image: String?

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("A Gevulot task file (kind: Task) whose spec this run follows.", valueName: "task.yaml"))
    var file: String?

    @Option(name: [.customShort("i"), .long], help: ArgumentHelp("Copy SRC (file or directory) to /mnt/gevulot/input/DST (repeatable; DST relative or under /mnt/gevulot/input).", valueName: "src:dst"))
    var input: [String] = []

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("A path under /mnt/gevulot/output to copy back (repeatable; default: everything).", valueName: "path"))
    var output: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where outputs (and stored streams) are copied.", valueName: "dir"))
    var outputDir: String = "output"

    @Option(name: [.customShort("e"), .long], help: ArgumentHelp("Set an environment variable for the program (repeatable).", valueName: "key=value"))
    var env: [String] = []

    @Option(name: .long, help: ArgumentHelp("Run this program instead of the image's (or the task's) command.", valueName: "cmd"))
    var command: String?

    @Option(name: .long, parsing: .remaining, help: ArgumentHelp("Arguments for the program: everything after --args.", valueName: "arg"))
    var args: [String] = []

    @Option(name: .long, help: ArgumentHelp("Stop the VM after this many seconds and exit 124 (default: the task's resources.time).", valueName: "seconds"))
    var timeout: Double?

    @Option(name: [.customShort("s"), .long], help: ArgumentHelp("Virtual CPUs (default: the task's resources.cpus, else 1).", valueName: "n"))
    var smp: Int?

    @Option(name: [.customShort("m"), .long], help: ArgumentHelp("Guest memory, e.g. 512M, 4G; a bare number is MiB (default: the task's resources.memory, else 512M; 2G for Nanos images).", valueName: "size"))
    var mem: String?

    @Option(name: .long, help: ArgumentHelp("Nanos: a directory to attach as volume %1; its files come back in --output-dir.", valueName: "dir"))
    var volume: String?

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("Nanos: the ops manifest whose RunConfig gives CPUs, Memory and GPUs.", valueName: "file"))
    var manifest: String?

    @Option(name: .long, help: ArgumentHelp("auto (probe whether KVM really works, else tcg), kvm or tcg.", valueName: "mode"))
    var accel: String = "auto"

    @Option(name: [.customShort("g"), .long], help: ArgumentHelp("Pass a host GPU by PCI address with vfio-pci (repeatable).", valueName: "pci"))
    var gpu: [String] = []

    @Option(name: [.customLong("qemu-arg"), .customLong("qemu")], parsing: .unconditionalSingleValue,
            help: ArgumentHelp("One extra QEMU argument (repeatable; one argument each, never split on spaces).", valueName: "arg"))
    var qemu: [String] = []

    @Option(name: .long, help: ArgumentHelp("The QEMU to run (default: qemu-system-x86_64 on PATH).", valueName: "path"))
    var qemuPath: String?

    @Flag(help: "Show the program's output live (its part of the console) instead of the whole console.")
    var stdout = false

    @Flag(help: "Show QEMU's own messages live; with --stdout, only these two streams are shown.")
    var stderr = false

    @Flag(help: "Write the program's output to OUTPUT-DIR/stdout (a task's storeStdout).")
    var storeStdout = false

    @Flag(help: "Write QEMU's own messages to OUTPUT-DIR/stderr (a task's storeStderr).")
    var storeStderr = false

    @Flag(help: "Print a JSON report (result, exit code, execution_time, outputs) on stdout; the console goes to stderr.")
    var json = false

    @Flag(help: "Print the QEMU command line and exit without booting.")
    var printQemuCommand = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = global.makeLogger()
        let task = try file.map(GevulotTask.init(path:))
        let image = try imagePath(task)
        if NanosInspector.isNanosImage(image) { return try runNanos(image, task: task) }
        if volume != nil || manifest != nil {
            throw InputError("--volume and --manifest are for Nanos images; \(image) is not one", hint: "Linux VM images take --input/--output")
        }
        var run = LocalRun(image: image)
        if run.diskFormat != "raw" {
            FileHandle.standardError.write(Data("note: \(image) is a \(run.diskFormat) disk; gvlt boots it as one, but a Gevulot worker boots raw disks only\n".utf8))
        }
        for context in task?.inputContexts ?? [] {
            run.inputs.append((try localPath(context.source, what: "input context source"), context.target))
        }
        for item in input {
            guard let colon = item.lastIndex(of: ":"), colon != item.startIndex else {
                throw InputError("--input `\(item)` is not SRC:DST", hint: "e.g. --input data/in.txt:in.txt")
            }
            run.inputs.append((String(item[..<colon]), String(item[item.index(after: colon)...])))
        }
        run.outputs = (task?.outputContexts.map(\.source) ?? []) + output
        run.outputDirectory = outputDir
        run.env = (task?.env ?? []) + (try env.map { item in
            let (key, value) = try keyValue(item, flag: "--env")
            return RunSpec.EnvVar(key: key, value: value)
        })
        // The task's command carries its first arguments; its args follow. gvltctl drops the task's
        // args unless --command is given: here they are passed either way.
        let taskCommand = task?.command ?? []
        if let command {
            run.command = command
            run.args = args
        } else {
            run.command = taskCommand.first
            let chosen = args.isEmpty ? Array(taskCommand.dropFirst()) + (task?.args ?? []) : args
            run.args = run.command != nil || !chosen.isEmpty ? chosen : nil
        }
        run.timeout = try timeoutSeconds(task)
        run.cpus = try cpus(task) ?? 1
        run.memory = try memory(task) ?? "512M"
        guard let mode = LocalRun.Accel(rawValue: accel) else { throw InputError("--accel `\(accel)` is not auto, kvm or tcg") }
        run.accel = mode
        run.gpus = try gpus(wanted: gpuCount(task), from: "the task's resources.gpus", checking: !printQemuCommand)
        run.extraQEMUArguments = qemu
        run.qemuPath = qemuPath
        run.storeStdout = storeStdout || task?.storeStdout == true
        run.storeStderr = storeStderr || task?.storeStderr == true

        if printQemuCommand {
            let arguments = run.qemuArguments(accel: mode == .auto ? "tcg" : mode.rawValue, shares: "SHARES")
            print(([qemuPath ?? "qemu-system-x86_64"] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))
            return
        }
        let scratch = try ScratchDirectory(label: "gvlt-run")
        defer { scratch.remove() }
        // The JSON report owns stdout; what would be shown there goes to stderr.
        let shown = json ? FileHandle.standardError : FileHandle.standardOutput
        var streams = LocalRun.Streams()
        if !stdout && !stderr { streams.console = { shown.write($0) } }
        if stdout { streams.program = { shown.write($0) } }
        if stderr || !stdout { streams.qemuStderr = { FileHandle.standardError.write($0) } }
        let outcome = try run.run(scratch: scratch, progress: ProgressReporter.automatic(quiet: global.quiet || json), streams: streams,
                                  note: { if !global.quiet { FileHandle.standardError.write("note: \($0)\n".data(using: .utf8)!) } })
        var status = outcome.result.status
        var report = RunReport(image: image, status: status, executionTime: outcome.executionTime, accel: outcome.accel,
                               outputs: outcome.copiedOutputs, missingOutputs: outcome.missingOutputs)
        let summary: String
        switch outcome.result {
        case .exited(let code):
            summary = "the program exited with status \(code)"
            (report.result, report.exitCode) = ("exited", code)
        case .signaled(let signal):
            summary = "the program was killed by signal \(signal)"
            (report.result, report.signal) = ("signaled", signal)
        case .initError:
            summary = "the guest init failed before the program could run (see its error above)"
            report.result = "init-error"
        case .timedOut(let seconds):
            summary = "timed out after \(Int(seconds)) s; the VM was stopped"
            report.result = "timed-out"
        case .noResult(let qemuStatus):
            summary = "the VM stopped (QEMU status \(qemuStatus)) without reporting the program's result"
            report.result = "no-result"
        }
        var lines = "gvlt run: \(summary) (\(String(format: "%.1f", outcome.executionTime)) s)\n"
        for path in outcome.copiedOutputs { lines += "gvlt run: output \(path)\n" }
        if !outcome.missingOutputs.isEmpty {
            lines += "gvlt run: error: requested outputs not written by the program: \(outcome.missingOutputs.joined(separator: ", "))\n"
            if status == 0 { status = 1 }
        }
        report.status = status
        FileHandle.standardError.write(lines.data(using: .utf8)!)
        if json { try printJSON(report) }
        if status != 0 { throw ExitCode(status) }
    }

    /// The image argument, else the task's `spec.image` when it is local.
    func imagePath(_ task: GevulotTask?) throws -> String {
        if let image { return image }
        guard let spec = task?.image, !spec.isEmpty else {
            throw InputError("no image given", hint: "gvlt run IMAGE, or -f TASK.yaml whose spec.image is a local path")
        }
        return try localPath(spec, what: "the task's image")
    }

    /// A task's path or `file://` URL. Anything remote (a URL, a CID) would need the network.
    func localPath(_ source: String, what: String) throws -> String {
        if source.hasPrefix("file://") { return String(source.dropFirst("file://".count)) }
        if source.contains("://") {
            throw InputError("\(what) \(source) is remote, and gvlt run works offline (not supported offline)",
                             hint: "download it and give its local path (or pass it with \(what.contains("image") ? "gvlt run IMAGE" : "--input FILE:TARGET"))")
        }
        guard FileManager.default.fileExists(atPath: source) else {
            throw InputError("\(what) \(source) is not a local file; a CID or other remote source cannot be fetched offline (not supported offline)",
                             hint: "give a local path or a file:// URL")
        }
        return source
    }

    func timeoutSeconds(_ task: GevulotTask?) throws -> Double? {
        if let timeout {
            guard timeout > 0 else { throw InputError("--timeout must be positive") }
            return timeout
        }
        guard let seconds = task?.timeSeconds, seconds > 0 else { return nil }
        return seconds
    }

    func cpus(_ task: GevulotTask?) throws -> Int? {
        if let smp {
            guard smp >= 1 else { throw InputError("--smp must be at least 1") }
            return smp
        }
        // Whole virtual CPUs: 1500 millicores need 2.
        return task?.millicores.map { max(1, ($0 + 999) / 1000) }
    }

    func memory(_ task: GevulotTask?) throws -> String? {
        if let mem { return try Self.memory(mem) }
        guard let bytes = task?.memoryBytes else { return nil }
        let mebibytes = (bytes + (1 << 20) - 1) >> 20
        guard mebibytes >= 32 else {
            throw InputError("\(file ?? "the task"): resources.memory is \(bytes) bytes, too little to boot a VM",
                             hint: "a bare number is megabytes (512); or write the unit, e.g. \"512MiB\"")
        }
        return "\(mebibytes)M"
    }

    func gpuCount(_ task: GevulotTask?) -> Int {
        task?.gpuMillicores.map { ($0 + 999) / 1000 } ?? 0
    }

    /// The GPUs to pass: --gpu's, checked before QEMU starts (not for --print-qemu-command); or, when
    /// a task (or a Nanos manifest) asks for `wanted` and --gpu gives none, that many NVIDIA GPUs
    /// already bound to vfio-pci (as ops does on-prem).
    func gpus(wanted: Int, from source: String, checking: Bool) throws -> [String] {
        let vfio = VFIOPassthrough()
        if !gpu.isEmpty || wanted == 0 { return checking ? try gpu.map(vfio.check) : gpu }
        let bound = vfio.boundNVIDIAGPUs()
        guard bound.count >= wanted else {
            throw InputError("\(source) is \(wanted), and \(bound.isEmpty ? "no" : "only \(bound.count)") NVIDIA GPU\(bound.count == 1 ? " is" : "s are") bound to vfio-pci",
                             hint: "pass GPUs with --gpu PCI (after binding them to vfio-pci), or ask for 0 GPUs to run without one")
        }
        return checking ? try bound.prefix(wanted).map(vfio.check) : Array(bound.prefix(wanted))
    }

    func runNanos(_ image: String, task: GevulotTask?) throws {
        for (flag, used) in [("--input", !input.isEmpty), ("--output", !output.isEmpty), ("--env", !env.isEmpty),
                             ("--command", command != nil), ("--args", !args.isEmpty),
                             ("the task's command", !(task?.command.isEmpty ?? true)), ("the task's args", !(task?.args.isEmpty ?? true)),
                             ("the task's env", !(task?.env.isEmpty ?? true)), ("the task's inputContexts", !(task?.inputContexts.isEmpty ?? true)),
                             ("the task's outputContexts", !(task?.outputContexts.isEmpty ?? true))] where used {
            throw InputError("\(flag) is for Linux VM images; a Nanos image's program, arguments and environment are fixed when it is built",
                             hint: "rebuild with the manifest changed, and pass files to the program with --volume DIR")
        }
        for (flag, used) in [("--stdout", stdout), ("--store-stdout", storeStdout || task?.storeStdout == true),
                             ("--store-stderr", storeStderr || task?.storeStderr == true)] where used {
            throw InputError("\(flag) is for Linux VM images: a Nanos console has no marks that set the program's output apart",
                             hint: "the whole console is shown live; drop \(flag) (or storeStdout/storeStderr in the task)")
        }
        let manifest = try self.manifest.map(OpsManifest.init(path:))
        var run = NanosRun(image: image)
        run.volume = volume
        run.outputDirectory = outputDir
        run.timeout = try timeoutSeconds(task)
        run.cpus = try cpus(task) ?? manifest?.run.cpus ?? 1
        guard run.cpus >= 1 else { throw InputError("\(self.manifest ?? "the manifest"): RunConfig.CPUs must be at least 1") }
        if let memory = try memory(task) {
            run.memory = memory
        } else if let text = manifest?.run.memory, let bytes = OpsManifest.parseSize(text) {
            run.memory = "\(max(1, bytes >> 20))M"
        }
        let wanted = task?.gpuMillicores != nil ? (gpuCount(task), "the task's resources.gpus") : (manifest?.run.gpus ?? 0, "the manifest's RunConfig.GPUs")
        run.gpus = try gpus(wanted: wanted.0, from: wanted.1, checking: !printQemuCommand)
        run.extraQEMUArguments = qemu
        run.qemuPath = qemuPath
        guard let mode = LocalRun.Accel(rawValue: accel) else { throw InputError("--accel `\(accel)` is not auto, kvm or tcg") }
        if printQemuCommand {
            let arguments = run.qemuArguments(accel: mode == .auto ? "tcg" : mode.rawValue, volumeImage: volume == nil ? nil : "VOLUME")
            print(([qemuPath ?? "qemu-system-x86_64"] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))
            return
        }
        let scratch = try ScratchDirectory(label: "gvlt-run")
        defer { scratch.remove() }
        var resolved = mode.rawValue
        if mode == .auto {
            let verdict = try QEMUProbe.kvmVerdict(qemuPath: try QEMUProbe.resolve(qemuPath), scratch: scratch.path)
            resolved = verdict.usable ? "kvm" : "tcg"
            if !verdict.usable && !global.quiet {
                FileHandle.standardError.write(Data("note: KVM is not usable here (\(verdict.reason)); running with software emulation (tcg)\n".utf8))
            }
        }
        let shown = json ? FileHandle.standardError : FileHandle.standardOutput
        let outcome = try run.run(accel: resolved, scratch: scratch, console: { if !stderr || stdout { shown.write($0) } })
        var summary = ""
        var status: Int32
        var report = RunReport(image: image, status: 0, executionTime: outcome.executionTime, accel: resolved,
                               outputs: outcome.copiedOutputs, missingOutputs: [])
        switch outcome.result {
        case .exited(let code):
            summary = "the program exited with status \(code)"
            status = code
            (report.result, report.exitCode) = ("exited", code)
        case .timedOut(let seconds):
            summary = "timed out after \(Int(seconds)) s; the VM was stopped"
            status = 124
            report.result = "timed-out"
        case .qemuFailed(let code):
            summary = "QEMU failed (status \(code)); see its message above"
            status = 125
            report.result = "qemu-failed"
        case .unknown(let code):
            summary = outcome.debugExit
                ? "the VM powered off (QEMU status \(code)) without reporting an exit code"
                : "the VM stopped (QEMU status \(code)); the image has no debug_exit:t, so the program's exit code is unknown (build with --local-run to get it)"
            status = 125
            report.result = "no-result"
        }
        report.status = status
        var lines = "gvlt run: \(summary) (\(String(format: "%.1f", outcome.executionTime)) s)\n"
        for path in outcome.copiedOutputs { lines += "gvlt run: output \(path)\n" }
        FileHandle.standardError.write(Data(lines.utf8))
        if json { try printJSON(report) }
        if status != 0 { throw ExitCode(status) }
    }

    /// `512M`, `4G`, `1024` (MiB), `2GiB` → QEMU's `-m` value in MiB.
    static func memory(_ text: String) throws -> String {
        guard let bytes = ByteSize.parse(text, ByteSize.memory) else {
            throw InputError("--mem `\(text)` is not a size", hint: "e.g. --mem 512M or --mem 4G (M and G are MiB and GiB)")
        }
        return "\(bytes >> 20)M"
    }
}

/// `gvlt run --json`: how the run ended and what came back.
struct RunReport: Encodable {
    var image: String
    /// exited, signaled, init-error, timed-out, no-result or qemu-failed.
    var result = ""
    /// gvlt run's own exit status.
    var status: Int32
    var exitCode: Int32?
    var signal: Int32?
    /// Seconds the VM ran, boot included.
    var executionTime: Double
    var accel: String
    var outputs: [String]
    var missingOutputs: [String]

    enum CodingKeys: String, CodingKey {
        case image, result, status, signal, accel, outputs
        case exitCode = "exit_code"
        case executionTime = "execution_time"
        case missingOutputs = "missing_outputs"
    }
}
