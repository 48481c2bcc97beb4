/// SCSI disk discovery by hand. Left to itself, a virtio-scsi host probes its 256 targets one by one
/// (about 0.1 s under TCG) and every later module load waits for that scan to end. The worker's disk
/// is target 0, so the init loads scsi_mod with `scan=manual`, scans target 0 as soon as a host
/// exists, and goes on target by target only while the root has not turned up. One target at a time,
/// because a sysfs scan of a whole host takes the kernel about 24 ms per target here (6 s in all).
struct SCSIScan {
    /// False when the user chose a scan mode on the kernel command line: the kernel scans then.
    let byHand: Bool
    private var nextTarget = 0
    private var finishedHosts: Set<String> = []

    init(commandLine: KernelCommandLine) {
        byHand = !commandLine.sets(module: "scsi_mod", parameter: "scan")
    }

    /// The parameters scsi_mod gets from us.
    var moduleParameters: [String] { byHand ? ["scan=manual"] : [] }

    /// Scans target 0 of every host once some host exists; later calls do nothing.
    mutating func scanFirstTargetWhenReady() {
        guard byHand && nextTarget == 0 && !Self.hosts.isEmpty else { return }
        _ = scanNextTarget()
    }

    /// Whether there are targets left to try.
    var hasMoreTargets: Bool { byHand && (nextTarget == 0 || Self.hosts.contains { !finishedHosts.contains($0) }) }

    /// Scans the next target (every channel, every LUN) of every host that has one. The write returns
    /// once the scan is done; the disks' partitions still appear asynchronously. False when every
    /// host is past its last target (the kernel refuses the write).
    mutating func scanNextTarget() -> Bool {
        guard byHand else { return false }
        var scanned = false
        for host in Self.hosts where !finishedHosts.contains(host) {
            if System.writeFile("/sys/class/scsi_host/\(host)/scan", "- \(nextTarget) -") {
                scanned = true
            } else {
                finishedHosts.insert(host)
            }
        }
        nextTarget += 1
        return scanned
    }

    static var hosts: [String] { System.listDirectory("/sys/class/scsi_host") }
    static var hasDevices: Bool { !System.listDirectory("/sys/class/scsi_device").isEmpty }
}
