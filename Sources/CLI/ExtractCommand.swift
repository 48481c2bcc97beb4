import ArgumentParser
import Core
import Foundation
import Nanos

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Copy one file out of a Nanos image, without booting it.",
        discussion: """
        PATH is the file's path in the image's root filesystem; prefix it with boot: for the boot
        filesystem (boot:/kernel, boot:/klib/gpu_nvidia). The output is written atomically.

        Examples:
          gvlt extract prover.img /etc/passwd -o passwd
          gvlt extract prover.img boot:/kernel -o kernel.img
        """)

    @Argument(help: ArgumentHelp("The Nanos image.", valueName: "image"))
    var image: String

    @Argument(help: ArgumentHelp("The file in the image (boot:/PATH for the boot filesystem).", valueName: "path"))
    var path: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write it (default: its name, in the current directory).", valueName: "file"))
    var output: String?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: image) else { throw InputError("image \(image) does not exist") }
        guard NanosInspector.isNanosImage(image) else {
            throw UnsupportedError("\(image) is not a Nanos image; gvlt extract reads Nanos images", hint: "for a Linux VM image, use gvlt inspect IMAGE")
        }
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
        let destination = output ?? URL(fileURLWithPath: inside).lastPathComponent
        try OutputPrecheck.check(destination, force: force)
        let atomic = try AtomicOutput(path: destination, force: force)
        var committed = false
        defer { if !committed { atomic.abandon() } }
        let bytes = try volume.write(entry, path: path, to: atomic.fd, displayName: destination)
        try atomic.commit()
        committed = true
        FileHandle.standardError.write(Data("gvlt extract: \(path) → \(destination) (\(bytes) bytes)\n".utf8))
    }
}
