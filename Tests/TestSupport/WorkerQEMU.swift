import Foundation

/// The worker's QEMU command line, written out independently of gvlt's own so that the
/// boot tests check images against the contract rather than against gvlt's reading of it.
public enum WorkerQEMU {
    /// Flags for a boot under TCG with the worker's disk (read-only, virtio-scsi), debug-exit and the
    /// three 9p shares in `shares/{rt-config,input,output}`; `boot` adds `-kernel`/`-initrd` or nothing.
    public static func arguments(disk: String, shares: String, boot: [String] = []) -> [String] {
        var arguments =
            ["-machine", "q35", "-accel", "tcg", "-m", "512M", "-no-reboot"] + boot + [
                "-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-hd,bus=scsi0.0,drive=hd0",
                "-drive", "file=\(disk),format=raw,if=none,id=hd0,readonly=on",
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
        return arguments
    }

    /// Runs QEMU with `arguments`, killing it after `timeout` seconds; returns its status and console.
    public static func run(_ arguments: [String], timeout: Double = 240) throws -> (status: Int32, console: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-system-x86_64")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let console = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        watchdog.cancel()
        return (process.terminationStatus, console)
    }
}
