import ArgumentParser
import Core

/// The virtual machine: resources, acceleration, passed-through GPUs and QEMU itself.
struct MachineFlags: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Stop the VM after this many seconds and exit 124 (default: the task's resources.time).",
            valueName: "seconds"))
    var timeout: Double?

    @Option(
        name: [.customShort("s"), .long],
        help: ArgumentHelp("Virtual CPUs (default: the task's resources.cpus, else 1).", valueName: "n"))
    var smp: Int?

    @Option(
        name: [.customShort("m"), .long],
        help: ArgumentHelp(
            "Guest memory, e.g. 512M, 4G; a bare number is MiB (default: the task's resources.memory, else 512M; 2G for Nanos images).",
            valueName: "size"))
    var mem: String?

    @Option(
        name: .long,
        help: ArgumentHelp("auto (probe whether KVM really works, else tcg), kvm or tcg.", valueName: "mode"))
    var accel: String = "auto"

    @Option(
        name: [.customShort("g"), .long],
        help: ArgumentHelp(
            "Pass a host GPU by PCI address with vfio-pci (repeatable); `none` runs without the GPUs the task or manifest asks for.",
            valueName: "pci"))
    var gpu: [String] = []

    @Flag(help: "Cap CPUs and memory that exceed the host's at what it has, with a warning, instead of refusing.")
    var fit = false

    @Option(
        name: [.customLong("qemu-arg"), .customLong("qemu")], parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "One extra QEMU argument (repeatable; one argument each, never split on spaces).", valueName: "arg"))
    var qemu: [String] = []

    @Option(
        name: .long, help: ArgumentHelp("The QEMU to run (default: qemu-system-x86_64 on PATH).", valueName: "path"))
    var qemuPath: String?

    func apply(to request: inout RunRequest) throws {
        guard let mode = QEMUAccel(rawValue: accel) else {
            throw InputError("--accel `\(accel)` is not auto, kvm or tcg")
        }
        request.accel = mode
        request.timeout = timeout
        request.cpus = smp
        request.memory = mem
        if gpu.contains("none") {
            guard gpu == ["none"] else { throw InputError("--gpu none cannot be combined with GPU addresses") }
            request.withoutGPUs = true
        } else {
            request.gpus = gpu
        }
        request.fit = fit
        request.qemuArguments = qemu
        request.qemuPath = qemuPath
    }
}
