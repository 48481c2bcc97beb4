import Foundation

/// What container runtimes (podman, docker, containerd) give a process whose image leaves them out:
/// a `PATH`, and `HOME` from the user's passwd entry or `/`. gvlt bakes them into the image at build
/// time, where `gvlt inspect` shows them, instead of leaving the guest to guess. Without them a
/// `#!/usr/bin/env python3` script runs with no PATH: `env` then finds `/bin/python3`, whose
/// `sys.prefix` is `/`, and `/usr/local/lib/python3.X/dist-packages` drops out of `sys.path`.
public enum RuntimeDefaults {
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// `spec` with PATH and HOME added where its environment has none. `passwd` is the image's
    /// `/etc/passwd`, if it has one.
    public static func apply(to spec: RunSpec, passwd: String?) -> RunSpec {
        var spec = spec
        if !spec.env.contains(where: { $0.key == "PATH" }) {
            spec.env.append(RunSpec.EnvVar(key: "PATH", value: path))
        }
        if !spec.env.contains(where: { $0.key == "HOME" }) {
            spec.env.append(RunSpec.EnvVar(key: "HOME", value: home(of: spec.user, passwd: passwd)))
        }
        return spec
    }

    /// The home directory of `user` ("name", "uid", "name:group", "uid:gid"; nil is root) in `passwd`,
    /// or `/` when it has no entry, as runc and containerd decide it.
    public static func home(of user: String?, passwd: String?) -> String {
        let name = String(
            (user ?? "0").split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "0")
        let wanted = name.isEmpty ? "0" : name
        for line in (passwd ?? "").split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 6 else { continue }
            let matches = UInt32(wanted) != nil ? fields[2] == wanted : fields[0] == wanted
            if matches, !fields[5].isEmpty { return String(fields[5]) }
        }
        return "/"
    }
}

extension FileTree {
    /// The text of a small regular file in the tree (`/etc/passwd`), its parents resolved inside the
    /// image; nil when it is missing, not a regular file, or larger than `limit`.
    public func smallText(at path: String, limit: Int64 = 1 << 20) -> String? {
        guard case .success(let parts) = TreePath.components(path),
            let resolved = try? resolvingParents(parts, what: path),
            case .leaf(let inode)? = try? node(at: resolved),
            case .regularFile(let content) = inode.kind, content.size <= limit
        else { return nil }
        var data = Data()
        guard (try? content.stream { data.append(contentsOf: $0) }) != nil else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
