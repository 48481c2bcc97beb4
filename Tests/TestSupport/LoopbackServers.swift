import Foundation

/// Servers the network tests start on 127.0.0.1: Debian's docker-registry (CNCF distribution 2.8)
/// behind TLS from a test CA, the token server, a proxy that cuts a stream, a file server. Each is a
/// real process; its logs are files the tests read.
public enum TestPKI {
    /// A CA, a server certificate for 127.0.0.1 and localhost signed by it, and a self-signed token
    /// signing pair, made once per test process.
    public static let directory: String = {
        let dir = NSTemporaryDirectory() + "gvlt-test-pki-" + UUID().uuidString
        RemoveAtEnd.register(dir)
        try! FileManager.default.createDirectory(atPath: dir + "/certs", withIntermediateDirectories: true)
        let steps: [[String]] = [
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                "-days", "30", "-subj", "/CN=gvlt test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"
            ],
            [
                "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=127.0.0.1"
            ],
            [
                "openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "30", "-extfile", "server.ext"
            ],
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "sign.key", "-out", "sign.crt",
                "-days", "30", "-subj", "/CN=gvlt test token signer"
            ],
            // A second CA nobody trusts, for the TLS failure test.
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt",
                "-days", "30", "-subj", "/CN=someone else"
            ]
        ]
        try! Data(
            """
            subjectAltName=IP:127.0.0.1,DNS:localhost
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth

            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/server.ext"))
        for step in steps { try! Shell.run(step, in: dir) }
        try! FileManager.default.copyItem(atPath: dir + "/ca.crt", toPath: dir + "/certs/ca.crt")
        return dir
    }()

    public static var caFile: String { directory + "/ca.crt" }
    /// A `--cert-dir` holding the CA.
    public static var certDirectory: String { directory + "/certs" }
}

/// Runs commands for test setup, failing loudly with their output.
public enum Shell {
    @discardableResult
    public static func run(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:])
        throws -> String
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw NSError(
                domain: "`\(arguments.joined(separator: " "))` failed (\(process.terminationStatus)): \(text)", code: 1)
        }
        return text
    }
}

/// A server process started for a test, stopped when released.
public final class ServerProcess {
    public let process = Process()
    public let log: String

    /// Starts `arguments`, sending stdout and stderr to `log`; waits for a line `listening on PORT`
    /// when `announcesPort`, and returns the port.
    public init(_ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        self.log = log
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The port a Python server printed as `listening on PORT`.
    public func announcedPort(timeout: Double = 20) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
                let port = Int(line.dropFirst("listening on ".count))
            {
                return port
            }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        throw NSError(
            domain: "server did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")", code: 1)
    }

    public var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    /// A port nothing listens on now (the kernel's choice for port 0).
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until something accepts connections on `port`.
    public static func waitForPort(_ port: Int, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if connected == 0 { return }
            usleep(50_000)
        }
        throw NSError(domain: "nothing listens on 127.0.0.1:\(port)", code: 1)
    }
}

/// Debian's docker-registry on 127.0.0.1 with TLS from `TestPKI`, anonymous, with htpasswd Basic
/// auth, or with bearer tokens from `Tests/Registry/token-server.py`.
public final class LoopbackRegistry {
    public enum Auth {
        case anonymous
        case htpasswd(user: String, password: String)
        case token(users: [(String, String)])
    }

    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    public let directory: String
    public let port: Int
    public var host: String { "127.0.0.1:\(port)" }
    let server: ServerProcess
    let tokenServer: ServerProcess?
    /// skopeo's credentials for pushes.
    let pushCredentials: String?

    public init(auth: Auth = .anonymous) throws {
        directory = NSTemporaryDirectory() + "gvlt-test-registry-" + UUID().uuidString
        RemoveAtEnd.register(directory)
        try FileManager.default.createDirectory(atPath: directory + "/storage", withIntermediateDirectories: true)
        let pki = TestPKI.directory
        port = ServerProcess.freePort()
        var authSection = ""
        switch auth {
        case .anonymous:
            tokenServer = nil
            pushCredentials = nil
        case .htpasswd(let user, let password):
            try Shell.run(["htpasswd", "-Bbc", directory + "/htpasswd", user, password])
            authSection = """
                auth:
                  htpasswd:
                    realm: gvlt-test
                    path: \(directory)/htpasswd
                """
            tokenServer = nil
            pushCredentials = "\(user):\(password)"
        case .token(let users):
            let token = try ServerProcess(
                [
                    "python3", Self.repository + "/Tests/Registry/token-server.py", "--port", "0", "--cert",
                    pki + "/server.crt", "--key", pki + "/server.key", "--signing-key", pki + "/sign.key",
                    "--signing-cert", pki + "/sign.crt", "--issuer", "gvlt-test-issuer", "--service",
                    "gvlt-test-registry", "--users", users.map { "\($0.0):\($0.1)" }.joined(separator: ","),
                    "--log", directory + "/token-requests.log"
                ], log: directory + "/token-server.log")
            let tokenPort = try token.announcedPort()
            tokenServer = token
            pushCredentials = "\(users[0].0):\(users[0].1)"
            authSection = """
                auth:
                  token:
                    realm: https://127.0.0.1:\(tokenPort)/token
                    service: gvlt-test-registry
                    issuer: gvlt-test-issuer
                    rootcertbundle: \(pki)/sign.crt
                """
        }
        try Data(
            """
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(directory)/storage
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
              secret: gvlt-test-secret
              tls:
                certificate: \(pki)/server.crt
                key: \(pki)/server.key
            \(authSection)

            """.utf8
        ).write(to: URL(fileURLWithPath: directory + "/config.yml"))
        server = try ServerProcess(
            ["docker-registry", "serve", directory + "/config.yml"], log: directory + "/registry.log")
        try ServerProcess.waitForPort(port)
    }

    deinit {
        server.stop()
        tokenServer?.stop()
    }

    /// Pushes an OCI layout's image (`--all` for an index of several platforms) as `name:tag`.
    public func push(layout: String, tag: String? = nil, as name: String, all: Bool = false) throws {
        var arguments = ["skopeo", "copy", "--quiet", "--dest-cert-dir", TestPKI.certDirectory]
        if let pushCredentials { arguments += ["--dest-creds", pushCredentials] }
        if all { arguments.append("--all") }
        // --preserve-digests: the registry holds the layout's own manifest bytes, so both sources
        // name the same digests.
        arguments += ["--preserve-digests", "oci:\(layout)" + (tag.map { ":\($0)" } ?? ""), "docker://\(host)/\(name)"]
        try Shell.run(arguments)
    }

    /// The registry's access log: what it printed on stdout and stderr.
    public var log: String { server.output }

    /// The token server's request log (method, path, status, auth scheme; never a secret).
    public var tokenLog: String {
        (try? String(contentsOfFile: directory + "/token-requests.log", encoding: .utf8)) ?? ""
    }

    /// Blob GETs gvlt sent (its User-Agent), as the access log records them.
    public func blobRequests(_ digest: String? = nil) -> [String] {
        log.split(separator: "\n").map(String.init).filter { line in
            line.contains("\"GET /v2/") && line.contains("/blobs/") && line.contains("\"gvlt/")
                && (digest.map { line.contains($0) } ?? true)
        }
    }

    /// Every request gvlt sent.
    public func gvltRequests() -> [String] {
        log.split(separator: "\n").map(String.init).filter { $0.contains("\"gvlt/") && $0.contains(" HTTP/") }
    }

    /// The file the registry serves a blob from (to tamper with it).
    public func blobFile(_ digest: String) -> String {
        let hex = digest.dropFirst("sha256:".count)
        return "\(directory)/storage/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }
}

/// `Tests/Registry/cut-proxy.py` in front of a server: the first connection that carries more than
/// `cutAfter` bytes back is cut there.
public final class CuttingProxy {
    public let port: Int
    let server: ServerProcess
    let logFile: String

    public init(target: String, cutAfter: Int, cuts: Int = 1) throws {
        let directory = NSTemporaryDirectory() + "gvlt-test-proxy-" + UUID().uuidString
        RemoveAtEnd.register(directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        logFile = directory + "/proxy.log"
        server = try ServerProcess(
            [
                "python3", LoopbackRegistry.repository + "/Tests/Registry/cut-proxy.py", "--listen-port", "0",
                "--target", target, "--cut-after", "\(cutAfter)", "--cuts", "\(cuts)", "--log", logFile
            ], log: directory + "/out.log")
        port = try server.announcedPort()
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
}

/// `Tests/Registry/file-server.py`: files over HTTP, or HTTPS with the test CA.
public final class FileServer {
    public let port: Int
    public let root: String
    let server: ServerProcess
    let logFile: String

    public init(root: String, tls: Bool) throws {
        self.root = root
        let directory = NSTemporaryDirectory() + "gvlt-test-files-" + UUID().uuidString
        RemoveAtEnd.register(directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        logFile = directory + "/requests.log"
        var arguments = [
            "python3", LoopbackRegistry.repository + "/Tests/Registry/file-server.py", "--port", "0", "--root", root,
            "--log", logFile
        ]
        if tls {
            arguments += ["--cert", TestPKI.directory + "/server.crt", "--key", TestPKI.directory + "/server.key"]
        }
        server = try ServerProcess(arguments, log: directory + "/out.log")
        port = try server.announcedPort()
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
}

/// `Tests/Registry/redirect-front.py` before a registry: blob GETs are redirected (307) to the
/// registry itself, another origin, as Docker Hub sends them to blob storage; the rest is forwarded.
public final class RedirectFront {
    public let port: Int
    let server: ServerProcess
    let logFile: String

    public init(registry: LoopbackRegistry) throws {
        let directory = NSTemporaryDirectory() + "gvlt-test-front-" + UUID().uuidString
        RemoveAtEnd.register(directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        logFile = directory + "/front.log"
        server = try ServerProcess(
            [
                "python3", LoopbackRegistry.repository + "/Tests/Registry/redirect-front.py", "--port", "0", "--target",
                "https://\(registry.host)", "--cafile", TestPKI.caFile, "--cert", TestPKI.directory + "/server.crt",
                "--key", TestPKI.directory + "/server.key", "--log", logFile
            ], log: directory + "/out.log")
        port = try server.announcedPort()
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
}
