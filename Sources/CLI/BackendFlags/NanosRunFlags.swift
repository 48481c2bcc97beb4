import ArgumentParser
import Core

/// `gvlt run`'s options for Nanos images; other images refuse them.
struct NanosRunFlags: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Nanos: a directory to attach as volume %1; its files come back in --output-dir.", valueName: "dir"))
    var volume: String?

    @Option(
        name: [.customShort("c"), .long],
        help: ArgumentHelp("Nanos: the ops manifest whose RunConfig gives CPUs, Memory and GPUs.", valueName: "file"))
    var manifest: String?

    func collect(into options: inout BuildOptions) {
        options.flag("volume", volume)
        options.flag("manifest", manifest)
    }
}
