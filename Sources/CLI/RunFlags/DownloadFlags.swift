import ArgumentParser
import Core
import CoreNetwork
import Foundation

/// How a task's remote image and inputs are fetched.
struct DownloadFlags: ParsableArguments {
    @Flag(help: "Fetch nothing: a task's URL image or inputs are an error, as before gvlt fetched them.")
    var offline = false

    @Option(
        name: .customLong("image-sha256"),
        help: ArgumentHelp(
            "The image's sha256, checked before it boots (a task's spec.image URL may carry #sha256=… instead).",
            valueName: "hex"))
    var imageSHA256: String?

    @Option(
        name: .customLong("max-download-size"),
        help: ArgumentHelp("The most one downloaded image or input may be (default 32G).", valueName: "size"))
    var maxDownloadSize: String?

    @Option(
        name: .customLong("cert-dir"),
        help: ArgumentHelp(
            "A directory of CA certificates (*.crt) trusted for https downloads, besides the system's and $SSL_CERT_FILE's.",
            valueName: "dir"))
    var certDir: String?

    func files(global: GlobalOptions, quiet: Bool, warn: @escaping @Sendable (String) -> Void) throws -> RemoteTaskFiles
    {
        var files = RemoteTaskFiles(cache: CacheDirectory.resolve(override: global.cacheDir))
        files.offline = offline
        files.certDirectory = certDir
        files.progress = ProgressReporter.automatic(quiet: quiet).mode
        files.note = warn
        if let text = maxDownloadSize {
            guard let bytes = ByteSize.parse(text, ByteSize.disk).flatMap({ Int64(exactly: $0) }), bytes > 0 else {
                throw InputError("--max-download-size `\(text)` is not a size", hint: "write e.g. 8G or 500M")
            }
            files.maximumSize = bytes
        }
        return files
    }
}
