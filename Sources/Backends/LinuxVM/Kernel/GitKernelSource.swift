import Core
import Foundation

/// gvltctl's `--kernel VERSION` / `--kernel-url URL`: a kernel tree checked out from git (a tag or
/// branch, shallow) into the cache once, then built like `--kernel source:DIR`. The URL may be
/// remote (needs the network, as the input itself asks for it) or a local repository.
public struct GitKernelSource {
    static let git = HostTool("git", apt: "git", purpose: "--kernel VERSION and --kernel-url")
    public static let defaultURL = "https://github.com/torvalds/linux.git"

    public var url: String
    /// A tag or branch; nil takes the repository's default branch.
    public var ref: String?
    public var cache: CacheDirectory
    public var progress: ProgressReporter

    public init(url: String, ref: String?, cache: CacheDirectory, progress: ProgressReporter) {
        self.url = url
        self.ref = ref
        self.cache = cache
        self.progress = progress
    }

    /// The checkout's directory in the cache.
    public func checkout() throws -> String {
        let git = try Self.git.require()
        let key =
            "kernels/git/" + (SHA256Hex.of(data: Data((url + "#" + (ref ?? "")).utf8))).prefix(16)
            + "-" + CacheDirectory.keyComponent(ref ?? "default")
        let entry = try cache.entry(key) { staging in
            try progress.step("cloning \(ref.map { "\($0) of " } ?? "")\(url)") {
                _ = try HostCommand.run(
                    git,
                    ["clone", "--quiet", "--depth", "1"] + (ref.map { ["--branch", $0] } ?? []) + [
                        "--", url, staging + "/tree"
                    ],
                    hint:
                        "check --kernel-url and the version (a tag or branch of that repository, e.g. v6.10); offline, use --kernel source:DIR with a checkout, or --kernel debian"
                )
            }
        }
        return entry + "/tree"
    }
}
