import ArgumentParser
import Core
import CoreNetwork
import Foundation

/// How registry references (`--container docker://REF`, `gvlt pull REF`) are pulled.
struct RegistryFlags: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Registry credentials, used instead of the auth files (never printed or logged).",
            valueName: "user:password"))
    var creds: String?

    @Option(
        name: .customLong("cert-dir"),
        help: ArgumentHelp(
            "A directory of CA certificates (*.crt) and client certificates (NAME.cert + NAME.key) for registries, as skopeo's.",
            valueName: "dir"))
    var certDir: String?

    @Option(
        name: .customLong("tls-verify"),
        help: ArgumentHelp(
            "false: do not check the registry's certificate, and allow plain HTTP; only for a loopback registry or one registries.conf lists as insecure.",
            valueName: "bool"))
    var tlsVerify: Bool?

    @Flag(help: "Use the cache only: fail, naming what is missing, instead of reaching a registry or server.")
    var offline = false

    func access(global: GlobalOptions) throws -> RegistryAccess {
        var access = RegistryAccess(
            cache: CacheDirectory.resolve(override: global.cacheDir),
            credentials: CredentialStore.standard(explicit: try creds.map(RegistryCredential.parse(creds:))),
            registriesConf: try RegistriesConf.load())
        access.certDirectory = certDir
        access.tlsVerify = tlsVerify ?? true
        access.offline = offline
        // Downloads wait on the network, not the CPU: more than one per core pays.
        access.jobs = global.jobs ?? 4
        return access
    }
}
