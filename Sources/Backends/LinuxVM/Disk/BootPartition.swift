import Core
import Foundation

/// Partition 1 of a Firestarter disk: FAT with SYSLINUX, the kernel, the initramfs and syslinux.cfg,
/// sized to what it holds. Built as a file with dosfstools, mtools and syslinux: no root, no mounts.
/// Every timestamp is SOURCE_DATE_EPOCH (or 1980-01-01, FAT's epoch) and the volume id comes from the
/// content, so the same inputs give the same bytes.
public struct BootPartition {
    public var kernel: String
    public var initramfs: String?
    public var commandLine: String
    public var sourceDateEpoch: Int64

    public static let tools = [
        HostTool("mkfs.fat", apt: "dosfstools", purpose: "the boot partition of linuxvm images"),
        HostTool("mcopy", apt: "mtools", purpose: "the boot partition of linuxvm images"),
        HostTool("syslinux", apt: "syslinux", purpose: "booting linuxvm images")
    ]

    public init(kernel: String, initramfs: String?, commandLine: String, sourceDateEpoch: Int64) {
        self.kernel = kernel
        self.initramfs = initramfs
        self.commandLine = commandLine
        self.sourceDateEpoch = max(sourceDateEpoch, 315_532_800)  // FAT cannot date files before 1980
    }

    public var syslinuxConfig: String {
        let text = "DEFAULT gvlt\nPROMPT 0\nTIMEOUT 0\nLABEL gvlt\n  LINUX /vmlinuz\n"
        // SYSLINUX adds an INITRD as `initrd=` at the end of the command line, where it would land
        // among an init's arguments after `--` (--init-args); then it is written before them.
        guard initramfs != nil else { return text + "  APPEND \(commandLine)\n" }
        if let range = commandLine.range(of: " -- ") {
            return text
                + "  APPEND \(commandLine[..<range.lowerBound]) initrd=/initrd.img\(commandLine[range.lowerBound...])\n"
        }
        return text + "  INITRD /initrd.img\n  APPEND \(commandLine)\n"
    }

    /// The partition's size in KiB, from the sizes of the files alone: the files plus SYSLINUX's own
    /// (~180 KiB) plus the FAT's tables and directory, with a small margin. The disk can be laid
    /// out by it before the partition is written. Should it fall short, `build` makes the partition
    /// larger (mcopy says the disk is full, and the next try is 256 KiB larger).
    public func plannedKiB() throws -> Int {
        var payload: Int64 = 0
        var sizes = [Int64(syslinuxConfig.utf8.count)]
        for path in [kernel] + (initramfs.map { [$0] } ?? []) {
            var info = stat()
            guard stat(path, &info) == 0 else { throw SystemError("cannot read", path: path, errno: errno) }
            sizes.append(Int64(info.st_size))
        }
        for size in sizes { payload += (size + 4095) / 4096 * 4096 }
        return Int((payload + 192 * 1024 + payload / 64 + 128 * 1024) / 1024 + 63) / 64 * 64
    }

    /// Writes the partition image into `scratch` and returns its path.
    public func build(in scratch: String) throws -> String {
        let mkfs = try Self.tools[0].require()
        let mcopy = try Self.tools[1].require()
        let syslinux = try Self.tools[2].require()
        let staging = scratch + "/boot-files"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        var files: [(name: String, source: String)] = [("vmlinuz", kernel)]
        if let initramfs { files.append(("initrd.img", initramfs)) }
        try Data(syslinuxConfig.utf8).write(to: URL(fileURLWithPath: staging + "/syslinux.cfg"))
        files.append(("syslinux.cfg", staging + "/syslinux.cfg"))

        var hasher = ContentHasher()
        for file in files {
            hasher.add(file.name)
            try hasher.add(file: file.source)
        }
        let image = scratch + "/boot.fat"
        let volumeID = String(hasher.finish().prefix(8))
        let environment = ProcessInfo.processInfo.environment.merging(
            // mtools stores FAT times in local time: TZ=UTC keeps the bytes independent of the host's zone.
            ["SOURCE_DATE_EPOCH": String(sourceDateEpoch), "MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"]) { $1 }
        for file in files {
            // mcopy -m keeps the source's mtime, so each copy gets the fixed time first.
            let copy = staging + "/" + file.name
            if file.source != copy { try FileManager.default.copyItem(atPath: file.source, toPath: copy) }
            var times = [
                timespec(tv_sec: Int(sourceDateEpoch), tv_nsec: 0), timespec(tv_sec: Int(sourceDateEpoch), tv_nsec: 0)
            ]
            _ = utimensat(AT_FDCWD, copy, &times, 0)
        }
        var kib = try plannedKiB()
        for _ in 0..<16 {
            try? FileManager.default.removeItem(atPath: image)
            try HostCommand.run(
                mkfs, ["--invariant", "-C", "-n", "GVLTBOOT", "-i", volumeID, image, String(kib)],
                environment: environment)
            try HostCommand.run(syslinux, ["--install", image], environment: environment)
            var full = false
            for file in files {
                let result = try HostCommand.run(
                    mcopy, ["-m", "-i", image, staging + "/" + file.name, "::/" + file.name],
                    environment: environment, check: false)
                if result.status != 0 {
                    guard result.output.lowercased().contains("full") else {
                        throw HostCommand.Failed(
                            command: ["mcopy", file.name], status: result.status, output: result.output, hint: nil)
                    }
                    full = true
                    break
                }
            }
            if !full { return image }
            kib += 256
        }
        throw InputError("the boot partition could not be sized to hold the kernel and initramfs")
    }
}

/// sha256 over names and file contents, for identifiers derived from content (volume ids, disk
/// signatures) instead of clocks or randomness.
struct ContentHasher {
    private var parts: [String] = []

    mutating func add(_ text: String) { parts.append("s:" + text) }

    mutating func add(file path: String) throws { parts.append("f:" + (try SHA256Hex.of(file: path))) }

    func finish() -> String { SHA256Hex.of(Array(parts.joined(separator: "\n").utf8)) }
}
