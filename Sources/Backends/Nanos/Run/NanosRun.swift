import Core
import Foundation

/// `gvlt run` for a Nanos image, booted the way `ops run` boots one on-prem: q35 with ops' three PCIe
/// root ports, the disk on virtio-scsi, isa-debug-exit at Nanos' port 0x501, the serial console.
/// A `--volume` directory becomes a TFS volume attached as attachment 1 (SCSI id 1, device id
/// `persistent-disk-1`), so `mounts:(%1:/workspace)` finds it; its files are copied back afterwards.
public struct NanosRun {
    public var image: String
    public var volume: String?
    /// Free space in the volume for what the program writes.
    public var volumeFreeSpace: Int64 = 256 << 20
    public var outputDirectory = "output"
    public var timeout: Double?
    public var cpus = 1
    /// QEMU's `-m` value (`2048M`).
    public var memory = "2048M"
    public var gpus: [String] = []
    public var extraQEMUArguments: [String] = []
    /// QEMU to run instead of the one on PATH.
    public var qemuPath: String?

    public init(image: String) { self.image = image }

    public enum Result: Equatable, Sendable {
        case exited(Int32)
        /// The VM stopped without an exit code to read (no debug_exit, or a plain power-off).
        case unknown(qemuStatus: Int32)
        case qemuFailed(Int32)
        case timedOut(Double)
    }

    public struct Outcome {
        public var result: Result
        public var copiedOutputs: [String]
        /// Whether the image has `debug_exit:t` (built with --local-run).
        public var debugExit: Bool
        /// How long the VM ran, boot included.
        public var executionTime: Double
        /// What Nanos printed when a klib failed to load (`klib automatic load failed (4)`), if it did.
        public var klibFailure: String?
    }

    /// Watches the console for Nanos' klib failures; keeps only the last line being written.
    final class KlibWatch: @unchecked Sendable {
        private let lock = NSLock()
        private var partial = Data()
        private(set) var failure: String?

        func feed(_ chunk: Data) {
            lock.withLock {
                partial.append(chunk)
                while let newline = partial.firstIndex(of: 0x0A) {
                    let line = String(decoding: partial[partial.startIndex..<newline], as: UTF8.self)
                    partial.removeSubrange(partial.startIndex...newline)
                    if failure == nil, line.contains("klib automatic load failed") || line.contains("klib load failed")
                    {
                        failure = line.trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                }
                if partial.count > 4096 { partial.removeAll() }
            }
        }
    }

    static func escaped(_ path: String) -> String { path.replacingOccurrences(of: ",", with: ",,") }

    public func qemuArguments(accel: String, volumeImage: String?) -> [String] {
        var arguments = [
            "-machine", "q35", "-accel", accel,
            "-device", "pcie-root-port,port=0x10,chassis=1,id=pci.1,bus=pcie.0,multifunction=on,addr=0x3",
            "-device", "pcie-root-port,port=0x11,chassis=2,id=pci.2,bus=pcie.0,addr=0x3.0x1",
            "-device", "pcie-root-port,port=0x12,chassis=3,id=pci.3,bus=pcie.0,addr=0x3.0x2",
            "-device", "virtio-scsi-pci,bus=pci.2,addr=0x0,id=scsi0",
            "-device", "scsi-hd,bus=scsi0.0,drive=hd0,scsi-id=0,lun=0",
            // snapshot=on: the kernel may write to its root; the image file stays as built.
            "-drive", "file=\(Self.escaped(image)),format=raw,if=none,id=hd0,snapshot=on"
        ]
        if let volumeImage {
            arguments += [
                "-device", "scsi-hd,bus=scsi0.0,drive=hd1,scsi-id=1,lun=0,device_id=persistent-disk-1",
                "-drive", "file=\(Self.escaped(volumeImage)),format=raw,if=none,id=hd1"
            ]
        }
        arguments += [
            "-vga", "none", "-smp", String(cpus), "-m", memory, "-cpu", "max",
            "-device", "isa-debug-exit,iobase=0x501,iosize=0x02", "-device", "virtio-rng-pci",
            "-no-reboot", "-display", "none", "-serial", "stdio"
        ]
        for gpu in gpus { arguments += ["-device", "vfio-pci,rombar=0,host=\(gpu)"] }
        return arguments + extraQEMUArguments
    }

    /// Nanos writes the exit code to port 0x501 when the root has `debug_exit:t`; QEMU then exits
    /// with (code << 1) | 1. A status of 0 is a plain power-off, which carries no code.
    public static func result(qemuStatus: Int32, debugExit: Bool, qemuComplained: Bool) -> Result {
        if qemuStatus == 1 && qemuComplained { return .qemuFailed(qemuStatus) }
        if debugExit, qemuStatus & 1 == 1 { return .exited(qemuStatus >> 1) }
        return .unknown(qemuStatus: qemuStatus)
    }

    /// A bare TFS volume holding `directory`'s tree (files, directories, symlinks).
    public static func makeVolume(from directory: String, to path: String, freeSpace: Int64) throws {
        let tree = TFSNode.directory()
        func walk(_ host: String, _ image: [String]) throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: host).sorted() {
                let full = host + "/" + name
                var st = stat()
                guard lstat(full, &st) == 0 else { throw SystemError("cannot read", path: full, errno: errno) }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    try tree.set(image + [name], TFSNode.directory(), what: "--volume")
                    try walk(full, image + [name])
                case S_IFLNK:
                    try tree.set(
                        image + [name],
                        TFSNode(.symlink(try FileManager.default.destinationOfSymbolicLink(atPath: full))),
                        what: "--volume")
                case S_IFREG:
                    try tree.set(
                        image + [name],
                        TFSNode(.file(.hostFile(path: full, size: Int64(st.st_size), identity: FileIdentity(st)))),
                        what: "--volume")
                default:
                    throw InputError(
                        "--volume: \(full) is not a file, directory or symlink", hint: "a TFS volume holds only those")
                }
            }
        }
        try walk(directory, [])
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("cannot create", path: path, errno: errno) }
        let file = SharedFile(fd: fd, displayName: path)
        let result = try TFSWriter(label: "gvlt-volume", freeSpace: freeSpace).write(tree, to: file, at: 0)
        try file.truncate(to: result.size)
    }

    /// Copies every entry of a volume into `directory` (files, directories, symlinks).
    public static func copyOut(_ volume: TFSVolume, to directory: String) throws -> [String] {
        var copied: [String] = []
        func walk(_ tuple: TFSTuple, _ relative: String) throws {
            for (key, value) in tuple.tuple("children")?.sortedPairs ?? [] {
                guard case .tuple(let entry) = value else { continue }
                let name = String(decoding: key, as: UTF8.self)
                guard name != "." && name != ".." && !name.contains("/") && !name.isEmpty else { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                let destination = directory + "/" + path
                switch TFSVolume.kind(of: entry) {
                case .directory:
                    try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
                    try walk(entry, path)
                case .symlink(let target):
                    try? FileManager.default.removeItem(atPath: destination)
                    try FileManager.default.createSymbolicLink(atPath: destination, withDestinationPath: target)
                    copied.append(destination)
                case .file:
                    let fd = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                    guard fd >= 0 else { throw SystemError("cannot create", path: destination, errno: errno) }
                    defer { close(fd) }
                    _ = try volume.write(entry, path: "/" + path, to: fd, displayName: destination)
                    copied.append(destination)
                case .other:
                    continue
                }
            }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try walk(volume.root, "")
        return copied
    }

    /// What a run checks before it starts anything (`--print-qemu-command` too): the image is a
    /// Nanos image, and `--volume` is a directory.
    public func preflight() throws {
        guard NanosInspector.isNanosImage(image) else {
            throw InputError(
                "\(image) is not a Nanos image",
                hint: "gvlt run boots images from gvlt build --backend nanos or ops build")
        }
        if let volume {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: volume, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw InputError(
                    "--volume \(volume) is not a directory",
                    hint: "pass the directory whose files the program should see under its mount")
            }
        }
    }

    public func run(accel: String, scratch: ScratchDirectory, console: @escaping (Data) -> Void) throws -> Outcome {
        let qemu = try QEMUProbe.resolve(qemuPath)
        try preflight()
        let debugExit = (try NanosImageReader.open(image)).root.root.text("debug_exit") == "t"
        var volumeImage: String?
        if let volume {
            volumeImage = scratch.path + "/volume.tfs"
            try Self.makeVolume(from: volume, to: volumeImage!, freeSpace: volumeFreeSpace)
        }
        final class Complaints: @unchecked Sendable { var seen = false }
        let complaints = Complaints()
        let klibs = KlibWatch()
        let finished = try QEMUProcess.run(
            qemu, qemuArguments(accel: accel, volumeImage: volumeImage), timeout: timeout,
            console: { chunk in
                klibs.feed(chunk)
                console(chunk)
            },
            line: { line in
                if line.hasPrefix("qemu-system-") { complaints.seen = true }
            })
        let result =
            finished.timedOut
            ? .timedOut(timeout!)
            : Self.result(qemuStatus: finished.status, debugExit: debugExit, qemuComplained: complaints.seen)
        var copied: [String] = []
        if let volumeImage {
            let written = try TFSReader.read(
                file: try SharedFile.openReadOnly(volumeImage), what: "the --volume after the run")
            copied = try Self.copyOut(written, to: outputDirectory)
        }
        return Outcome(
            result: result, copiedOutputs: copied, debugExit: debugExit, executionTime: finished.seconds,
            klibFailure: klibs.failure)
    }
}
