import ArgumentParser
import Core
import Foundation

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the host tools each feature needs and whether KVM really works.",
        discussion: """
        Every missing tool is printed with the Debian package that provides it. KVM is checked by
        running tiny guests, not by looking for /dev/kvm (which exists on hosts where KVM hangs):
        first directly through the KVM API, then under QEMU with KVM and with software emulation,
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

    struct Feature {
        var name: String
        /// Each inner list is alternatives; the feature needs one tool of every list.
        var tools: [[HostTool]]
    }

    static let features: [Feature] = [
        Feature(name: "export/build from OCI layouts, docker archives, rootfs dirs", tools: []),
        Feature(name: "--container containers-storage:REF", tools: [[.skopeo]]),
        Feature(name: "--containerfile", tools: [[.podman, .buildah]]),
        Feature(name: "linuxvm images", tools: [
            [HostTool("tar2sqfs", apt: "squashfs-tools-ng", purpose: "SquashFS root file systems"),
             HostTool("mksquashfs", apt: "squashfs-tools", purpose: "SquashFS root file systems")],
            [HostTool("mkfs.ext4", apt: "e2fsprogs", purpose: "ext4 root file systems")],
            [HostTool("mkfs.fat", apt: "dosfstools", purpose: "the FAT boot partition")],
            [HostTool("mcopy", apt: "mtools", purpose: "the FAT boot partition")],
            [HostTool("syslinux", apt: "syslinux", purpose: "the boot loader")],
            [HostTool("apt-get", apt: "apt", purpose: "the Debian kernel provider")],
        ]),
        Feature(name: "--accel nvidia (linuxvm)", tools: [
            [HostTool("make", apt: "make", purpose: "building the NVIDIA modules")],
            [HostTool("gcc", apt: "gcc", purpose: "building the NVIDIA modules")],
            [HostTool("strip", apt: "binutils", purpose: "stripping the NVIDIA modules")],
        ]),
        Feature(name: "gvlt run", tools: [[HostTool("qemu-system-x86_64", apt: "qemu-system-x86", purpose: "booting images")]]),
    ]

    struct Check: Encodable {
        var feature: String
        var ok: Bool
        var found: [String]
        var missing: [String]
    }

    struct Report: Encodable {
        var libraries: [String: String]
        var checks: [Check]
        var kvm: String
        var kvmWorks: Bool
    }

    func run() throws {
        var checks: [Check] = []
        for feature in Self.features {
            var found: [String] = []
            var missing: [String] = []
            for alternatives in feature.tools {
                if let (tool, path) = alternatives.lazy.compactMap({ tool in tool.locate().map { (tool, $0) } }).first {
                    found.append("\(tool.name) (\(path))")
                } else {
                    missing.append(alternatives.map { "\($0.name): apt-get install \($0.aptPackage)" }.joined(separator: "  or  "))
                }
            }
            checks.append(Check(feature: feature.name, ok: missing.isEmpty, found: found, missing: missing))
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
        let report = Report(libraries: LibraryVersions.all, checks: checks, kvm: kvmText,
                            kvmWorks: kvmWorks)
        if json {
            try printJSON(report)
        } else {
            for (name, version) in report.libraries.sorted(by: { $0.key < $1.key }) { print("\(name): \(version)") }
            for check in checks {
                print("\(check.ok ? "ok     " : "MISSING") \(check.feature)")
                for item in check.found { print("          found \(item)") }
                for item in check.missing { print("          missing \(item)") }
            }
            print("\(kvmWorks ? "ok     " : "no     ") KVM: \(kvmText)")
            if !kvmWorks { print("          boot images here with software emulation (qemu -accel tcg)") }
        }
        if strict && (!kvmWorks || checks.contains { !$0.ok }) { throw ExitCode(1) }
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
        if process.terminationReason == .uncaughtSignal { return (false, "/dev/kvm exists but the probe crashed (signal \(process.terminationStatus))") }
        return (false, text.isEmpty ? "the probe failed" : "/dev/kvm exists but \(text)")
    }
}

/// Hidden: runs the KVM probe in this process. `gvlt doctor` calls it as a child with a timeout.
struct KVMProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__probe-kvm", abstract: "Run the KVM probe (internal).",
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
