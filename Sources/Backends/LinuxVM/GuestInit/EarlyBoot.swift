import CInit

/// PID 1 inside the initramfs: load the drivers, find our root partition by its content, mount it
/// read-only and make it `/`. No shell, no busybox.
enum EarlyBoot {
    static let moduleList = "/etc/gvlt/modules"
    static let newRoot = "/newroot"
    static let marker = "/etc/gvlt/config.yaml"

    static var isInitramfs: Bool { cinit_exists(moduleList) && !cinit_exists(marker) }

    static func run() throws(InitError) {
        System.makeDirectory("/dev")
        System.makeDirectory("/proc")
        System.makeDirectory("/sys")
        try System.mount("devtmpfs", "/dev", "devtmpfs", flags: UInt(MS_NOSUID))
        try System.mount("proc", "/proc", "proc", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
        try System.mount("sysfs", "/sys", "sysfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))

        let list = System.readFile(moduleList) ?? []
        var scan = SCSIScan(commandLine: KernelCommandLine.current)
        for line in list.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let path = String(decoding: line, as: UTF8.self)
            let parameters = KernelCommandLine.moduleName(ofPath: path) == "scsi_mod" ? scan.moduleParameters : []
            try System.loadModule(path, parameters: parameters)
            // Scanning as soon as a host exists lets the disk's I/O overlap the remaining loads.
            scan.scanFirstTargetWhenReady()
        }

        System.makeDirectory(newRoot)
        var found: String?
        var reasons: [String] = []
        let start = System.monotonicMilliseconds()
        // Disks appear asynchronously once their drivers are loaded: poll often (boot time counts),
        // for up to 15 s. Other SCSI targets are tried once target 0 has nothing or 250 ms went by.
        while System.monotonicMilliseconds() - start < 15_000 {
            reasons = []
            found = findRoot(reasons: &reasons)
            if found != nil { break }
            if scan.hasMoreTargets && (!SCSIScan.hasDevices || System.monotonicMilliseconds() - start > 250),
                scan.scanNextTarget()
            {
                continue
            }
            System.sleepMilliseconds(10)
        }
        guard let device = found else {
            let seen = System.listDirectory("/sys/class/block").joined(separator: ", ")
            throw InitError(
                "no root partition found: none of \(seen) holds a gvlt root file system"
                    + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: "; ")))"))
        }
        Console.say("root file system on \(device)")

        _ = umount2("/proc", Int32(MNT_DETACH))
        _ = umount2("/sys", Int32(MNT_DETACH))
        try System.mount("/dev", newRoot + "/dev", nil, flags: UInt(MS_MOVE))
        guard chdir(newRoot) == 0 else { throw InitError("chdir \(newRoot): \(Console.errnoText())") }
        try System.mount(".", "/", nil, flags: UInt(MS_MOVE))
        guard chroot(".") == 0, chdir("/") == 0 else {
            throw InitError("cannot switch to the root file system: \(Console.errnoText())")
        }
        try startCustomInit()
    }

    static let ownInit = "/usr/lib/gvlt/init"

    /// `gvlt build --init PATH --init-args ARGS`: the image's own init takes over the root, with the
    /// arguments and the environment the kernel gives an init. Returns only when there is none.
    static func startCustomInit() throws(InitError) {
        let commandLine = KernelCommandLine.current
        guard let path = commandLine.initPath, path != ownInit else { return }
        Console.say("starting \(path) (--init)")
        System.exec(path, [path] + commandLine.initArguments, environment: ["HOME=/", "TERM=linux"])
        throw InitError("cannot start the init \(path) (--init): \(Console.errnoText())")
    }

    /// The first partition whose file system is squashfs or ext4 and holds our baked config.
    static func findRoot(reasons: inout [String]) -> String? {
        for name in System.listDirectory("/sys/class/block") where cinit_exists("/sys/class/block/\(name)/partition") {
            let device = "/dev/" + name
            guard cinit_is_block_device(device) else { continue }
            let fstype: String
            if System.readBytes(device, at: 0, count: 4) == Array("hsqs".utf8) {
                fstype = "squashfs"
            } else if System.readBytes(device, at: 1080, count: 2) == [0x53, 0xEF] {
                fstype = "ext4"
            } else {
                continue
            }
            do {
                if KernelCommandLine.current.readWrite && fstype == "ext4" {
                    // A worker (and gvlt run) attaches the disk read-only; then the root is too.
                    do {
                        try System.mount(device, newRoot, fstype, flags: 0)
                    } catch {
                        Console.say(
                            "root file system not mounted read-write (\(error.message)); the disk is read-only, as on a worker, so it is mounted read-only"
                        )
                        try System.mount(device, newRoot, fstype, flags: UInt(MS_RDONLY))
                    }
                } else {
                    try System.mount(device, newRoot, fstype, flags: UInt(MS_RDONLY))
                }
            } catch {
                reasons.append(error.message)
                continue
            }
            if cinit_exists(newRoot + marker) { return device }
            reasons.append("\(device) (\(fstype)) has no \(marker)")
            _ = umount(newRoot)
        }
        return nil
    }
}
