import ArgumentParser
import Core
import Foundation
import LinuxVM
import NvidiaGPU

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the host tools each feature needs and whether KVM really works.",
        discussion: """
            Every missing tool is printed with the Debian package that provides it. KVM is checked by \
            running tiny guests, not by looking for /dev/kvm (which exists on hosts where KVM hangs): \
            first directly through the KVM API, then under QEMU with KVM and with software emulation, \
            comparing the two.

            Examples:
              gvlt doctor
              gvlt doctor --json
              gvlt doctor --strict     # exit 1 when anything is missing
            """)

    @Flag(help: "Print the checks as JSON.")
    var json = false

    @Flag(help: "Exit with status 1 when a tool is missing or KVM does not work.")
    var strict = false

    @Flag(help: .hidden)
    var debianRelationships = false

    /// Every feature's host programs: the sources' and `gvlt run`'s, then each builtin backend's and
    /// accelerator's own list.
    static var features: [HostFeature] {
        HostFeature.common + LinuxVMBackend.hostFeatures + NvidiaAccelerator.hostFeatures
    }

    struct Check: Encodable {
        var feature: String
        var need: HostFeature.Need
        var ok: Bool
        var found: [String]
        var missing: [String]
    }

    struct Located: Encodable {
        var path: String?
        var origin: String
        var version: String?
    }

    struct Installed: Encodable {
        var version: String
        var commit: String
        var executable: String
        var guestInit: Located
        var pluginProtocol: String
        var pluginsFiles: [Located]
        var cache: Located
        /// What registry pulls read: registries.conf files, and the auth files in lookup order.
        var registriesConf: [String]
        var authFiles: [Located]
    }

    struct Report: Encodable {
        var gvlt: Installed
        var libraries: [String: String]
        var checks: [Check]
        var kvm: String
        var kvmWorks: Bool
    }

    func run() throws {
        if debianRelationships {
            // For scripts/package: the .deb asks for exactly what doctor checks. apt is in every
            // Debian system, so it is no dependency.
            print("Depends: " + HostFeature.debianRelationship(Self.features, need: .required, excluding: ["apt"]))
            print("Recommends: " + HostFeature.debianRelationship(Self.features, need: .optional))
            return
        }
        var checks: [Check] = []
        for feature in Self.features {
            var found: [String] = []
            var missing: [String] = []
            for alternatives in feature.tools {
                if let (tool, path) = alternatives.lazy.compactMap({ tool in tool.locate().map { (tool, $0) } }).first {
                    found.append("\(tool.name) (\(path))")
                } else {
                    missing.append(
                        alternatives.map { "\($0.name): apt-get install \($0.aptPackage)" }.joined(separator: "  or  "))
                }
            }
            checks.append(
                Check(feature: feature.name, need: feature.need, ok: missing.isEmpty, found: found, missing: missing))
        }
        var (kvmWorks, kvmText) = Self.probeKVM()
        if kvmWorks, let qemu = QEMUProbe.qemu.locate() {
            // The device answers; whether QEMU can really use it is a separate question.
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            (kvmWorks, kvmText) = try QEMUProbe.kvmVerdict(qemuPath: qemu, scratch: scratch.path)
            if !kvmWorks { kvmText = "/dev/kvm runs a test guest, but " + kvmText }
        } else if kvmWorks {
            kvmText += " (install qemu-system-x86 to check QEMU+KVM too)"
        }
        let report = Report(
            gvlt: Self.installed(), libraries: LibraryVersions.all, checks: checks, kvm: kvmText,
            kvmWorks: kvmWorks)
        if json {
            try printJSON(report)
        } else {
            let installed = report.gvlt
            print(Installation.versionLine)
            print("executable: \(installed.executable)")
            print("guest init: " + Self.describe(installed.guestInit))
            print("plugins: protocol \(installed.pluginProtocol); plugins.json files, lowest precedence first:")
            for file in installed.pluginsFiles { print("          " + Self.describe(file)) }
            print("cache: " + Self.describe(installed.cache))
            print(
                "registries.conf: "
                    + (installed.registriesConf.isEmpty ? "none" : installed.registriesConf.joined(separator: ", ")))
            print("auth files, first match wins:")
            for file in installed.authFiles { print("          " + Self.describe(file)) }
            for (name, version) in report.libraries.sorted(by: { $0.key < $1.key }) { print("\(name): \(version)") }
            for check in checks {
                let label = check.ok ? "ok     " : check.need == .required ? "MISSING" : "missing"
                print("\(label) \(check.feature)\(check.need == .optional ? " (optional)" : "")")
                for item in check.found { print("          found \(item)") }
                for item in check.missing { print("          missing \(item)") }
            }
            print("\(kvmWorks ? "ok     " : "no     ") KVM: \(kvmText)")
            if !kvmWorks { print("          boot images here with software emulation (qemu -accel tcg)") }
        }
        if strict && (!kvmWorks || checks.contains { !$0.ok }) { throw ExitCode(1) }
    }

    static func describe(_ item: Located) -> String {
        guard let path = item.path else { return "none (\(item.origin))" }
        return path + " (\(item.origin))" + (item.version.map { ", version \($0)" } ?? "")
    }

    /// Which of gvlt's own files this gvlt would use, and why those.
    static func installed() -> Installed {
        let installation = Installation()
        let guestInit: Located
        if let found = installation.guestInit() {
            let exists = FileManager.default.isExecutableFile(atPath: found.path)
            guestInit = Located(
                path: found.path, origin: found.origin + (exists ? "" : "; not an executable file"),
                version: exists ? Installation.guestInitVersion(at: found.path) : nil)
        } else {
            guestInit = Located(path: nil, origin: "not found: " + installation.guestInitHint)
        }
        let shipped = installation.shippedPluginsFile()
        let files = PluginsFile.searchPath(installation: installation).map { path -> Located in
            if path == shipped?.path { return Located(path: path, origin: shipped!.origin) }
            return Located(path: path, origin: FileManager.default.fileExists(atPath: path) ? "found" : "absent")
        }
        let (cache, cacheOrigin) = CacheDirectory.resolveWithOrigin()
        // A broken registries.conf is reported here as what it is; a pull would stop on it.
        let registries: [String]
        do {
            registries = try RegistriesConf.load().files
        } catch {
            registries = ["unreadable: \(error)"]
        }
        let authFiles = CredentialStore.standard(explicit: nil).files.map {
            Located(path: $0, origin: FileManager.default.fileExists(atPath: $0) ? "found" : "absent")
        }
        return Installed(
            version: Installation.version, commit: Installation.sourceCommit, executable: installation.executable,
            guestInit: guestInit, pluginProtocol: PluginProtocol.version,
            pluginsFiles: files, cache: Located(path: cache.root, origin: cacheOrigin), registriesConf: registries,
            authFiles: authFiles)
    }

    /// Runs the probe in a child (`gvlt __probe-kvm`) with a timeout: a broken KVM can hang forever.
    static func probeKVM() -> (Bool, String) {
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else { return (false, "/dev/kvm does not exist") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["__probe-kvm"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return (false, "cannot start the probe: \(error)") }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return (false, "/dev/kvm exists but a test guest hung for 5 s")
        }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if process.terminationStatus == 0 { return (true, "a test guest ran under KVM") }
        if process.terminationReason == .uncaughtSignal {
            return (false, "/dev/kvm exists but the probe crashed (signal \(process.terminationStatus))")
        }
        return (false, text.isEmpty ? "the probe failed" : "/dev/kvm exists but \(text)")
    }
}

/// Hidden: runs the KVM probe in this process. `gvlt doctor` calls it as a child with a timeout.
struct KVMProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__probe-kvm", abstract: "Run the KVM probe (internal).",
        shouldDisplay: false)

    func run() throws {
        switch KVMProbe.run() {
        case .works:
            print("works")
        case .unavailable(let reason):
            print(reason)
            throw ExitCode(1)
        }
    }
}
