import ArgumentParser
import Core

/// What the program gets in the guest, and what comes back: Linux VM images only.
struct ProgramFlags: ParsableArguments {
    @Option(
        name: [.customShort("i"), .long],
        help: ArgumentHelp(
            "Copy SRC (file or directory) to /mnt/gevulot/input/DST (repeatable; DST relative or under /mnt/gevulot/input).",
            valueName: "src:dst"))
    var input: [String] = []

    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp(
            "A path under /mnt/gevulot/output to copy back (repeatable; default: everything).", valueName: "path"))
    var output: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where outputs (and stored streams) are copied.", valueName: "dir"))
    var outputDir: String = "output"

    @Option(
        name: [.customShort("e"), .long],
        help: ArgumentHelp("Set an environment variable for the program (repeatable).", valueName: "key=value"))
    var env: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Run this program instead of the image's (or the task's) command.", valueName: "cmd"))
    var command: String?

    @Option(
        name: .long, parsing: .remaining,
        help: ArgumentHelp("Arguments for the program: everything after --args.", valueName: "arg"))
    var args: [String] = []

    func apply(to request: inout RunRequest) throws {
        for item in input {
            guard let colon = item.lastIndex(of: ":"), colon != item.startIndex else {
                throw InputError("--input `\(item)` is not SRC:DST", hint: "e.g. --input data/in.txt:in.txt")
            }
            request.inputs.append((String(item[..<colon]), String(item[item.index(after: colon)...])))
        }
        request.outputs = output
        request.outputDirectory = outputDir
        request.env = try env.map { item in
            let (key, value) = try keyValue(item, flag: "--env")
            return RunSpec.EnvVar(key: key, value: value)
        }
        request.command = command
        request.args = args
    }
}
