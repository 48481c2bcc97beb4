import ArgumentParser
import Core
import CoreNetwork
import Foundation

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry into gvlt's cache, and optionally write it as an OCI layout.",
        discussion: """
            gvlt speaks the OCI distribution API itself: no container engine, no skopeo. REF is \
            docker://REF or a plain reference (docker.io/library/alpine:3.20, ghcr.io/o/r@sha256:…, \
            127.0.0.1:5000/prover:latest); Docker Hub short names (alpine, user/app) are normalised as \
            docker does. An index is resolved to --platform. Blobs download in parallel (--jobs), resume \
            after a dropped connection, are checked against their digests as they stream, and enter the \
            cache only whole and verified, so a later build, or an image sharing a base, downloads \
            nothing again; --offline uses the cache alone.

            Credentials come from --creds, $REGISTRY_AUTH_FILE (else $XDG_RUNTIME_DIR/containers/auth.json), \
            ~/.config/containers/auth.json and ~/.docker/config.json (auths, credHelpers, credsStore), \
            and are never printed. TLS uses the system's trust store plus $SSL_CERT_FILE and --cert-dir \
            (else containers' certs.d directories). registries.conf gives mirrors, locations, insecure \
            and blocked registries.

            -o oci:DIR[:TAG] writes the image as an OCI layout for air-gapped hand-off (blobs are hard \
            links into the cache where possible); `gvlt build --container oci:DIR:TAG` and `gvlt export` \
            read it.

            Examples:
              gvlt pull docker.io/nvidia/cuda:12.6.2-runtime-ubuntu24.04
              gvlt pull ghcr.io/acme/prover:v3 -o oci:./prover-image:v3
              gvlt pull 127.0.0.1:5000/prover:latest --cert-dir ./certs --creds ci:secret
              gvlt pull alpine:3.20 --offline
            """)

    @Argument(help: ArgumentHelp("The image: docker://REF or REF.", valueName: "ref"))
    var reference: String

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Also write the image as an OCI layout here.", valueName: "oci:dir[:tag]"))
    var output: String?

    @Option(
        name: .long, help: ArgumentHelp("Platform to pick from multi-platform images.", valueName: "os/arch[/variant]"))
    var platform: String = "linux/amd64"

    @OptionGroup(title: "registry") var registry: RegistryFlags
    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print a JSON report (reference, digests, layers, bytes downloaded, layout) on stdout.")
    var json = false

    struct Report: Encodable {
        var reference: String
        var pulledFrom: String
        var digest: String
        var manifest: String
        var platform: String?
        var layers: Int
        var bytes: Int64
        var downloadedBytes: Int64
        var layout: String?
        var cache: String
    }

    func run() throws {
        let logger = global.makeLogger()
        let reference = try ImageReference(parsing: self.reference)
        let layout = try output.map(OCILayoutWriter.parse)
        let access = try registry.access(global: global)
        let puller = RegistryPuller(
            access: access, progress: .automatic(quiet: global.quiet), logger: logger)
        let image = try puller.pull(reference, platform: try Platform(parsing: platform))
        var writer = layout
        if writer != nil, writer!.tag == nil { writer!.tag = reference.tag }
        try writer?.write(image, cache: BlobCache(access.cache))
        let bytes = image.layerDescriptors.reduce(0) { $0 + $1.size }
        if json {
            try printJSON(
                Report(
                    reference: reference.description, pulledFrom: image.pulledFrom.description,
                    digest: image.top.digest,
                    manifest: image.manifest.digest, platform: image.manifest.platform?.description,
                    layers: image.layers.count, bytes: bytes, downloadedBytes: image.downloadedBytes,
                    layout: writer.map { "oci:\($0.directory)" + ($0.tag.map { ":\($0)" } ?? "") },
                    cache: access.cache.root))
        } else if !global.quiet {
            print(
                "\(reference) \(image.top.digest): \(image.layers.count) layers, \(ProgressReporter.bytes(bytes)), \(ProgressReporter.bytes(image.downloadedBytes)) downloaded"
            )
            if let writer { print("oci:\(writer.directory)" + (writer.tag.map { ":\($0)" } ?? "")) }
        }
    }
}
