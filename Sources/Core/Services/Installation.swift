import CBuildInfo
import Foundation

/// Where gvlt's own files are. Everything is found from the running executable's real path, never
/// from the current directory, so that an installed gvlt and one run from its build folder each find
/// their own files wherever the user stands:
///
///     PREFIX/bin/gvlt                      .build/<config>/gvlt
///     PREFIX/lib/gvlt/gvlt-init            .build/gvlt-init (scripts/build-init)
///     PREFIX/share/gvlt/plugins.json       plugins.json at the repository root
public struct Installation: Sendable {
    /// The release number and the commit this binary was built from (`unknown` for a plain `swift build`).
    public static let version = String(cString: gvlt_build_version())
    public static let sourceCommit = String(cString: gvlt_build_source_commit())
    public static var versionLine: String { "gvlt \(version) (commit \(sourceCommit))" }

    /// The real path of this executable, symlinks resolved (`/usr/bin/gvlt -> /opt/gvlt/bin/gvlt` is
    /// an /opt install).
    public var executable: String

    public init(executable: String = Installation.runningExecutable()) {
        self.executable = executable
    }

    public static func runningExecutable() -> String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    }

    /// A file gvlt uses and why that one: "installed with gvlt", "$GVLT_INIT", "the build folder".
    public struct Found: Sendable, Equatable {
        public var path: String
        public var origin: String

        public init(path: String, origin: String) {
            self.path = path
            self.origin = origin
        }
    }

    var directory: URL { URL(fileURLWithPath: executable).deletingLastPathComponent() }

    /// PREFIX when the executable sits in PREFIX/bin.
    public var prefix: String? {
        directory.lastPathComponent == "bin" ? directory.deletingLastPathComponent().path : nil
    }

    /// True when this gvlt runs from a SwiftPM build folder (`.build`, or a `--scratch-path` named
    /// `.build-NAME`) rather than an installed layout.
    public var isBuildFolder: Bool { executable.split(separator: "/").dropLast().contains { $0.hasPrefix(".build") } }

    private func candidates(_ relative: [(String, String)]) -> [Found] {
        relative.map { Found(path: directory.appendingPathComponent($0.0).standardizedFileURL.path, origin: $0.1) }
    }

    /// The guest init: `$GVLT_INIT`, the installed copy, then the build folder's.
    public func guestInit(environment: [String: String] = ProcessInfo.processInfo.environment) -> Found? {
        if let explicit = environment["GVLT_INIT"], !explicit.isEmpty {
            return Found(path: explicit, origin: "$GVLT_INIT")
        }
        var places = [("../lib/gvlt/gvlt-init", "installed with gvlt"), ("gvlt-init", "next to gvlt")]
        if isBuildFolder {
            // .build/debug/gvlt and .build/x86_64-unknown-linux-gnu/debug/gvlt; scripts/build-init writes .build/gvlt-init.
            places += [
                ("../gvlt-init", "the build folder (scripts/build-init)"),
                ("../../gvlt-init", "the build folder (scripts/build-init)")
            ]
        }
        return candidates(places).first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Where the guest init should be, for the error when it is not.
    public var guestInitHint: String {
        if isBuildFolder {
            return
                "build it with `scripts/build-init` (it goes to .build/gvlt-init), or pass --init-binary PATH / set GVLT_INIT"
        }
        let expected = (prefix ?? directory.deletingLastPathComponent().path) + "/lib/gvlt/gvlt-init"
        return
            "this gvlt is installed without its guest init (expected at \(expected)); reinstall the package or tarball, "
            + "or pass --init-binary PATH / set GVLT_INIT"
    }

    /// The plugins.json shipped with gvlt, the lowest-precedence registry file.
    public func shippedPluginsFile() -> Found? {
        var places = [("../share/gvlt/plugins.json", "shipped with gvlt")]
        // Only a build folder looks above itself, into the repository: an installed gvlt never reads
        // a plugins.json outside its own layout.
        if isBuildFolder {
            places += [
                ("../../plugins.json", "the repository (build folder)"),
                ("../../../plugins.json", "the repository (build folder)")
            ]
        }
        return candidates(places).first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The version a gvlt-init binary carries (`gvlt-init version X` in its read-only data, put there
    /// by scripts/build-init), read without running it; nil for an init that has none.
    public static func guestInitVersion(at path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        let marker = Array("gvlt-init version ".utf8)
        guard let start = bytes.firstOffset(of: marker) else { return nil }
        let value = bytes[(start + marker.count)...].prefix { $0 >= 0x21 && $0 < 0x7f }.prefix(64)
        return value.isEmpty ? nil : String(decoding: value, as: UTF8.self)
    }
}
