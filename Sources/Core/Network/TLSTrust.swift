import Core
import Foundation
import NIOSSL

/// Which certificates a connection trusts, as skopeo decides it: the system's trust store, plus the
/// CAs of `$SSL_CERT_FILE`, plus a certificate directory (containers-certs.d(5)): `--cert-dir DIR`,
/// else the first of `~/.config/containers/certs.d/HOST[:PORT]`, `/etc/containers/certs.d/HOST[:PORT]`
/// and `/etc/docker/certs.d/HOST[:PORT]` that exists. In it, `*.crt` files are CAs and a
/// `NAME.cert`/`NAME.key` pair is a client certificate.
public struct TLSTrust: Sendable {
    public var caFiles: [String] = []
    public var clientCertificate: (certificate: String, key: String)?
    /// Off only where `--tls-verify=false` is allowed (a loopback or insecure-listed registry).
    public var verify = true

    public init() {}

    /// The trust for `host` (`name[:port]`): `certDirectory` replaces the default directories.
    public static func forHost(
        _ host: String, certDirectory: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TLSTrust {
        var trust = TLSTrust()
        if let file = environment["SSL_CERT_FILE"], !file.isEmpty {
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw InputError("$SSL_CERT_FILE names \(file), which cannot be read", hint: "fix the path or unset it")
            }
            trust.caFiles.append(file)
        }
        var directories: [String] = []
        if let certDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: certDirectory, isDirectory: &isDirectory),
                isDirectory.boolValue
            else {
                throw InputError(
                    "--cert-dir \(certDirectory) is not a directory", hint: "give a directory of *.crt files")
            }
            directories = [certDirectory]
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
            directories = [config + "/containers/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d"]
                .map { $0 + "/" + host }
                .filter { FileManager.default.fileExists(atPath: $0) }
            directories = Array(directories.prefix(1))
        }
        for directory in directories {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
            for name in names where name.hasSuffix(".crt") {
                trust.caFiles.append(directory + "/" + name)
            }
            for name in names where name.hasSuffix(".cert") {
                let key = directory + "/" + name.dropLast(".cert".count) + ".key"
                guard FileManager.default.fileExists(atPath: key) else {
                    throw InputError(
                        "\(directory)/\(name) is a client certificate without its key \(key)",
                        hint: "add the key next to it, or remove the certificate")
                }
                trust.clientCertificate = (directory + "/" + name, key)
            }
        }
        for file in trust.caFiles {
            do {
                _ = try NIOSSLCertificate.fromPEMFile(file)
            } catch {
                throw InputError("\(file) holds no PEM certificate (\(error))", hint: "CA files must be PEM")
            }
        }
        return trust
    }

    public func configuration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = caFiles.map { .file($0) }
        if !verify { tls.certificateVerification = .none }
        if let (certificate, key) = clientCertificate {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw InputError(
                    "the client certificate \(certificate) or its key cannot be read (\(error))",
                    hint: "both must be PEM")
            }
        }
        return tls
    }

    /// Whether `host` (`name[:port]`) is this machine: `localhost`, 127.0.0.0/8 or ::1.
    public static func isLoopback(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("[") {
            name = name.dropFirst().prefix { $0 != "]" }
            return name == "::1"
        }
        if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        if name == "localhost" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
