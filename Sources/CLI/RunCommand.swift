import ArgumentParser
import Core
import Foundation
import LinuxVM

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

    @Option(name: .long, help: ArgumentHelp("Virtual CPUs.", valueName: "n"))
    var smp: Int = 1

    @Option(name: .long, help: ArgumentHelp("Guest memory, e.g. 512M, 4G.", valueName: "size"))
    var mem: String = "512M"

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
        var run = LocalRun(image: image)
        for item in input {
            guard let colon = item.lastIndex(of: ":"), colon != item.startIndex else {
                throw InputError("--input `\(item)` is not SRC:DST", hint: "e.g. --input data/in.txt:in.txt")
            }
            run.inputs.append((String(item[..<colon]), String(item[item.index(after: colon)...])))
        }
        run.outputs = output
        run.outputDirectory = outputDir
        run.env = try env.map { item in
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw InputError("--env `\(item)` is not KEY=VALUE") }
            return RunSpec.EnvVar(key: String(item[..<eq]), value: String(item[item.index(after: eq)...]))
        }
        run.command = command
        run.args = args.isEmpty ? nil : args
        if let timeout, timeout <= 0 { throw InputError("--timeout must be positive") }
        run.timeout = timeout
        guard smp >= 1 else { throw InputError("--smp must be at least 1") }
        run.cpus = smp
        run.memory = try Self.memory(mem)
        guard let mode = LocalRun.Accel(rawValue: accel) else { throw InputError("--accel `\(accel)` is not auto, kvm or tcg") }
        run.accel = mode
        run.gpus = gpu
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
