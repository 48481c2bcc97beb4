import ArgumentParser
import Core
import Foundation

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a Linux VM or Nanos image holds, without booting or mounting it.",
        discussion: """
            For a Nanos image: the partitions, the boot filesystem's files, the root volume's label and \
            UUID, and the root tuple in Nanos' text syntax with files summarised.

            For a Linux VM image: the partitions, the kernel release and command line, the initramfs modules, the root \
            file system's type, compressor and size, the guest init's sha256, the baked runtime config, \
            and the image's sha256.

            Examples:
              gvlt inspect prover.img
              gvlt inspect prover.img --json
            """)

    @Argument(help: ArgumentHelp("The image to inspect.", valueName: "image"))
    var image: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: image) else {
            throw InputError("image \(image) does not exist")
        }
        let scratch = try ScratchDirectory(label: "gvlt-inspect")
        defer { scratch.remove() }
        let report = try loadRegistry().inspector(for: image).inspect(image: image, scratch: scratch)
        if json {
            try printJSON(report.value)
        } else {
            print(report.text, terminator: "")
        }
    }
}
