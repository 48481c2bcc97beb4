import ArgumentParser
import Core
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the exact root file tree an image will contain, as a pax tar.",
        discussion: """
            The tree is the source flattened the way a VM image gets it: layers applied in order with \
            whiteouts, every digest and diff_id checked, owners, modes (setuid included), devices, symlinks, \
            hard links and xattrs kept exactly. Nothing from the image is written to the host except the \
            output tar, which appears atomically when complete.

            Examples:
              gvlt export --container oci:./image:latest -o rootfs.tar
              gvlt export --container docker-archive:./image.tar -o rootfs.tar --json
              gvlt export --container containers-storage:localhost/my_prover:latest -o rootfs.tar
              gvlt export --containerfile ./Containerfile --context . -o rootfs.tar
              gvlt export --rootfs-dir ./rootfs -o rootfs.tar --force
            """)

    @OptionGroup var source: SourceOptions
    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("The tar file to write.", valueName: "file"))
    var output: String

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @Flag(help: "Print a JSON report (run spec, entry counts, bytes, sha256) on stdout.")
    var json = false

    struct Report: Encodable {
        var source: String
        var output: String
        var sha256: String
        var bytes: Int64
        var entries: Int
        var entriesByKind: [String: Int]
        var contentBytes: Int64
        var skippedSockets: [String]
        var runSpec: RunSpec
        var steps: [BuildReport.Step]
    }

    func run() throws {
        let logger = global.makeLogger()
        // Progress is on stderr, so --json keeps it: stdout holds only the report.
        let progress = ProgressReporter.automatic(quiet: global.quiet)
        let source = try self.source.makeSource(global: global)
        try OutputPrecheck.check(output, force: force)
        let context = try self.source.makeContext(global: global, progress: progress, logger: logger)
        defer { context.scratch.remove() }
        let overrides = try self.source.runOverrides()
        var image = try source.load(context)
        // The run spec of the --json report follows the same flags as a build's.
        image.runSpec = overrides.apply(to: image.runSpec)
        let exported = try TarExporter().export(image.tree, to: output, force: force, progress: progress)
        for socket in exported.skippedSockets {
            logger.warning("\(socket) is a socket; tar cannot hold sockets, so it was left out")
        }
        if json {
            try printJSON(
                Report(
                    source: image.origin, output: exported.output, sha256: exported.sha256, bytes: exported.bytes,
                    entries: exported.summary.entries, entriesByKind: exported.summary.byKind,
                    contentBytes: exported.summary.contentBytes, skippedSockets: exported.skippedSockets,
                    runSpec: image.runSpec,
                    steps: progress.timings.map { BuildReport.Step(name: $0.step, seconds: $0.seconds) }))
        } else if !global.quiet {
            print(
                "\(exported.output): \(exported.summary.entries) entries, \(ProgressReporter.bytes(exported.bytes)), \(exported.sha256)"
            )
        }
    }
}
