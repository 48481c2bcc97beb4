import Core
import Foundation

/// `gvlt run`: boots a Firestarter image locally exactly as a worker does: the worker's
/// QEMU flags, its three 9p shares, its `config.yaml` with debug-exit, the disk read-only.
public struct LocalRun {
    public var image: String
    /// Host file → path under /mnt/gevulot/input (relative, or absolute under it).
    public var inputs: [(source: String, destination: String)] = []
    /// Inputs that are the run's own (downloads): moved into the share instead of copied.
    public var movableInputs: Set<String> = []
    /// Paths under /mnt/gevulot/output to copy back (relative, or absolute under it); none copies all.
    public var outputs: [String] = []
    public var outputDirectory: String = "output"
    /// Write the program's console output to `outputDirectory/stdout` (a task's `storeStdout`).
    public var storeStdout = false
    /// Write QEMU's own stderr to `outputDirectory/stderr` (a task's `storeStderr`).
    public var storeStderr = false
    /// QEMU to run instead of the one on PATH.
    public var qemuPath: String?
    /// Where the shares are made; nil: in the run's scratch directory.
    public var sharesDirectory: String?
    public var command: String?
    public var args: [String]?
    public var env: [RunSpec.EnvVar] = []
    public var timeout: Double?
    public var cpus = 1
    public var memory = "512M"
    public var accel = QEMUAccel.auto
    public var gpus: [String] = []
    public var extraQEMUArguments: [String] = []
    /// `raw` (what the worker boots) or `qcow2` (from a plugin backend such as examples/plugins/qcow2).
    public var diskFormat = "raw"

    public init(image: String) {
        self.image = image
        diskFormat = Self.diskFormat(of: image)
    }

    /// qcow2 by its magic (`QFI\xfb`); anything else is booted as a raw disk.
    public static func diskFormat(of image: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: image) else { return "raw" }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data([0x51, 0x46, 0x49, 0xFB]) ? "qcow2" : "raw"
    }

    /// The worker's config for this run: command/args/env overrides and debug-exit.
    public var workerConfig: RuntimeConfigFile {
        var config = RuntimeConfigFile()
        config.command = command
        config.args = args
        config.env = env
        config.debugExit = RuntimeConfigFile.DebugExit()
        return config
    }

    /// The worker's QEMU command line for `image` and the three share directories.
    public func qemuArguments(accel resolved: String, shares: String) -> [String] {
        // QEMU option values are comma-separated; a comma in a path is written twice.
        func escaped(_ path: String) -> String { path.replacingOccurrences(of: ",", with: ",,") }
        let image = escaped(self.image)
        let shares = escaped(shares)
        var arguments = [
            "-machine", "q35", "-accel", resolved, "-m", memory, "-smp", String(cpus), "-no-reboot",
            "-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-hd,bus=scsi0.0,drive=hd0",
            "-drive", "file=\(image),format=\(diskFormat),if=none,id=hd0,readonly=on",
            "-serial", "stdio", "-display", "none", "-vga", "none", "-device", "virtio-rng-pci",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4"
        ]
        for (share, readonly) in [("rt-config", true), ("input", true), ("output", false)] {
            arguments += [
                "-virtfs",
                "local,path=\(shares)/\(share),mount_tag=gevulot-\(share),security_model=none,multidevs=remap"
                    + (readonly ? ",readonly=on" : "")
            ]
        }
        for gpu in gpus { arguments += ["-device", "vfio-pci,rombar=0,host=\(gpu)"] }
        return arguments + extraQEMUArguments
    }

    /// How a run ended, from the init's last console line.
    public enum Result: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
        case initError
        case timedOut(Double)
        /// QEMU stopped without the init's final line (a crash, a kernel panic, a missing init).
        case noResult(qemuStatus: Int32)

        /// The exit status `gvlt run` returns.
        public var status: Int32 {
            switch self {
            case .exited(let code): return code
            case .signaled(let signal): return 128 + signal
            case .initError: return 255
            case .timedOut: return 124
            case .noResult: return 125
            }
        }
    }

    /// Parses the init's machine-readable line: `gvlt-init: exit-status=N` or `exit-signal=N`.
    public static func result(fromConsoleLine line: Substring) -> Result? {
        guard let range = line.range(of: InitConsole.marker + "exit-") else { return nil }
        let rest = line[range.upperBound...]
        if rest.hasPrefix("status=") {
            let value = rest.dropFirst("status=".count).prefix { $0.isNumber }
            guard let code = Int32(value) else { return nil }
            return rest.contains("init-error") ? .initError : .exited(code)
        }
        if rest.hasPrefix("signal=") {
            let value = rest.dropFirst("signal=".count).prefix { $0.isNumber }
            return Int32(value).map(Result.signaled)
        }
        return nil
    }
}
