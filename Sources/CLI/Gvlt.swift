import ArgumentParser
import Core
import Foundation
import LinuxVM
import Nanos
import NvidiaGPU

@main
struct Gvlt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gvlt",
        abstract: "Package prover programs into bootable VM images for the Gevulot network.",
        discussion: """
            Sources are read without root, without network access and without a container engine \
            (except --containerfile and containers-storage:, which need podman or skopeo).

            Examples:
              gvlt build ./prover -c manifest.json                # a Nanos unikernel
              gvlt build --containerfile ./Containerfile -o vm.img  # a Linux VM
              gvlt build --container oci:./image:latest --accel nvidia -o gpu.img
              gvlt run prover.img --input in.txt:in.txt --output out.txt
              gvlt run -f task.yaml prover.img
              gvlt inspect prover.img
              gvlt export --container oci:./image:latest -o rootfs.tar
              gvlt doctor
            """,
        version: Installation.versionLine,
        subcommands: [
            ExportCommand.self, BuildCommand.self, RunCommand.self, PullCommand.self, InspectCommand.self,
            ExtractCommand.self, CacheCommand.self,
            BackendsCommand.self, PluginsCommand.self, DoctorCommand.self,
            KVMProbeCommand.self
        ])

    /// Our errors print as `error: …` plus a hint line; argument errors keep argument-parser's usage text.
    /// Installed under another tool's name (a link named `ops` or `gvltctl`), gvlt speaks that tool's
    /// command line instead of its own.
    static func main() {
        setlocale(LC_ALL, "C.UTF-8")
        // A tool we pipe into that dies early (tar2sqfs on a full disk), or `gvlt run | head`, must give
        // an error we report and clean up after, not kill gvlt silently.
        signal(SIGPIPE, SIG_IGN)
        Cleanup.shared.installSignalHandlers()
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch Personality(invokedAs: CommandLine.arguments.first ?? "gvlt") {
        case .gvlt: execute(Gvlt.self, arguments)
        case .ops: execute(OpsCommand.self, arguments, prepare: OpsCommand.prepare)
        case .gvltctl: execute(GvltctlCommand.self, arguments, prepare: GvltctlCommand.prepare)
        }
    }

    static func execute<Root: ParsableCommand>(
        _ root: Root.Type, _ arguments: [String], prepare: ([String]) throws -> [String] = { $0 }
    ) -> Never {
        do {
            var command = try root.parseAsRoot(try prepare(arguments))
            try command.run()
            Foundation.exit(0)
        } catch let error as UserFacingError {
            Cleanup.shared.runAll()
            ProgressReporter.closeOpenLine()
            var text = "error: \(error.message)\n"
            if let hint = error.hint { text += "  hint: \(hint)\n" }
            FileHandle.standardError.write(text.data(using: .utf8)!)
            Foundation.exit(1)
        } catch {
            Cleanup.shared.runAll()
            root.exit(withError: error)
        }
    }
}
