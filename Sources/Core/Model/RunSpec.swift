/// What the VM runs: taken from the container config (`Entrypoint` + `Cmd`, `Env`, `WorkingDir`,
/// `User`) or from a manifest. Backends bake it into the image.
public struct RunSpec: Codable, Equatable, Sendable {
    public struct EnvVar: Codable, Equatable, Sendable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The program to execute, or nil when the image names none.
    public var command: String?
    public var args: [String]
    /// In the image's order; a later duplicate key wins at run time, as in `execve`'s environment.
    public var env: [EnvVar]
    public var workingDir: String?
    public var user: String?
    /// How many leading words of command + args came from the image's Entrypoint (the rest are its
    /// Cmd), so that `--cmd` can replace only the Cmd. Not part of the baked config.
    public var entrypointLength = 0

    public init(
        command: String? = nil, args: [String] = [], env: [EnvVar] = [], workingDir: String? = nil,
        user: String? = nil
    ) {
        self.command = command
        self.args = args
        self.env = env
        self.workingDir = workingDir
        self.user = user
    }

    /// OCI semantics: `Entrypoint` followed by `Cmd`; the first element is the command.
    public init(entrypoint: [String]?, cmd: [String]?, env: [String]?, workingDir: String?, user: String?) {
        let argv = (entrypoint ?? []) + (cmd ?? [])
        self.command = argv.first
        self.args = Array(argv.dropFirst())
        self.entrypointLength = entrypoint?.count ?? 0
        self.env = (env ?? []).map { item in
            guard let eq = item.firstIndex(of: "=") else { return EnvVar(key: item, value: "") }
            return EnvVar(key: String(item[..<eq]), value: String(item[item.index(after: eq)...]))
        }
        self.workingDir = (workingDir?.isEmpty ?? true) ? nil : workingDir
        self.user = (user?.isEmpty ?? true) ? nil : user
    }

    enum CodingKeys: String, CodingKey {
        case command, args, env
        case workingDir = "working-dir"
        case user
    }
}
