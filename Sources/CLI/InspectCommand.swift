import ArgumentParser
import Core
import Foundation
import LinuxVM
import Nanos

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a Linux VM or Nanos image holds, without booting or mounting it.",
        discussion: """
        For a Nanos image: the partitions, the boot filesystem's files, the root volume's label and
        UUID, and the root tuple in Nanos' text syntax with files summarised.

        For a Linux VM image: the partitions, the kernel release and command line, the initramfs modules, the root
        file system's type, compressor and size, the guest init's sha256, the baked runtime config,
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
        if NanosInspector.isNanosImage(image) {
            let report = try NanosInspector.inspect(image)
            if json {
                try printJSON(report)
                return
            }
            print("image:      \(report.image) (\(ProgressReporter.bytes(report.bytes)), \(report.sha256))")
            print("kind:       Nanos unikernel\(report.stage2Bytes.map { " (stage2 \($0) bytes)" } ?? "")")
            for partition in report.partitions {
                print("partition \(partition.number): \(partition.type)\(partition.active ? ", active" : ""), at \(partition.start), \(ProgressReporter.bytes(partition.size))")
            }
            for file in report.bootFiles { print("boot:       \(file.path) (\(file.bytes) bytes)") }
            print("root:       label `\(report.rootLabel)`, UUID \(report.rootUUID), \(report.rootLogExtensions) log extension\(report.rootLogExtensions == 1 ? "" : "s")")
            print(report.root)
            return
        }
        let scratch = try ScratchDirectory(label: "gvlt-inspect")
        defer { scratch.remove() }
        let report = try ImageInspector.inspect(image, scratch: scratch.path)
        if json {
            try printJSON(report)
            return
        }
        print("image:      \(report.image) (\(ProgressReporter.bytes(report.bytes)), \(report.sha256))")
        for partition in report.partitions {
            print("partition \(partition.number): \(partition.type)\(partition.active ? ", active" : ""), at \(partition.start), \(ProgressReporter.bytes(partition.size))")
        }
        print("kernel:     \(report.kernelRelease ?? "unknown")")
        if let line = report.kernelCommandLine { print("cmdline:    \(line)") }
        if let modules = report.initramfsModules { print("initramfs:  \(modules.count) modules: \(modules.joined(separator: " "))") }
        print("root:       \(report.rootFilesystem)\(report.rootCompressor.map { " (\($0))" } ?? "")\(report.rootBytes.map { ", \(ProgressReporter.bytes($0))" } ?? "")")
        print("init:       \(report.initSHA256 ?? "not found")")
        if let config = report.bakedConfig {
            print("baked config (/etc/gvlt/config.yaml):")
            for line in config.split(separator: "\n") { print("  \(line)") }
        }
        if let nvidia = report.nvidia {
            print("nvidia:     driver \(nvidia.driverVersion)\(nvidia.requireGPU ? ", GPU required" : "")")
            for module in nvidia.modules {
                print("  module    \(module.path)\(module.version.map { " (\($0))" } ?? ""): vermagic `\(module.vermagic ?? "unreadable")`")
            }
            for file in nvidia.firmware { print("  firmware  \(file)") }
            for library in nvidia.libraries { print("  library   \(library)") }
        }
    }
}
