import Foundation

/// Reads Debian packages (`.deb`: an `ar` holding `data.tar.{xz,zst,gz}`) with libarchive, and finds
/// and downloads them with apt (no install, no root). Used for kernels and, later, driver sources.
public enum DebianPackage {
    /// Extracts the members of `deb`'s data archive for which `keep` is true into `directory`.
    /// Names are checked like image layers (no `..`, no absolute paths); only directories, regular
    /// files and symlinks that stay inside `directory` are written. Returns the paths written.
    @discardableResult
    public static func extract(_ deb: String, into directory: String, keep: (String) -> Bool) throws -> [String] {
        let file = try SharedFile.openRegular(deb, what: "Debian package", followSymlinks: true)
        let outer = try ArchiveReader(format: .ar, source: FileRangeSource(file: file, length: file.size), label: deb)
        var written: [String] = []
        while let entry = try outer.nextHeader() {
            let header = try ArchiveEntryCoding.decode(entry)
            guard header.name.hasPrefix("data.tar") else { continue }
            let inner = try ArchiveReader(
                format: .tar, filters: [.xz, .zstd, .gzip], source: EntryDataSource(reader: outer),
                label: "\(deb): \(header.name)")
            while let member = try inner.nextHeader() {
                let item = try ArchiveEntryCoding.decode(member)
                guard case .success(let parts) = TreePath.components(item.name), !parts.isEmpty else { continue }
                let relative = TreePath.join(parts)
                guard keep(relative) else { continue }
                let target = directory + "/" + relative
                try FileManager.default.createDirectory(
                    atPath: URL(fileURLWithPath: target).deletingLastPathComponent().path,
                    withIntermediateDirectories: true)
                switch item.kind {
                case .directory:
                    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
                case .regularFile:
                    let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                    guard fd >= 0 else { throw SystemError("cannot create", path: target, errno: errno) }
                    // Executables stay executable (kbuild's prebuilt tools); set-id bits are dropped.
                    if item.metadata.permissions & 0o111 != 0 {
                        _ = fchmod(fd, mode_t(item.metadata.permissions & 0o755))
                    }
                    let out = SharedFile(fd: fd, displayName: target)
                    var position: Int64 = 0
                    while let (block, offset) = try inner.readBlock() {
                        try out.write(block, at: offset)
                        position = max(position, offset + Int64(block.count))
                    }
                    if out.size < item.size { try out.truncate(to: item.size) }
                    written.append(relative)
                case .symlink(let linkTarget):
                    // Only links that resolve inside the extracted tree, lexically.
                    let base = parts.dropLast()
                    var resolved = linkTarget.hasPrefix("/") ? [] : Array(base)
                    var escapes = false
                    for part in linkTarget.split(separator: "/") where part != "." {
                        if part == ".." {
                            if resolved.isEmpty { escapes = true; break }
                            resolved.removeLast()
                        } else {
                            resolved.append(String(part))
                        }
                    }
                    if escapes || linkTarget.hasPrefix("/") { continue }
                    try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: linkTarget)
                    written.append(relative)
                default:
                    continue
                }
            }
            return written
        }
        throw InputError("\(deb) has no data.tar member, so it is not a Debian package")
    }

    /// `apt-cache show` of one package version: its control fields, or nil when apt does not know it.
    public static func show(_ package: String) throws -> [String: String]? {
        let apt = try HostTool("apt-cache", apt: "apt", purpose: "Debian kernels (--kernel debian)").require()
        let result = try HostCommand.run(apt, ["show", "--no-all-versions", package], check: false)
        guard result.status == 0 else { return nil }
        var fields: [String: String] = [:]
        for line in result.output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { break }  // first stanza only
            guard !line.hasPrefix(" "), let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields.isEmpty ? nil : fields
    }

    /// Every version of `package` apt can download, best first (as `apt-cache madison` lists them).
    public static func versions(of package: String) throws -> [String] {
        let apt = try HostTool("apt-cache", apt: "apt", purpose: "Debian packages (kernels, the NVIDIA driver)")
            .require()
        let result = try HostCommand.run(apt, ["madison", package], check: false)
        guard result.status == 0 else { return [] }
        var versions: [String] = []
        for line in result.output.split(separator: "\n") {
            let fields = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 3, fields[0] == package, !versions.contains(fields[1]) else { continue }
            versions.append(fields[1])
        }
        return versions
    }

    /// Downloads `package=version` into `directory` with `apt-get download` and returns the .deb path.
    public static func download(_ package: String, version: String, into directory: String) throws -> String {
        let apt = try HostTool("apt-get", apt: "apt", purpose: "Debian kernels (--kernel debian)").require()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try HostCommand.run(
            apt, ["download", "-q", "\(package)=\(version)"], workingDirectory: directory,
            hint:
                "apt could not download \(package) \(version); run `apt-get update`, or build once while online so the result is cached"
        )
        guard
            let deb = try FileManager.default.contentsOfDirectory(atPath: directory).first(where: {
                $0.hasSuffix(".deb")
            })
        else {
            throw InputError("apt-get download \(package)=\(version) produced no .deb in \(directory)")
        }
        return directory + "/" + deb
    }
}
