import ArgumentParser
import Core

/// Options of the nanos backend (ops build's, where they exist); each also has a build-config key.
struct NanosFlags: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The ops manifest (config JSON); -c with --backend nanos, as in `ops build -c`.", valueName: "file"))
    var manifest: String?

    @Option(
        name: [.customShort("a"), .long], parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "ops's: a program argument (repeatable, and it may start with -); replaces the manifest's Args.",
            valueName: "arg"))
    var args: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "ops's: the image name; without -o the image goes to ~/.ops/images/NAME, as ops puts it. -i with --backend nanos.",
            valueName: "name"))
    var imagename: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "ops's (-e there): an environment variable for the program (repeatable); added to the manifest's Env, a later name wins.",
            valueName: "name=value"))
    var envs: [String] = []

    @Option(
        name: .customLong("target-root"),
        help: ArgumentHelp(
            "ops's (-r there): the root the program's libraries and absolute Files come from, instead of the manifest's TargetRoot.",
            valueName: "dir"))
    var targetRoot: String?

    @Flag(
        name: .customLong("ops-images"),
        help:
            "Without -o, write the image to ~/.ops/images/NAME (ops' place, $OPS_HOME/images) even without -i, as `ops build` does."
    )
    var opsImages = false

    @Flag(
        name: [.customShort("n"), .long],
        help:
            "ops's: use the nightly Nanos build. gvlt does not download releases, so this fails with the way to pass one (--nanos-dir)."
    )
    var nightly = false

    @Option(
        name: .customLong("nanos-dir"),
        help: ArgumentHelp(
            "A Nanos release directory (boot.img, kernel.img, klibs/). Default: ~/.ops/<version>.", valueName: "dir"))
    var nanosDir: String?

    @Option(
        name: .customLong("nanos-version"),
        help: ArgumentHelp(
            "Use ~/.ops/<version> (default: the manifest's NanosVersion, else ~/.ops/latest.txt).", valueName: "version"
        ))
    var nanosVersion: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Nanos boot.img (stage1 + stage2) instead of the release's. With --backend nanos, --kernel FILE likewise names kernel.img.",
            valueName: "file"))
    var boot: String?

    @Option(
        name: .long, help: ArgumentHelp("Volume label of the root filesystem (at most 31 bytes).", valueName: "label"))
    var label: String?

    @Flag(
        name: .customLong("local-run"), help: "Add debug_exit:t so `gvlt run` gets the program's exit code from QEMU.")
    var localRun = false

    @Flag(name: .customLong("print-deps"), help: "Print the program's resolved libraries and write nothing.")
    var printDeps = false

    @Flag(
        name: .customLong("print-manifest"), help: "Print the image's metadata tree (Nanos syntax) and write nothing.")
    var printManifest = false

    /// What to print instead of writing the image.
    var previews: [PreviewKind] {
        (printDeps ? [.dependencies] : []) + (printManifest ? [.manifest] : [])
    }

    /// Their values under the build option keys, as the backend's settings decode them.
    func collect(into options: inout BuildOptions) {
        options.flag("manifest", manifest)
        options.flag("args", args)
        options.flag("imagename", imagename)
        options.flag("envs", envs)
        options.flag("target-root", targetRoot)
        options.flag("ops-images", opsImages)
        options.flag("nightly", nightly)
        options.flag("nanos-dir", nanosDir)
        options.flag("nanos-version", nanosVersion)
        options.flag("boot", boot)
        options.flag("label", label)
        options.flag("local-run", localRun)
    }
}
