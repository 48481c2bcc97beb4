import Foundation

/// `--entrypoint`, `--cmd`, `--env`, `--workdir`, `--user` on `gvlt build`: podman import's `--change`
/// vocabulary, for every source. They replace what the image says, with Dockerfile semantics: a new
/// entrypoint drops the image's Cmd unless `--cmd` is given too, and `--env KEY=…` replaces KEY.
public struct RunOverrides: Equatable, Sendable {
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [RunSpec.EnvVar] = []
    public var workingDir: String?
    public var user: String?

    public init(
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [RunSpec.EnvVar] = [], workingDir: String? = nil,
        user: String? = nil
    ) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
    }

    public var isEmpty: Bool { self == RunOverrides() }

    /// `["/usr/bin/python3", "-u"]` (a JSON array, exec form) or one word taken whole.
    public static func words(_ text: String, flag: String) throws -> [String] {
        guard text.trimmingCharacters(in: .whitespaces).hasPrefix("[") else { return text.isEmpty ? [] : [text] }
        guard let words = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String] else {
            throw InputError(
                "\(flag) `\(text)` is not a JSON array of strings",
                hint: "write \(flag) '[\"/usr/bin/python3\", \"-u\"]', or one program path without brackets")
        }
        return words
    }

    public func apply(to spec: RunSpec) -> RunSpec {
        var spec = spec
        if entrypoint != nil || cmd != nil {
            let imageArgv = (spec.command.map { [$0] } ?? []) + spec.args
            let imageEntrypoint = Array(imageArgv.prefix(spec.entrypointLength))
            let argv =
                (entrypoint ?? imageEntrypoint)
                + (cmd ?? (entrypoint == nil ? Array(imageArgv.dropFirst(imageEntrypoint.count)) : []))
            spec.command = argv.first
            spec.args = Array(argv.dropFirst())
            spec.entrypointLength = (entrypoint ?? imageEntrypoint).count
        }
        for variable in env {
            spec.env.removeAll { $0.key == variable.key }
            spec.env.append(variable)
        }
        if let workingDir { spec.workingDir = workingDir.isEmpty ? nil : workingDir }
        if let user { spec.user = user.isEmpty ? nil : user }
        return spec
    }
}
