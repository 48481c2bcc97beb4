import Foundation

/// Task resources against the host: a VM cannot have more CPUs or memory than the machine that runs
/// it. Past the host they are an error before QEMU starts, naming the field and what the host has, or,
/// with `--fit`, capped with a warning.
public struct HostFit {
    public var cpus = ProcessInfo.processInfo.activeProcessorCount
    public var memoryBytes = Int64(clamping: ProcessInfo.processInfo.physicalMemory)

    public init() {}

    /// The CPUs and QEMU `-m` value to use. `cpuOrigin`/`memoryOrigin` name where the values came from
    /// ("--smp", "task.yaml: resources.cpus").
    public func check(
        cpus wanted: Int, from cpuOrigin: String, memory: String, from memoryOrigin: String, fit: Bool,
        warn: (String) -> Void
    ) throws -> (cpus: Int, memory: String) {
        var chosen = (cpus: wanted, memory: memory)
        if wanted > cpus {
            guard fit else {
                throw InputError(
                    "\(cpuOrigin) is \(wanted), and this host has \(cpus) CPU\(cpus == 1 ? "" : "s")",
                    hint: "ask for at most \(cpus), or pass --fit to run with \(cpus)")
            }
            warn("\(cpuOrigin) is \(wanted); running with this host's \(cpus) (--fit)")
            chosen.cpus = cpus
        }
        if let bytes = ByteSize.parse(memory, ByteSize.memory), let wantedBytes = Int64(exactly: bytes),
            wantedBytes > memoryBytes
        {
            // Leave the host a quarter, at most 1 GiB, for QEMU and itself.
            let usable = max(memoryBytes - min(memoryBytes / 4, 1 << 30), 32 << 20) >> 20
            guard fit else {
                throw InputError(
                    "\(memoryOrigin) is \(memory) (\(wantedBytes >> 20) MiB), and this host has \(memoryBytes >> 20) MiB of memory",
                    hint: "ask for less, or pass --fit to run with \(usable) MiB")
            }
            warn("\(memoryOrigin) is \(memory); running with \(usable) MiB, what this host can give (--fit)")
            chosen.memory = "\(usable)M"
        }
        return chosen
    }
}
