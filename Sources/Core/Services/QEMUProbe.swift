import Foundation

/// Boots a one-sector guest in QEMU (`mov al,1; out 0xf4,al` to isa-debug-exit, so QEMU exits with
/// status 3) and times it. Used to decide whether KVM is usable: on some hosts /dev/kvm works for a
/// toy guest yet QEMU+KVM is slower than software emulation and real kernels hang, which shows up as
/// CPUID feature warnings and a slow probe.
public enum QEMUProbe {
    public struct Run: Sendable {
        public var accel: String
        public var exited: Bool
        public var status: Int32
        public var seconds: Double
        public var warnings: [String]
        public var succeeded: Bool { exited && status == 3 }
    }

    public static let qemu = HostTool("qemu-system-x86_64", apt: "qemu-system-x86", purpose: "booting images")

    /// `--qemu-path`'s QEMU, checked, or the one on PATH.
    public static func resolve(_ path: String?) throws -> String {
        guard let path else { return try qemu.require() }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw InputError(
                "--qemu-path \(path) is not an executable file",
                hint: "point it at a qemu-system-x86_64, or drop it to use the one on PATH")
        }
        return path
    }

    public static func run(accel: String, qemuPath: String, scratch: String, timeout: Double = 10) throws -> Run {
        let image = scratch + "/probe-boot.img"
        var sector = [UInt8](repeating: 0, count: 1 << 20)  // SeaBIOS on q35 skips disks smaller than this
        sector.replaceSubrange(0..<7, with: [0xB0, 0x01, 0xE6, 0xF4, 0xF4, 0xEB, 0xFE])
        sector[510] = 0x55
        sector[511] = 0xAA
        try Data(sector).write(to: URL(fileURLWithPath: image))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: qemuPath)
        process.arguments = [
            "-accel", accel, "-machine", "q35", "-display", "none", "-vga", "none", "-nodefaults", "-no-user-config",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-drive", "file=\(image),format=raw,snapshot=on"
        ]
        let pipe = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        let token = Cleanup.shared.register(child: process.processIdentifier)
        defer { Cleanup.shared.unregister(token) }
        while process.isRunning && Date().timeIntervalSince(started) < timeout { usleep(10_000) }
        let exited = !process.isRunning
        if !exited { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(started)
        let stderr = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let warnings = stderr.split(separator: "\n").map(String.init).filter {
            $0.contains("warning") || $0.contains("error")
        }
        return Run(
            accel: accel, exited: exited, status: process.terminationStatus, seconds: seconds, warnings: warnings)
    }

    /// Whether QEMU should use KVM here, with the reason. KVM must run the probe, without CPUID
    /// feature warnings, and not slower than software emulation of the same guest.
    public static func kvmVerdict(qemuPath: String, scratch: String) throws -> (usable: Bool, reason: String) {
        let tcg = try run(accel: "tcg", qemuPath: qemuPath, scratch: scratch)
        guard tcg.succeeded else {
            return (
                false,
                "QEMU could not run the probe guest even without KVM (\(tcg.exited ? "exit status \(tcg.status)" : "timed out"))"
            )
        }
        let kvm = try run(accel: "kvm", qemuPath: qemuPath, scratch: scratch)
        let timing = String(format: "%.2f s under KVM, %.2f s under TCG", kvm.seconds, tcg.seconds)
        if !kvm.exited { return (false, "QEMU+KVM hung on the probe guest (killed after \(Int(kvm.seconds)) s)") }
        if !kvm.succeeded {
            return (
                false,
                "QEMU+KVM failed on the probe guest (exit status \(kvm.status)): \(kvm.warnings.joined(separator: "; "))"
            )
        }
        if let warning = kvm.warnings.first(where: { $0.contains("doesn't support requested feature") }) {
            return (
                false,
                "QEMU+KVM ran the probe guest (\(timing)), yet the virtual CPU lacks features (\(warning.replacingOccurrences(of: "qemu-system-x86_64: warning: ", with: ""))); real kernels hang on such hosts"
            )
        }
        if kvm.seconds > max(1.0, 3 * tcg.seconds) {
            return (false, "QEMU+KVM is slower than software emulation (\(timing))")
        }
        return (true, "QEMU+KVM ran the probe guest (\(timing))")
    }
}
