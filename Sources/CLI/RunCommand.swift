import ArgumentParser
import Core
import CoreNetwork
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot an image locally exactly as a Gevulot worker would, and return the program's exit code.",
        discussion: """
            The image runs under QEMU with the worker's flags: q35, the disk read-only on virtio-scsi, the \
            three 9p shares (input read-only, output read-write, rt-config read-only) and isa-debug-exit. \
            gvlt writes the worker's config.yaml (your --command/--args/--env plus debug-exit) into the \
            rt-config share. The guest's console is shown live; gvlt exits with the program's exact exit \
            status (128+N when killed by signal N, 124 on --timeout, 125 when the guest stopped without \
            reporting a result, 255 when the init itself failed) and copies the outputs to --output-dir.

            -f TASK.yaml runs a Gevulot task file (kind: Task, version: v0) as `gvltctl local-run -f` does: \
            its spec's image, command, args, env, inputContexts, outputContexts, resources (cpus, gpus, \
            memory, time as the timeout) and storeStdout/storeStderr. Units are gevulot-rs's: bare numbers \
            are cores, megabytes and seconds. Flags given on the command line win; --env, --input and \
            --output add to the file's.

            Remote task files: spec.image and inputContexts[].source may be http://, https:// or file:// \
            URLs. The image is downloaded into gvlt's cache, keyed by its sha256 (a #sha256=HEX fragment \
            or --image-sha256 is checked); a second run asks the server whether it changed and downloads \
            nothing when it did not. Inputs are downloaded into the input share under their target names. \
            Downloads are bounded by --max-download-size, resume after a dropped connection and trust \
            the system's CAs plus $SSL_CERT_FILE and --cert-dir. An image given on the command line wins \
            over the task's. IPFS CIDs are not supported: give a URL or a local file. --offline fetches \
            nothing.

            Streams: the guest has one console. --store-stdout writes the program's part of it (its stdout \
            and stderr, without the firmware, kernel and gvlt-init lines) to OUTPUT-DIR/stdout; \
            --store-stderr writes QEMU's own messages to OUTPUT-DIR/stderr. --stdout/--stderr (gvltctl's) \
            show only those streams live instead of the whole console.

            Examples:
              gvlt run prover.img --input data/in.txt:in.txt --output out.txt
              gvlt run prover.img --timeout 600 --mem 4G --smp 2 --env LOG=debug
              gvlt run prover.img --command /usr/bin/prover --args --fast input.json
              gvlt run -f task.yaml prover.img --stdout --json
              gvlt run prover.img --print-qemu-command

            Nanos images (gvlt build --backend nanos, or ops build) boot the way `ops run` boots them \
            on-prem. --volume DIR becomes a TFS volume attached as attachment 1 (what `mounts:(%1:…)` \
            names); afterwards its files are copied to --output-dir. -c MANIFEST takes -smp/-m and GPUs from \
            its RunConfig (flags and a task file's resources win; default 1 CPU and 2G, as ops). The exit \
            code is the program's when the image was built with --local-run (debug_exit:t); otherwise gvlt \
            says it cannot know it.
              gvlt run prover.img --volume ./workspace --output-dir results -c manifest.json --timeout 300
            """)

    @Argument(help: ArgumentHelp("The image (default: the task file's spec.image).", valueName: "image"))
    var image: String?

    @Option(
        name: [.customShort("f"), .long],
        help: ArgumentHelp("A Gevulot task file (kind: Task) whose spec this run follows.", valueName: "task.yaml"))
    var file: String?

    @OptionGroup var program: ProgramFlags
    @OptionGroup var machine: MachineFlags
    @OptionGroup var streams: StreamFlags
    @OptionGroup(title: "Nanos images") var nanos: NanosRunFlags
    @OptionGroup(title: "Remote images and inputs") var downloads: DownloadFlags

    @Flag(
        help: "Print a JSON report (result, exit code, execution_time, outputs) on stdout; the console goes to stderr.")
    var json = false

    @Flag(
        help:
            "Print the QEMU command line and exit without booting. The shares (and a Nanos volume image) are prepared in --shares-dir, or a new directory it names, so that the command runs as printed."
    )
    var printQemuCommand = false

    @Option(
        name: .customLong("shares-dir"),
        help: ArgumentHelp(
            "A new or empty directory for the run's 9p shares (input, output, rt-config with config.yaml), left there afterwards; default: a scratch directory that is removed.",
            valueName: "dir"))
    var sharesDir: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let logger = global.makeLogger()
        let task = try file.map(GevulotTask.init(path:))
        let remote = try downloads.files(global: global, quiet: global.quiet || json) { logger.warning("\($0)") }
        var request = RunRequest(image: try taskImage(task, remote: remote))
        request.warn = { logger.warning("\($0)") }
        (request.task, request.taskFile) = (task, file)
        try program.apply(to: &request)
        try machine.apply(to: &request)
        streams.apply(to: &request)
        nanos.collect(into: &request.options)
        let runner = try loadRegistry().runner(for: request)
        request.sharesDirectory = sharesDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let scratch = try ScratchDirectory(label: "gvlt-run")
        defer { scratch.remove() }
        if let task = request.task {
            (request.task, request.downloadedInputs) = try remote.fetchInputs(task, into: scratch.path + "/downloads")
        }
        if printQemuCommand {
            // The same checks as a run, before the (slower) KVM probe; only then are the shares made.
            let shares = request.sharesDirectory
            request.sharesDirectory = nil
            _ = try runner.qemuCommand(request)
            try request.settleAccel(note: StreamFlags.note(quiet: global.quiet))
            request.sharesDirectory = try shares ?? Self.newSharesDirectory()
            let command = try runner.qemuCommand(request)
            print(command.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))
            if shares == nil {
                StreamFlags.note(quiet: global.quiet)(
                    "the shares are in \(request.sharesDirectory!), made for this command; remove it when done")
            }
            return
        }
        // The JSON report owns stdout; what would be shown there goes to stderr.
        let context = streams.context(
            scratch: scratch, progress: .automatic(quiet: global.quiet || json),
            shown: json ? .standardError : .standardOutput, quiet: global.quiet)
        let report = try runner.run(request, context: context)
        FileHandle.standardError.write(Data(report.lines.utf8))
        if json { try printJSON(report) }
        if report.status != 0 { throw ExitCode(report.status) }
    }

    /// A directory of the user's temporary directory that outlives the command, because the printed
    /// command uses it.
    static func newSharesDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/gvlt-shares-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SystemError("cannot create a shares directory", path: base, errno: errno)
        }
        return String(cString: made)
    }

    /// The image on the command line, else the task's `spec.image` (downloaded when it is a URL).
    func taskImage(_ task: GevulotTask?, remote: RemoteTaskFiles) throws -> String {
        if let image {
            return try remote.image(image, expectedSHA256: downloads.imageSHA256, what: "the image", mustExist: false)
        }
        guard let spec = task?.image, !spec.isEmpty else {
            throw InputError("no image given", hint: "gvlt run IMAGE, or -f TASK.yaml whose spec.image names one")
        }
        return try remote.image(spec, expectedSHA256: downloads.imageSHA256, what: "the task's image")
    }
}
