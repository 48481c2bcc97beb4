import Core
import Foundation

/// Partition 2 as ext4 (`--root-fs ext4`), built without root and without mounting: mke2fs makes an
/// empty file system, and debugfs fills it from a script, entry by entry, with the tree's exact
/// owners, modes, device numbers, links, times and xattrs. File contents are first copied into
/// private scratch files named by number (never by image path). Time stamps come from
/// E2FSPROGS_FAKE_TIME and the UUID and hash seed from content, so the bytes are reproducible.
/// The root is read-only, so it has no journal, and no metadata checksums: those need the crc32c
/// driver, which the kernel only requests at mount time (a soft dependency the initramfs would miss).
public struct Ext4Image {
    public var epoch: Int64

    public static let mke2fs = HostTool("mkfs.ext4", apt: "e2fsprogs", purpose: "ext4 root file systems")
    public static let debugfs = HostTool("debugfs", apt: "e2fsprogs", purpose: "ext4 root file systems")
    public static let e2fsck = HostTool("e2fsck", apt: "e2fsprogs", purpose: "ext4 root file systems")

    public init(epoch: Int64) {
        self.epoch = epoch
    }

    public func build(_ tree: FileTree, to output: String, scratch: String) throws {
        let mke2fs = try Self.mke2fs.require()
        let debugfs = try Self.debugfs.require()
        let e2fsck = try Self.e2fsck.require()
        let entries = tree.entries()
        let contents = scratch + "/ext4-content"
        guard !contents.contains("\""), !contents.contains("\n") else {
            throw InputError(
                "the scratch directory \(scratch) has a quote or newline in its path",
                hint: "set TMPDIR to a plain path")
        }
        try FileManager.default.createDirectory(atPath: contents, withIntermediateDirectories: true)

        // Creation first, each in its parent directory by bare name (debugfs resolves names against its
        // working directory); then all metadata, so creating children cannot touch a directory's times.
        var script = ["rmdir /lost+found"]
        var metadataScript: [String] = []
        var links: [String: Int] = [:]
        var dataBytes: Int64 = 0
        var identity: [String] = []
        var counter = 0
        func quoted(_ path: String) throws -> String {
            guard !path.contains("\""), !path.contains("\n"), !path.contains("\\") else {
                throw UnsupportedError(
                    "/\(path): names with quotes, backslashes or newlines cannot be written to an ext4 root yet",
                    hint: "use the default SquashFS root (--root-fs squashfs)")
            }
            return "\"/" + path + "\""
        }
        func enter(_ path: String) throws -> String {
            let url = URL(fileURLWithPath: "/" + path)
            let parent = String(url.deletingLastPathComponent().path.dropFirst())
            script.append("cd \(try quoted(parent))")
            return "\"" + url.lastPathComponent + "\""
        }
        for entry in entries {
            let target = try quoted(entry.path)
            var typeBits: UInt32
            switch entry.kind {
            case .directory:
                typeBits = 0o040000
                if !entry.path.isEmpty { script.append("mkdir \(try enter(entry.path))") }
            case .regularFile(let content):
                typeBits = 0o100000
                counter += 1
                let file = contents + "/\(counter)"
                let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw SystemError("cannot create", path: file, errno: errno) }
                let out = SharedFile(fd: fd, displayName: file)
                var offset: Int64 = 0
                try content.stream { chunk in
                    try out.write(chunk, at: offset)
                    offset += Int64(chunk.count)
                }
                dataBytes += (content.size + 4095) / 4096 * 4096
                script.append("write \"\(file)\" \(try enter(entry.path))")
                identity.append(entry.path + ":" + (try SHA256Hex.of(file: file)))
            case .symlink(let linkTarget):
                guard !linkTarget.contains("\""), !linkTarget.contains("\n") else {
                    throw UnsupportedError(
                        "/\(entry.path): symlink targets with quotes or newlines cannot be written to an ext4 root yet",
                        hint: "use the default SquashFS root")
                }
                script.append("symlink \(try enter(entry.path)) \"\(linkTarget)\"")
                typeBits = 0o120000
            case .hardlink(let first):
                let name = try enter(entry.path)
                script.append("ln \(try quoted(first)) \(name)")
                links[first, default: 1] += 1
                continue
            case .characterDevice(let major, let minor), .blockDevice(let major, let minor):
                let isCharacter: Bool
                if case .characterDevice = entry.kind { isCharacter = true } else { isCharacter = false }
                typeBits = isCharacter ? 0o020000 : 0o060000
                script.append("mknod \(try enter(entry.path)) \(isCharacter ? "c" : "b") \(major) \(minor)")
            case .fifo:
                typeBits = 0o010000
                script.append("mknod \(try enter(entry.path)) p")
            case .socket:
                continue
            }
            let metadata = entry.metadata
            let mode = typeBits | UInt32(metadata.permissions)
            metadataScript.append("sif \(target) mode 0\(String(mode, radix: 8))")
            metadataScript.append("sif \(target) uid \(metadata.uid)")
            metadataScript.append("sif \(target) gid \(metadata.gid)")
            for field in ["mtime", "atime", "ctime", "crtime"] {
                metadataScript.append("sif \(target) \(field) @\(max(metadata.mtime.seconds, 0))")
            }
            for (name, value) in metadata.xattrs.sorted(by: { $0.key < $1.key }) {
                counter += 1
                let file = contents + "/\(counter)"
                try Data(value).write(to: URL(fileURLWithPath: file))
                metadataScript.append("ea_set -f \"\(file)\" \(target) \"\(name)\"")
            }
            identity.append("\(entry.path):\(mode):\(metadata.uid):\(metadata.gid)")
        }
        for (path, count) in links.sorted(by: { $0.key < $1.key }) {
            metadataScript.append("sif \(try quoted(path)) links_count \(count)")
        }
        script.append("cd /")
        script += metadataScript

        // Size: the data, an inode and a directory block per entry, and a quarter more for ext4's own.
        let inodes = entries.count + 64
        let bytes = (dataBytes + Int64(entries.count) * 4096 + Int64(inodes) * 256) * 5 / 4 + (8 << 20)
        let uuid = Self.uuid(SHA256Hex.of(Array(identity.joined(separator: "\n").utf8)))
        var environment = ProcessInfo.processInfo.environment
        environment["E2FSPROGS_FAKE_TIME"] = String(max(epoch, 1))
        try? FileManager.default.removeItem(atPath: output)
        try HostCommand.run(
            mke2fs,
            [
                "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "gvlt-root", "-U", uuid, "-N", String(inodes),
                "-O", "^has_journal,^metadata_csum", "-E", "hash_seed=\(uuid),lazy_itable_init=0,root_owner=0:0",
                output, String(bytes / 1024) + "k"
            ], environment: environment)
        let scriptPath = scratch + "/ext4-populate.debugfs"
        try Data((script.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: scriptPath))
        let result = try HostCommand.run(debugfs, ["-w", "-f", scriptPath, output], environment: environment)
        // debugfs exits 0 even when commands fail; it echoes each command as `debugfs: …`, and anything
        // else it prints (but its version banner and the inode numbers `write` allocates) is a failure.
        let problems = result.output.split(separator: "\n").filter { line in
            !line.hasPrefix("debugfs ") && !line.hasPrefix("debugfs: ") && !line.hasPrefix("Allocated inode:")
                && !line.isEmpty
        }
        guard problems.isEmpty else {
            throw HostCommand.Failed(
                command: ["debugfs", "-w", "-f", scriptPath], status: 0,
                output: problems.prefix(20).joined(separator: "\n"),
                hint: "the ext4 root could not be filled; the SquashFS root (the default) has no such limits")
        }
        let check = try HostCommand.run(e2fsck, ["-fn", output], environment: environment, check: false)
        guard check.status == 0 else {
            throw HostCommand.Failed(
                command: ["e2fsck", "-fn", output], status: check.status, output: check.output + "\n" + result.output,
                hint: "the ext4 root could not be built; the SquashFS root (the default) has no such limits")
        }
        try FileManager.default.removeItem(atPath: contents)
    }

    static func uuid(_ hex: String) -> String {
        let h = Array(hex.prefix(32))
        return [
            String(h[0..<8]), String(h[8..<12]), "4" + String(h[13..<16]), "8" + String(h[17..<20]), String(h[20..<32])
        ].joined(separator: "-")
    }
}
