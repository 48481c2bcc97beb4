import ArgumentParser
import Core
import Foundation

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Copy one file out of a Nanos image, without booting it.",
        discussion: """
            PATH is the file's path in the image's root filesystem; prefix it with boot: for the boot \
            filesystem (boot:/kernel, boot:/klib/gpu_nvidia). The output is written atomically.

            Examples:
              gvlt extract prover.img /etc/passwd -o passwd
              gvlt extract prover.img boot:/kernel -o kernel.img
            """)

    @Argument(help: ArgumentHelp("The Nanos image.", valueName: "image"))
    var image: String

    @Argument(help: ArgumentHelp("The file in the image (boot:/PATH for the boot filesystem).", valueName: "path"))
    var path: String

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Where to write it (default: its name, in the current directory).", valueName: "file"))
    var output: String?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: image) else { throw InputError("image \(image) does not exist") }
        let extractor = try loadRegistry().extractor(for: image)
        let inside = path.hasPrefix("boot:") ? String(path.dropFirst("boot:".count)) : path
        let destination = output ?? URL(fileURLWithPath: inside).lastPathComponent
        let bytes = try extractor.extract(image: image, path: path, to: destination, force: force)
        FileHandle.standardError.write(Data("gvlt extract: \(path) → \(destination) (\(bytes) bytes)\n".utf8))
    }
}
