import Foundation

/// A secret for one registry. It prints as its origin and user only: the secret never reaches a
/// message, a log line or a report.
public struct RegistryCredential: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum Secret: Sendable {
        case password(user: String, password: String)
        /// An OAuth2 refresh token (`identitytoken` in an auth file, or a helper's `<token>` user).
        case identityToken(String)
    }

    public let secret: Secret
    /// Where it came from: `--creds`, an auth file's path, `docker-credential-NAME`.
    public let origin: String

    public init(secret: Secret, origin: String) {
        self.secret = secret
        self.origin = origin
    }

    public var user: String? {
        if case .password(let user, _) = secret { return user }
        return nil
    }

    public var description: String {
        user.map { "the credentials of `\($0)` from \(origin)" } ?? "the identity token from \(origin)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["origin": origin]) }

    /// `USER:PASS` as `--creds` takes it (a password may hold `:`).
    public static func parse(creds text: String) throws -> RegistryCredential {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
            throw InputError(
                "--creds is not USER:PASSWORD", hint: "write --creds USER:PASSWORD (the password may hold `:`)")
        }
        return RegistryCredential(
            secret: .password(user: String(text[..<colon]), password: String(text[text.index(after: colon)...])),
            origin: "--creds")
    }
}

/// Where credentials are looked up, in containers/image's order: `$REGISTRY_AUTH_FILE` (else
/// `$XDG_RUNTIME_DIR/containers/auth.json`), `$XDG_CONFIG_HOME/containers/auth.json`, then Docker's
/// `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`). In each file `credHelpers` for the
/// registry wins, then `auths` (the most specific `host/namespace` key), then `credsStore`.
public struct CredentialStore: Sendable {
    public var files: [String]
    /// `--creds`, which wins over every file.
    public var explicit: RegistryCredential?
    /// The PATH credential helpers are found in.
    public var environment: [String: String]

    public init(files: [String], explicit: RegistryCredential? = nil, environment: [String: String]) {
        self.files = files
        self.explicit = explicit
        self.environment = environment
    }

    public static func standard(
        explicit: RegistryCredential?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> CredentialStore {
        var files: [String] = []
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        if let file = environment["REGISTRY_AUTH_FILE"], !file.isEmpty {
            files.append(file)
        } else if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            files.append(runtime + "/containers/auth.json")
        }
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
        files.append(config + "/containers/auth.json")
        let docker = environment["DOCKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.docker"
        files.append(docker + "/config.json")
        return CredentialStore(files: files, explicit: explicit, environment: environment)
    }

    /// The credential for `repository` on `registry`, or nil for anonymous access.
    public func credential(registry: String, repository: String) throws -> RegistryCredential? {
        if let explicit { return explicit }
        for file in files where FileManager.default.fileExists(atPath: file) {
            if let found = try lookup(in: file, registry: registry, repository: repository) { return found }
        }
        return nil
    }

    struct AuthFile: Decodable {
        struct Entry: Decodable {
            var auth: String?
            var identitytoken: String?
            var username: String?
            var password: String?
        }
        var auths: [String: Entry]?
        var credHelpers: [String: String]?
        var credsStore: String?
    }

    func lookup(in file: String, registry: String, repository: String) throws -> RegistryCredential? {
        let hint = "fix or remove \(file) (containers-auth.json(5)); or pass --creds USER:PASSWORD"
        let data = try ConfigFile.read(file, what: "auth file \(file)", hint: hint)
        let parsed: AuthFile
        do {
            parsed = try JSONDecoder().decode(AuthFile.self, from: data)
        } catch {
            let location = JSONValue.syntaxProblem(in: data).map { "\($0.0): \($0.1)" } ?? ""
            throw InputError("auth file \(file) is not a valid auth file\(location)", hint: hint)
        }
        if let helper = parsed.credHelpers?[registry] ?? parsed.credHelpers?[Self.dockerKey(registry)] {
            return try helperCredential(helper, registry: registry)
        }
        // The most specific key first: host/ns/repo, host/ns, host; Docker's URL keys by their host.
        var candidates: [String] = []
        var parts = repository.split(separator: "/").map(String.init)
        while !parts.isEmpty {
            candidates.append(registry + "/" + parts.joined(separator: "/"))
            parts.removeLast()
        }
        candidates.append(registry)
        let auths = parsed.auths ?? [:]
        var byHost: [String: AuthFile.Entry] = [:]
        for (key, entry) in auths.sorted(by: { $0.key < $1.key }) {
            byHost[Self.normalizedKey(key)] = byHost[Self.normalizedKey(key)] ?? entry
        }
        for key in candidates {
            guard let entry = auths[key] ?? byHost[key] else { continue }
            if let token = entry.identitytoken, !token.isEmpty {
                return RegistryCredential(secret: .identityToken(token), origin: file)
            }
            if let auth = entry.auth, !auth.isEmpty {
                guard let decoded = Data(base64Encoded: auth).flatMap({ String(data: $0, encoding: .utf8) }),
                    let colon = decoded.firstIndex(of: ":")
                else {
                    throw InputError(
                        "auth file \(file): the `auth` of \(key) is not base64 of USER:PASSWORD", hint: hint)
                }
                return RegistryCredential(
                    secret: .password(
                        user: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...])),
                    origin: file)
            }
            if let user = entry.username, let password = entry.password {
                return RegistryCredential(secret: .password(user: user, password: password), origin: file)
            }
        }
        if let store = parsed.credsStore, !store.isEmpty {
            return try helperCredential(store, registry: registry)
        }
        return nil
    }

    /// Docker Hub's credentials live under its v1 URL in Docker's files.
    static func dockerKey(_ registry: String) -> String {
        registry == ImageReference.dockerHub ? "https://index.docker.io/v1/" : registry
    }

    /// `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/v2/` → `host:5000`.
    static func normalizedKey(_ key: String) -> String {
        var text = Substring(key)
        var hadScheme = false
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) {
            text = text.dropFirst(scheme.count)
            hadScheme = true
        }
        // Docker writes URLs (`https://host/v1/`), whose path is no namespace; containers writes
        // `host/namespace` keys, whose path is.
        if hadScheme, let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        if text.hasSuffix("/") { text = text.dropLast() }
        if text == "index.docker.io" || text == "registry-1.docker.io" { return ImageReference.dockerHub }
        return String(text)
    }

    /// The docker-credential-helpers protocol: `docker-credential-NAME get`, the server on stdin, JSON
    /// `{"Username", "Secret"}` on stdout; "credentials not found" means none.
    func helperCredential(_ name: String, registry: String) throws -> RegistryCredential? {
        let program = "docker-credential-" + name
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }),
            let path = HostTool(program, apt: program, purpose: "credential helper").locate(environment: environment)
        else {
            throw InputError(
                "the credential helper \(program) (named in an auth file for \(registry)) is not installed",
                hint: "install it, remove it from the auth file, or pass --creds USER:PASSWORD")
        }
        let child = try ChildProcess(executable: path, arguments: ["get"], environment: environment)
        child.standardInput.write(Data(Self.dockerKey(registry).utf8))
        try? child.standardInput.close()
        final class Output: @unchecked Sendable { var data = Data() }
        let read = Output()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            read.data = child.standardOutput.readDataToEndOfFile()
            done.signal()
        }
        guard done.wait(timeout: .now() + 60) == .success, let ending = child.wait(timeout: 5) else {
            child.killGroup()
            throw InputError(
                "the credential helper \(program) did not finish within 60 s", hint: "check the helper; or pass --creds"
            )
        }
        let output = read.data
        if case .exited(let status) = ending, status != 0 {
            // The helper's words for "none stored" vary; all of them say "not found".
            let said = String(decoding: output.prefix(4096), as: UTF8.self)
            if said.lowercased().contains("not found") || said.isEmpty { return nil }
            throw InputError(
                "the credential helper \(program) failed for \(registry) (\(ending.description))",
                hint: "run `echo \(Self.dockerKey(registry)) | \(program) get` to see why")
        }
        struct Answer: Decodable {
            var Username: String
            var Secret: String
        }
        guard output.count <= 1 << 20, let answer = try? JSONDecoder().decode(Answer.self, from: output) else {
            throw InputError(
                "the credential helper \(program) gave no credentials JSON for \(registry)",
                hint: "check the helper; it must print {\"Username\":…,\"Secret\":…}")
        }
        if answer.Username == "<token>" {
            return RegistryCredential(secret: .identityToken(answer.Secret), origin: program)
        }
        return RegistryCredential(secret: .password(user: answer.Username, password: answer.Secret), origin: program)
    }
}
