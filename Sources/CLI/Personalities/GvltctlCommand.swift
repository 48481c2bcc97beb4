import ArgumentParser
import Core
import Foundation

/// gvlt started as `gvltctl`: gvltctl's `build` and `local-run` with gvltctl's defaults, so that its
/// users' scripts (gvltctl's own `run_test.sh` among them) run unchanged. The network commands say
/// that they need the Gevulot network.
struct GvltctlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gvltctl",
        abstract: "gvlt speaking gvltctl's command line: build Linux VM images and run them locally.",
        discussion: """
            This is gvlt, started under the name gvltctl. `gvltctl build` is `gvlt build --backend linuxvm` \
            with gvltctl's defaults (the image disk.img, a 10G disk, MIA-compatible gvlt-init), and takes \
            every `gvlt build` flag as well. `gvltctl local-run` is `gvlt run` with gvltctl's flags and its \
            closing message. No root, no kernel compile, and no network.

            The commands that talk to the Gevulot network (worker, task, pin, workflow, send, \
            account-info, keygen, compute-key, sudo) need the real gvltctl.

            Examples:
              gvltctl build --force --containerfile ./Containerfile
              gvltctl local-run disk.img --file task.yaml --input inputs/input.txt:input.txt --stdout --stderr
            """,
        version: Installation.versionLine + " (as gvltctl)",
        subcommands: [GvltctlBuild.self, GvltctlLocalRun.self])

    /// The network commands are refused before parsing; gvltctl's global `-F/--format`, which may
    /// come before the command, moves to local-run's own option (build has no message to format).
    static func prepare(_ arguments: [String]) throws -> [String] {
        var rest = arguments
        let given = givesFlag(arguments, ["-F", "--format"])
        let format = try takeFormat(&rest)
        if let refusal = refusal(rest) { throw refusal }
        if given, Personality.subcommand(rest).first == "local-run" { rest += ["--format", format] }
        return rest
    }

    static func refusal(_ arguments: [String]) -> UserFacingError? {
        guard let command = Personality.subcommand(arguments).first else { return nil }
        switch command {
        case "worker", "task", "pin", "workflow", "send", "account-info", "sudo":
            return UnsupportedError(
                "gvltctl \(command) talks to the Gevulot network, which gvlt does not: it builds and runs images locally",
                hint: "use the real gvltctl for \(command); gvlt's gvltctl speaks `build` and `local-run`")
        case "keygen", "compute-key":
            return UnsupportedError(
                "gvltctl \(command) makes Gevulot account keys, which gvlt does not handle",
                hint: "use the real gvltctl for keys; gvlt never sees them")
        case "generate-completion":
            return UnsupportedError(
                "gvltctl generate-completion is not gvlt's", hint: "gvlt --generate-completion-script bash|zsh|fish")
        default: return nil
        }
    }

    /// gvltctl's global `-F/--format`, which may come anywhere; gvlt takes it out before parsing.
    static func takeFormat(_ arguments: inout [String]) throws -> String {
        var format = ProcessInfo.processInfo.environment["GEVULOT_FORMAT"] ?? "yaml"
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" { break }
            if word == "-F" || word == "--format" {
                guard index + 1 < arguments.count else {
                    throw ValidationError("\(word) needs a value: yaml, json, prettyjson or toml")
                }
                format = arguments[index + 1]
                arguments.removeSubrange(index...(index + 1))
            } else if word.hasPrefix("--format=") {
                format = String(word.dropFirst("--format=".count))
                arguments.remove(at: index)
            } else {
                index += 1
            }
        }
        guard ["yaml", "json", "prettyjson", "toml"].contains(format) else {
            throw ValidationError("-F `\(format)` is not yaml, json, prettyjson or toml")
        }
        return format
    }
}

/// Whether `arguments` give one of `flags` (as `-o FILE`, `--output FILE` or `--output=FILE`).
func givesFlag(_ arguments: [String], _ flags: [String]) -> Bool {
    arguments.prefix { $0 != "--" }.contains { word in
        flags.contains(word) || flags.contains { $0.hasPrefix("--") && word.hasPrefix($0 + "=") }
    }
}

struct GvltctlBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a VM image from a container, rootfs directory, or Containerfile (gvltctl build).",
        discussion: """
            gvlt build --backend linuxvm with gvltctl's defaults: -o disk.img and -s 10G (the room after the \
            root file system is a hole in the file, so it costs no disk). Every gvltctl build flag works \
            with its meaning, and so does every gvlt build flag; see `gvlt build --help`.
            """)

    @Argument(
        parsing: .captureForPassthrough,
        help: ArgumentHelp("gvltctl build's flags (and gvlt build's).", valueName: "flags"))
    var arguments: [String] = []

    func run() throws {
        var arguments = self.arguments
        _ = try GvltctlCommand.takeFormat(&arguments)
        var defaults: [String] = []
        if !givesFlag(arguments, ["-o", "--output"]) { defaults += ["-o", "disk.img"] }
        if !givesFlag(arguments, ["-s", "--size"]) { defaults += ["-s", "10G"] }
        var build = try BuildCommand.parse(["--backend", "linuxvm"] + defaults + arguments)
        try build.run()
    }
}

struct GvltctlLocalRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local-run",
        abstract: "Run a VM image locally (gvltctl local-run).",
        discussion: """
            gvlt run with gvltctl's flags: the program's exit status is gvlt's (gvltctl's is 0 or an \
            error), and after a clean exit gvltctl's message is printed in -F's format (default yaml). The \
            console is shown live unless --stdout or --stderr picks streams, as `gvlt run` does.
            """)

    @Argument(help: ArgumentHelp("VM image to run.", valueName: "file"))
    var image: String?

    @Option(name: .customLong("qemu-path"), help: ArgumentHelp("Path to QEMU.", valueName: "path"))
    var qemuPath: String?

    @Option(
        name: .customLong("qemu-arg"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp("An extra QEMU argument (repeatable).", valueName: "args"))
    var qemuArgs: [String] = []

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("Task file.", valueName: "file"))
    var file: String?

    @Option(name: [.customShort("s"), .long], help: ArgumentHelp("CPU cores (default 1).", valueName: "num"))
    var smp: String?

    @Option(name: [.customShort("m"), .long], help: ArgumentHelp("Memory in MB (default 512).", valueName: "mem"))
    var mem: String?

    @Option(name: [.customShort("g"), .long], help: ArgumentHelp("PCI address of a GPU.", valueName: "gpu"))
    var gpu: [String] = []

    @Option(name: [.customShort("e"), .customLong("env")], help: ArgumentHelp("KEY=VALUE.", valueName: "key=value"))
    var envs: [String] = []

    @Option(help: ArgumentHelp("Command to execute in the VM.", valueName: "command"))
    var command: String?

    @Option(
        parsing: .unconditionalSingleValue,
        help: ArgumentHelp("An argument for the command (repeatable).", valueName: "args"))
    var args: [String] = []

    @Option(
        name: [.customShort("i"), .customLong("input")],
        help: ArgumentHelp("SOURCE:TARGET input file.", valueName: "source:target"))
    var inputs: [String] = []

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Output path.", valueName: "path"))
    var outputs: [String] = []

    @Flag(help: "Print the program's output during execution.")
    var stdout = false

    @Flag(help: "Print QEMU's messages during execution.")
    var stderr = false

    @Flag(help: "Store the program's output in OUTPUT-DIR/stdout.")
    var storeStdout = false

    @Flag(help: "Store QEMU's messages in OUTPUT-DIR/stderr.")
    var storeStderr = false

    @Option(help: ArgumentHelp("Directory for output files (default output).", valueName: "dir"))
    var outputDir: String?

    @Option(
        name: [.customShort("F"), .long],
        help: ArgumentHelp(
            "Format of the closing message: yaml (default), json, prettyjson, toml.", valueName: "format"))
    var format: String?

    func run() throws {
        var arguments = image.map { [$0] } ?? []
        if let file { arguments += ["--file", file] }
        if let qemuPath { arguments += ["--qemu-path", qemuPath] }
        for argument in qemuArgs { arguments += ["--qemu-arg", argument] }
        if let smp { arguments += ["--smp", smp] }
        if let mem { arguments += ["--mem", mem] }
        for address in gpu { arguments += ["--gpu", address] }
        for item in envs { arguments += ["--env", item] }
        for input in inputs { arguments += ["--input", input] }
        for output in outputs { arguments += ["--output", output] }
        if stdout { arguments.append("--stdout") }
        if stderr { arguments.append("--stderr") }
        if storeStdout { arguments.append("--store-stdout") }
        if storeStderr { arguments.append("--store-stderr") }
        if let outputDir { arguments += ["--output-dir", outputDir] }
        if let command {
            arguments += ["--command", command]
        } else if !args.isEmpty {
            throw ValidationError("--args needs --command (as in gvltctl); gvlt run --args works without it")
        }
        var formatWords = format.map { ["-F", $0] } ?? []
        let format = try GvltctlCommand.takeFormat(&formatWords)
        // gvlt run's --args takes every word after it, so it goes last.
        if !args.isEmpty { arguments += ["--args"] + args }
        var run = try RunCommand.parse(arguments)
        try run.run()
        print(Self.message(format: format))
    }

    /// gvltctl's closing message, as its print_object writes it.
    static func message(format: String) -> String {
        let text = "VM program exited successfully"
        switch format {
        case "json": return "{\"message\":\"\(text)\"}"
        case "prettyjson": return "{\n  \"message\": \"\(text)\"\n}"
        case "toml": return "message = \"\(text)\"\n"
        default: return "message: \(text)\n"
        }
    }
}
