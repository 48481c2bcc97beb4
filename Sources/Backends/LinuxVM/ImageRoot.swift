import Core
import Foundation

/// What a Firestarter image adds to the source's root tree: the mount points the init needs on a
/// read-only root, the init itself, and the baked runtime config.
public enum ImageRoot {
    public static let initPath = "usr/lib/gvlt/init"
    public static let configPath = "etc/gvlt/config.yaml"
    static let mountPoints = [
        "proc", "sys", "dev", "run", "tmp", "mnt/gevulot/input", "mnt/gevulot/output", "mnt/gevulot/rt-config"
    ]

    public static func complete(
        _ tree: FileTree, init initBinary: String, config: RuntimeConfigFile, mtime: Timestamp,
        scratch: String
    ) throws {
        let directory = FileMetadata(permissions: 0o755, mtime: mtime)
        // The config's own mount targets (--mount) need directories on the read-only root too.
        var points = mountPoints
        for mount in config.mounts {
            let path = mount.target.split(separator: "/").joined(separator: "/")
            if !path.isEmpty && !points.contains(path) { points.append(path) }
        }
        for path in points {
            let components = path.split(separator: "/").map(String.init)
            for depth in 1...components.count {
                let prefix = Array(components.prefix(depth))
                switch try lookup(tree, prefix) {
                case .directory?: continue
                case nil:
                    try tree.setDirectory(
                        prefix,
                        metadata: path == "tmp" && depth == 1
                            ? FileMetadata(permissions: 0o1777, mtime: mtime) : directory)
                case .leaf?:
                    throw InputError(
                        "the image has /\(TreePath.join(prefix)) as a file or link, but the runtime mounts a directory there",
                        hint: "remove /\(TreePath.join(prefix)) from the image")
                }
            }
        }
        for parent in [["usr"], ["usr", "lib"], ["usr", "lib", "gvlt"], ["etc"], ["etc", "gvlt"]]
        where try lookup(tree, parent) == nil {
            try tree.setDirectory(parent, metadata: directory)
        }
        var st = stat()
        guard stat(initBinary, &st) == 0 else {
            throw InputError(
                "the guest init \(initBinary) does not exist",
                hint: "build it with scripts/build-init, or pass --init-binary PATH")
        }
        try tree.setLeaf(
            initPath.split(separator: "/").map(String.init),
            kind: .regularFile(.hostFile(path: initBinary, size: Int64(st.st_size), identity: FileIdentity(st))),
            metadata: FileMetadata(permissions: 0o755, mtime: mtime))
        let text = Array(config.yaml().utf8)
        let file = try SharedFile.anonymous(in: scratch)
        try text.withUnsafeBytes { try file.write($0, at: 0) }
        try tree.setLeaf(
            configPath.split(separator: "/").map(String.init),
            kind: .regularFile(.blobRange(file: file, offset: 0, length: Int64(text.count))),
            metadata: FileMetadata(permissions: 0o644, mtime: mtime))
    }

    private static func lookup(_ tree: FileTree, _ components: [String]) throws -> FileTree.Node? {
        do {
            return try tree.node(at: components)
        } catch let problem as FileTree.LookupProblem {
            if case .throughSymlink(let prefix, let target) = problem {
                throw InputError(
                    "the image has /\(prefix) as a symlink (-> \(target)), but the runtime needs a directory there",
                    hint: "make /\(prefix) a real directory in the image")
            }
            throw InputError(
                "/\(components.joined(separator: "/")) cannot be created in the image: a parent is not a directory")
        }
    }

    /// Where the guest init binary is: `--init-binary`, else what `Installation` finds.
    public static func locateInit(option: String?, installation: Installation = Installation()) throws -> String {
        if let option { return option }
        guard let found = installation.guestInit() else {
            throw InputError(
                "gvlt-init (the guest's PID 1) was not found next to gvlt (\(installation.executable))",
                hint: installation.guestInitHint)
        }
        return found.path
    }
}
