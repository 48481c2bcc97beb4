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
        rt-config share. The program's console output is shown live; gvlt exits with the program's exact
        exit status (128+N when killed by signal N, 124 on --timeout, 125 when the guest stopped without
        reporting a result, 255 when the init itself failed) and copies the outputs to --output-dir.

        Examples:
          gvlt run prover.img --input data/in.txt:in.txt --output out.txt
          gvlt run prover.img --timeout 600 --mem 4G --smp 2 --env LOG=debug
          gvlt run prover.img --command /usr/bin/prover --args --fast input.json
          gvlt run prover.img --print-qemu-command

        Nanos images (gvlt build --backend nanos, or ops build) boot the way `ops run` boots them
        on-prem. --volume DIR becomes a TFS volume attached as attachment 1 (what `mounts:(%1:…)`
        names); afterwards its files are copied to --output-dir. -c MANIFEST takes -smp/-m from its
        RunConfig (flags win; default 1 CPU and 2G, as ops). The exit code is the program's when the
        image was built with --local-run (debug_exit:t); otherwise gvlt says it cannot know it.
          gvlt run prover.img --volume ./workspace --output-dir results -c manifest.json --timeout 300
        """)

    @Argument(help: ArgumentHelp("The image (from `gvlt build --backend linuxvm`).", valueName: "image"))
    var image: String

    @Option(name: .long, help: ArgumentHelp("Copy SRC (file or directory) to /mnt/gevulot/input/DST (repeatable).", valueName: "src:dst"))
    var input: [String] = []

    @Option(name: .long, help: ArgumentHelp("A path under /mnt/gevulot/output to copy back (repeatable; default: everything).", valueName: "path"))
    var output: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where outputs are copied.", valueName: "dir"))
    var outputDir: String = "output"

    @Option(name: .long, help: ArgumentHelp("Set an environment variable for the program (repeatable).", valueName: "key=value"))
    var env: [String] = []

    @Option(name: .long, help: ArgumentHelp("Run this program instead of the image's command.", valueName: "cmd"))
    var command: String?

    @Option(name: .long, parsing: .remaining, help: ArgumentHelp("Arguments for the program: everything after --args.", valueName: "arg"))
    var args: [String] = []

    @Option(name: .long, help: ArgumentHelp("Stop the VM after this many seconds and exit 124.", valueName: "seconds"))
    var timeout: Double?

    @Option(name: .long, help: ArgumentHelp("Virtual CPUs (default 1).", valueName: "n"))
    var smp: Int?

    @Option(name: .long, help: ArgumentHelp("Guest memory, e.g. 512M, 4G (default 512M; 2G for Nanos images).", valueName: "size"))
    var mem: String?

    @Option(name: .long, help: ArgumentHelp("Nanos: a directory to attach as volume %1; its files come back in --output-dir.", valueName: "dir"))
    var volume: String?

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("Nanos: the ops manifest whose RunConfig gives CPUs and Memory.", valueName: "file"))
    var manifest: String?

    @Option(name: .long, help: ArgumentHelp("auto (probe whether KVM really works, else tcg), kvm or tcg.", valueName: "mode"))
    var accel: String = "auto"

    @Option(name: .long, help: ArgumentHelp("Pass a host GPU by PCI address with vfio-pci (repeatable).", valueName: "pci"))
    var gpu: [String] = []

    @Option(name: .long, help: ArgumentHelp("One extra QEMU argument (repeatable).", valueName: "arg"))
    var qemu: [String] = []

    @Flag(help: "Print the QEMU command line and exit without booting.")
    var printQemuCommand = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = global.makeLogger()
        if NanosInspector.isNanosImage(image) { return try runNanos() }
        if volume != nil || manifest != nil {
            throw InputError("--volume and --manifest are for Nanos images; \(image) is not one", hint: "Linux VM images take --input/--output")
        }
        var run = LocalRun(image: image)
        if run.diskFormat != "raw" {
            FileHandle.standardError.write(Data("note: \(image) is a \(run.diskFormat) disk; gvlt boots it as one, but a Gevulot worker boots raw disks only\n".utf8))
        }
        for item in input {
            guard let colon = item.lastIndex(of: ":"), colon != item.startIndex else {
                throw InputError("--input `\(item)` is not SRC:DST", hint: "e.g. --input data/in.txt:in.txt")
            }
            run.inputs.append((String(item[..<colon]), String(item[item.index(after: colon)...])))
        }
        run.outputs = output
        run.outputDirectory = outputDir
        run.env = try env.map { item in
            let (key, value) = try keyValue(item, flag: "--env")
            return RunSpec.EnvVar(key: key, value: value)
        }
        run.command = command
        run.args = args.isEmpty ? nil : args
        if let timeout, timeout <= 0 { throw InputError("--timeout must be positive") }
        run.timeout = timeout
        guard (smp ?? 1) >= 1 else { throw InputError("--smp must be at least 1") }
        run.cpus = smp ?? 1
        run.memory = try Self.memory(mem ?? "512M")
        guard let mode = LocalRun.Accel(rawValue: accel) else { throw InputError("--accel `\(accel)` is not auto, kvm or tcg") }
        run.accel = mode
        run.gpus = try gpus(wanted: 0, checking: !printQemuCommand)
        run.extraQEMUArguments = qemu

        if printQemuCommand {
            let arguments = run.qemuArguments(accel: mode == .auto ? "tcg" : mode.rawValue, shares: "SHARES")
            print((["qemu-system-x86_64"] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))
            return
        }
        let scratch = try ScratchDirectory(label: "gvlt-run")
        defer { scratch.remove() }
        let outcome = try run.run(scratch: scratch, progress: ProgressReporter.automatic(quiet: global.quiet),
                                  console: { FileHandle.standardOutput.write($0) },
                                  note: { if !global.quiet { FileHandle.standardError.write("note: \($0)\n".data(using: .utf8)!) } })
        var status = outcome.result.status
        let summary: String
        switch outcome.result {
        case .exited(let code): summary = "the program exited with status \(code)"
        case .signaled(let signal): summary = "the program was killed by signal \(signal)"
        case .initError: summary = "the guest init failed before the program could run (see its error above)"
        case .timedOut(let seconds): summary = "timed out after \(Int(seconds)) s; the VM was stopped"
        case .noResult(let qemuStatus): summary = "the VM stopped (QEMU status \(qemuStatus)) without reporting the program's result"
        }
        var report = "gvlt run: \(summary)\n"
        for path in outcome.copiedOutputs { report += "gvlt run: output \(path)\n" }
        if !outcome.missingOutputs.isEmpty {
            report += "gvlt run: error: requested outputs not written by the program: \(outcome.missingOutputs.joined(separator: ", "))\n"
            if status == 0 { status = 1 }
        }
        FileHandle.standardError.write(report.data(using: .utf8)!)
        if status != 0 { throw ExitCode(status) }
    }

    /// The GPUs to pass: --gpu's, checked before QEMU starts (not for --print-qemu-command); or, when
    /// a Nanos manifest's RunConfig.GPUs asks for `wanted` and --gpu gives none, that many NVIDIA GPUs
    /// already bound to vfio-pci (as ops does on-prem).
    func gpus(wanted: Int, checking: Bool) throws -> [String] {
        let vfio = VFIOPassthrough()
        if !gpu.isEmpty || wanted == 0 { return checking ? try gpu.map(vfio.check) : gpu }
        let bound = vfio.boundNVIDIAGPUs()
        guard bound.count >= wanted else {
            throw InputError("the manifest's RunConfig.GPUs is \(wanted), and \(bound.isEmpty ? "no" : "only \(bound.count)") NVIDIA GPU\(bound.count == 1 ? " is" : "s are") bound to vfio-pci",
                             hint: "pass GPUs with --gpu PCI (after binding them to vfio-pci), or set RunConfig.GPUs to 0 to run without one")
        }
        return checking ? try bound.prefix(wanted).map(vfio.check) : Array(bound.prefix(wanted))
    }

    func runNanos() throws {
        for (flag, used) in [("--input", !input.isEmpty), ("--output", !output.isEmpty), ("--env", !env.isEmpty),
                             ("--command", command != nil), ("--args", !args.isEmpty)] where used {
            throw InputError("\(flag) is for Linux VM images; a Nanos image's program, arguments and environment are fixed when it is built",
                             hint: "rebuild with the manifest changed, and pass files to the program with --volume DIR")
        }
        let manifest = try self.manifest.map(OpsManifest.init(path:))
        var run = NanosRun(image: image)
        run.volume = volume
        run.outputDirectory = outputDir
        if let timeout, timeout <= 0 { throw InputError("--timeout must be positive") }
        run.timeout = timeout
        run.cpus = smp ?? manifest?.run.cpus ?? 1
        guard run.cpus >= 1 else { throw InputError("--smp must be at least 1") }
        if let mem {
            run.memory = try Self.memory(mem)
        } else if let text = manifest?.run.memory, let bytes = OpsManifest.parseSize(text) {
            run.memory = "\(max(1, bytes >> 20))M"
        }
        run.gpus = try gpus(wanted: manifest?.run.gpus ?? 0, checking: !printQemuCommand)
        run.extraQEMUArguments = qemu
        guard let mode = LocalRun.Accel(rawValue: accel) else { throw InputError("--accel `\(accel)` is not auto, kvm or tcg") }
        if printQemuCommand {
            let arguments = run.qemuArguments(accel: mode == .auto ? "tcg" : mode.rawValue, volumeImage: volume == nil ? nil : "VOLUME")
            print((["qemu-system-x86_64"] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))
            return
        }
        let scratch = try ScratchDirectory(label: "gvlt-run")
        defer { scratch.remove() }
        var resolved = mode.rawValue
        if mode == .auto {
            let verdict = try QEMUProbe.kvmVerdict(qemuPath: try QEMUProbe.qemu.require(), scratch: scratch.path)
            resolved = verdict.usable ? "kvm" : "tcg"
            if !verdict.usable && !global.quiet {
                FileHandle.standardError.write(Data("note: KVM is not usable here (\(verdict.reason)); running with software emulation (tcg)\n".utf8))
            }
        }
        let outcome = try run.run(accel: resolved, scratch: scratch, console: { FileHandle.standardOutput.write($0) })
        var report = ""
        var status: Int32
        switch outcome.result {
        case .exited(let code):
            report = "the program exited with status \(code)"
            status = code
        case .timedOut(let seconds):
            report = "timed out after \(Int(seconds)) s; the VM was stopped"
            status = 124
        case .qemuFailed(let code):
            report = "QEMU failed (status \(code)); see its message above"
            status = 125
        case .unknown(let code):
            report = outcome.debugExit
                ? "the VM powered off (QEMU status \(code)) without reporting an exit code"
                : "the VM stopped (QEMU status \(code)); the image has no debug_exit:t, so the program's exit code is unknown (build with --local-run to get it)"
            status = 125
        }
        var lines = "gvlt run: \(report)\n"
        for path in outcome.copiedOutputs { lines += "gvlt run: output \(path)\n" }
        FileHandle.standardError.write(Data(lines.utf8))
        if status != 0 { throw ExitCode(status) }
    }

    /// `512M`, `4G`, `1024` (MiB), `2GiB` → QEMU's `-m` value in MiB.
    static func memory(_ text: String) throws -> String {
        let lowered = text.lowercased()
        let digits = lowered.prefix { $0.isNumber }
        let unit = lowered.dropFirst(digits.count)
        guard let value = Int(digits), value > 0 else { throw InputError("--mem `\(text)` is not a size", hint: "e.g. --mem 512M or --mem 4G") }
        switch unit {
        case "", "m", "mb", "mib": return "\(value)M"
        case "g", "gb", "gib": return "\(value * 1024)M"
        default: throw InputError("--mem `\(text)`: unknown unit `\(unit)`", hint: "use M or G, e.g. --mem 512M")
        }
    }
}
