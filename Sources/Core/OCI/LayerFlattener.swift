/// Applies parsed layers, lowest first, to one tree with the OCI image spec's overlay semantics:
/// - `.wh.NAME` deletes NAME from lower layers; `.wh..wh..opq` hides all lower children of its
///   directory. Whiteouts are applied before the layer's other entries, so their position inside the
///   layer does not matter, and they never appear in the result.
/// - An entry replaces what lower layers had at its path; a directory over a directory merges.
/// - Hard links may only name entries already in the tree (lower layers, or earlier in this layer).
/// - Nothing may be written through a symlink: the link would be resolved on our side, not the guest's.
public final class LayerFlattener {
    public let tree: FileTree

    public init(tree: FileTree = FileTree()) {
        self.tree = tree
    }

    static let opaqueMarker = ".wh..wh..opq"
    static let whiteoutPrefix = ".wh."

    public func apply(_ layer: ParsedLayer) throws {
        var additions: [(ParsedLayer.Entry, [String])] = []
        additions.reserveCapacity(layer.entries.count)
        for entry in layer.entries {
            let components = try Self.components(of: entry.name, in: layer)
            if let bad = components.dropLast().first(where: { TreePath.hasPrefix($0, Self.whiteoutPrefix) }) {
                throw HostileInputError(
                    "\(layer.label): entry '\(entry.name)': the directory '\(bad)' has a whiteout name; a whiteout cannot have children"
                )
            }
            guard let base = components.last, TreePath.hasPrefix(base, Self.whiteoutPrefix) else {
                additions.append((entry, components))
                continue
            }
            let parent = Array(components.dropLast())
            do {
                if base.utf8.elementsEqual(Self.opaqueMarker.utf8) {
                    try tree.removeChildren(of: parent)
                } else if !TreePath.hasPrefix(base, Self.whiteoutPrefix + Self.whiteoutPrefix) {
                    // `.wh..wh.*` other than the opaque marker are aufs bookkeeping: ignored, like docker does.
                    let hidden = String(decoding: base.utf8.dropFirst(Self.whiteoutPrefix.utf8.count), as: UTF8.self)
                    // `.wh.`, `.wh..` and `.wh...` would hide the directory itself or its parent:
                    // no tool writes them, and no reading of them is safe.
                    guard !["", ".", ".."].contains(hidden) else {
                        throw HostileInputError(
                            "\(layer.label): entry '\(entry.name)' is a whiteout of `\(hidden)`, which names no entry of its directory"
                        )
                    }
                    try tree.remove(parent + [hidden])
                }
            } catch is FileTree.LookupProblem {
                // The parent is a symlink or file in lower layers (e.g. `var/run -> /run` turned into a
                // directory by this layer): there is nothing below it to hide, and nothing is written.
            }
        }
        for (entry, components) in additions {
            try guarded(entry, layer) {
                switch entry.kind {
                case .directory:
                    try tree.setDirectory(components, metadata: entry.metadata)
                case .hardlink(let target):
                    guard !components.isEmpty else {
                        throw HostileInputError(
                            "\(layer.label): entry '\(entry.name)': the image root cannot be a hard link")
                    }
                    let targetComponents: [String]
                    switch TreePath.components(target) {
                    case .success(let parts): targetComponents = parts
                    case .failure(let problem):
                        throw HostileInputError("\(layer.label): hard link '\(entry.name)' -> '\(target)': \(problem)")
                    }
                    let node: FileTree.Node?
                    do {
                        node = try tree.node(at: targetComponents)
                    } catch let problem as FileTree.LookupProblem {
                        throw HostileInputError(
                            "\(layer.label): hard link '\(entry.name)' -> '\(target)': \(Self.explain(problem)) in its target"
                        )
                    }
                    guard case .leaf(let inode)? = node else {
                        let why =
                            node == nil
                            ? "does not exist in the image (a hard link may only name an earlier entry)"
                            : "is a directory"
                        throw HostileInputError(
                            "\(layer.label): hard link '\(entry.name)' -> '\(target)': the target \(why)")
                    }
                    try tree.link(components, to: inode)
                default:
                    guard !components.isEmpty else {
                        throw HostileInputError(
                            "\(layer.label): entry '\(entry.name)' is a \(entry.kind.name): the image root must be a directory"
                        )
                    }
                    try tree.setLeaf(components, kind: entry.kind, metadata: entry.metadata)
                }
            }
        }
    }

    private func guarded(_ entry: ParsedLayer.Entry, _ layer: ParsedLayer, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let problem as FileTree.LookupProblem {
            throw HostileInputError("\(layer.label): entry '\(entry.name)': \(Self.explain(problem))")
        }
    }

    static func explain(_ problem: FileTree.LookupProblem) -> String {
        switch problem {
        case .throughSymlink(let prefix, let target):
            return "parent '\(prefix)' is a symlink (-> \(target)); writing through a symlink is refused"
        case .notADirectory(let prefix):
            return "parent '\(prefix)' is not a directory"
        }
    }

    static func components(of name: String, in layer: ParsedLayer) throws -> [String] {
        switch TreePath.components(name) {
        case .success(let parts): return parts
        case .failure(let problem):
            throw HostileInputError("\(layer.label): entry '\(name)': \(problem)")
        }
    }
}
