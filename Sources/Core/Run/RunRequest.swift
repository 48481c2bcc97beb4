import Foundation

/// One `gvlt run`, as its flags and a Gevulot task file describe it. The runner of the image's
/// kind (`ImageRunning`) turns it into a QEMU command; what only one kind takes (a Nanos
/// `--volume`) travels in `options`, checked against the runner's `runOptionKeys`.
public struct RunRequest {
    public var image: String
    /// The task file (`-f`), whose spec the run follows; flags win over it.
    public var task: GevulotTask?
    public var taskFile: String?
    public var inputs: [(source: String, destination: String)] = []
    /// The task's inputs downloaded for this run (`RemoteTaskFiles`), which may be moved, not copied.
    public var downloadedInputs: Set<String> = []
    public var outputs: [String] = []
    public var outputDirectory = "output"
    public var env: [RunSpec.EnvVar] = []
    public var command: String?
    public var args: [String] = []
    /// `--timeout`; the task's `resources.time` when nil.
    public var timeout: Double?
    /// `--smp`; the task's `resources.cpus` when nil.
    public var cpus: Int?
    /// `--mem` as written; the task's `resources.memory` when nil.
    public var memory: String?
    public var accel: QEMUAccel = .auto
    /// `--gpu` PCI addresses.
    public var gpus: [String] = []
    public var qemuArguments: [String] = []
    public var qemuPath: String?
    /// `--shares-dir`: where the run's 9p shares are made and left (default: its scratch directory,
    /// removed afterwards). `--print-qemu-command` prepares them there, so that its command runs as is.
    public var sharesDirectory: String?
    /// `--stdout`: show the program's part of the console instead of the whole console.
    public var showProgramOnly = false
    public var storeStdout = false
    public var storeStderr = false
    /// Options of one runner, by key (`volume`, `manifest`), with where they were written.
    public var options = BuildOptions()
    /// `--fit`: cap CPUs and memory past the host's, with a warning, instead of refusing.
    public var fit = false
    /// `--gpu none`: run without the GPUs the task asks for (a smoke test on a host without them).
    public var withoutGPUs = false
    /// What the host has; replaced in tests.
    public var host = HostFit()
    /// Where warnings about the run go (the CLI's logger).
    public var warn: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }

    /// Where the CPU count came from, for messages.
    public var cpuOrigin: String {
        if cpus != nil { return "--smp" }
        if task?.millicores != nil { return "\(taskFile ?? "the task"): resources.cpus" }
        return "the CPU count"
    }

    /// Where the memory came from, for messages.
    public var memoryOrigin: String {
        if memory != nil { return "--mem" }
        if task?.memoryBytes != nil { return "\(taskFile ?? "the task"): resources.memory" }
        return "the memory size"
    }

    /// `--accel auto` decided as a run decides it (by probe guests), so that a printed QEMU command is
    /// the one a run would start.
    public mutating func settleAccel(note: (String) -> Void) throws {
        guard accel == .auto else { return }
        let scratch = try ScratchDirectory(label: "gvlt-probe")
        defer { scratch.remove() }
        let chosen = try accel.resolve(qemu: try QEMUProbe.resolve(qemuPath), scratch: scratch.path, note: note)
        accel = QEMUAccel(rawValue: chosen) ?? .tcg
    }

    /// CPUs and memory checked against the host (see `HostFit`).
    public func fitted(cpus: Int, cpuOrigin: String? = nil, memory: String, memoryOrigin: String? = nil) throws -> (
        cpus: Int, memory: String
    ) {
        try host.check(
            cpus: cpus, from: cpuOrigin ?? self.cpuOrigin, memory: memory, from: memoryOrigin ?? self.memoryOrigin,
            fit: fit, warn: warn)
    }

    /// `shares`, created, after checking that it holds nothing of the user's that a run would mix in
    /// or overwrite.
    public static func prepareEmptyDirectory(_ shares: String) throws {
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: shares), !existing.isEmpty {
            throw InputError(
                "--shares-dir \(shares) is not empty", hint: "give a new or empty directory; the run fills it")
        }
        try FileManager.default.createDirectory(atPath: shares, withIntermediateDirectories: true)
    }

    public init(image: String) {
        self.image = image
    }

    public func timeoutSeconds() throws -> Double? {
        if let timeout {
            guard timeout > 0 else { throw InputError("--timeout must be positive") }
            return timeout
        }
        guard let seconds = task?.timeSeconds, seconds > 0 else { return nil }
        return seconds
    }

    public func cpuCount() throws -> Int? {
        if let cpus {
            guard cpus >= 1 else { throw InputError("--smp must be at least 1") }
            return cpus
        }
        // Whole virtual CPUs: 1500 millicores need 2.
        return task?.millicores.map { max(1, ($0 + 999) / 1000) }
    }

    /// QEMU's `-m` value (`512M`) from `--mem` or the task's memory.
    public func memoryArgument() throws -> String? {
        if let memory {
            guard let bytes = ByteSize.parse(memory, ByteSize.memory) else {
                throw InputError(
                    "--mem `\(memory)` is not a size", hint: "e.g. --mem 512M or --mem 4G (M and G are MiB and GiB)")
            }
            return "\(bytes >> 20)M"
        }
        guard let bytes = task?.memoryBytes else { return nil }
        let mebibytes = (bytes + (1 << 20) - 1) >> 20
        guard mebibytes >= 32 else {
            throw InputError(
                "\(taskFile ?? "the task"): resources.memory is \(bytes) bytes, too little to boot a VM",
                hint: "a bare number is megabytes (512); or write the unit, e.g. \"512MiB\"")
        }
        return "\(mebibytes)M"
    }

    /// Whole GPUs the task asks for.
    public var taskGPUs: Int? { withoutGPUs ? nil : task?.gpuMillicores.map { ($0 + 999) / 1000 } }

    /// The GPUs to pass: `--gpu`'s, checked before QEMU starts (unless `checking` is off, for
    /// `--print-qemu-command`); or, when `wanted` GPUs are asked for (by `source`) and `--gpu` gives
    /// none, that many NVIDIA GPUs already bound to vfio-pci, as ops does on-prem.
    public func passthroughGPUs(wanted: Int, from source: String, checking: Bool) throws -> [String] {
        let vfio = VFIOPassthrough()
        if !gpus.isEmpty || wanted == 0 { return checking ? try gpus.map(vfio.check) : gpus }
        let bound = vfio.boundNVIDIAGPUs()
        guard bound.count >= wanted else {
            throw InputError(
                "\(source) is \(wanted), and \(bound.isEmpty ? "no" : "only \(bound.count)") NVIDIA GPU\(bound.count == 1 ? " is" : "s are") bound to vfio-pci",
                hint: "pass GPUs with --gpu PCI (after binding them to vfio-pci), or ask for 0 GPUs to run without one")
        }
        return checking ? try bound.prefix(wanted).map(vfio.check) : Array(bound.prefix(wanted))
    }
}

/// How QEMU accelerates the guest: `auto` probes whether KVM really works, and is decided once,
/// here, for every kind of image.
public enum QEMUAccel: String, CaseIterable, Sendable {
    case auto, kvm, tcg

    /// `kvm` or `tcg`; `note` hears why KVM was passed over.
    public func resolve(qemu: String, scratch: String, note: (String) -> Void) throws -> String {
        switch self {
        case .kvm, .tcg: return rawValue
        case .auto:
            let verdict = try QEMUProbe.kvmVerdict(qemuPath: qemu, scratch: scratch)
            if !verdict.usable {
                note("KVM is not usable here (\(verdict.reason)); running with software emulation (tcg)")
            }
            return verdict.usable ? "kvm" : "tcg"
        }
    }

    /// What `--print-qemu-command` shows, without probing.
    public var shown: String { self == .auto ? "tcg" : rawValue }
}

/// Where a run's output goes as it comes, and who hears its notes.
public struct RunContext {
    public var scratch: ScratchDirectory
    public var progress: ProgressReporter
    /// The guest's whole console, unchanged.
    public var console: (Data) -> Void
    /// The program's part of the console.
    public var program: (Data) -> Void
    /// QEMU's own messages.
    public var qemuStderr: (Data) -> Void
    public var note: (String) -> Void

    public init(
        scratch: ScratchDirectory, progress: ProgressReporter, console: @escaping (Data) -> Void = { _ in },
        program: @escaping (Data) -> Void = { _ in }, qemuStderr: @escaping (Data) -> Void = { _ in },
        note: @escaping (String) -> Void = { _ in }
    ) {
        self.scratch = scratch
        self.progress = progress
        self.console = console
        self.program = program
        self.qemuStderr = qemuStderr
        self.note = note
    }
}
