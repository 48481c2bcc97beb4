/// The root file tree of an image: every entry with its full metadata, content by reference.
///
/// Lookups never follow symlinks. A symlink is data that the guest will resolve at run time, so the
/// tree refuses operations whose parent path passes through one (that is how layer "write-through"
/// attacks work) rather than resolving it on the host's behalf.
///
/// Hard links are modelled as several names sharing one `Inode`, as a file system does. Replacing or
/// deleting one name therefore leaves the others intact, which is what overlay semantics require.
public final class FileTree: @unchecked Sendable {
    public final class Inode {
        public var kind: EntryKind
        public var metadata: FileMetadata
        init(kind: EntryKind, metadata: FileMetadata) {
            self.kind = kind
            self.metadata = metadata
        }
    }

    public final class Directory {
        public var metadata: FileMetadata
        /// Keyed by the exact UTF-8 bytes of the name: Swift `String` equality would merge canonically
        /// equivalent spellings (NFC/NFD), which are different files to the kernel.
        public var children: [Name: Node] = [:]
        init(metadata: FileMetadata) { self.metadata = metadata }
    }

    /// A directory entry name, compared and hashed byte by byte.
    public struct Name: Hashable {
        public let bytes: [UInt8]
        public init(_ string: String) { bytes = Array(string.utf8) }
        public var string: String { String(decoding: bytes, as: UTF8.self) }
    }

    public enum Node {
        case directory(Directory)
        case leaf(Inode)
    }

    /// Why a path could not be reached in the tree.
    public enum LookupProblem: Error, Equatable {
        /// A parent component is a symlink: `prefix` is the symlink's path, `target` its link text.
        case throughSymlink(prefix: String, target: String)
        /// A parent component is a file, device or other non-directory.
        case notADirectory(prefix: String)
    }

    public let root: Directory

    public init(rootMetadata: FileMetadata = .impliedDirectory) {
        root = Directory(metadata: rootMetadata)
    }

    // MARK: Lookup

    /// The directory at `components`, or nil when some component does not exist.
    /// Throws when a component exists but is a symlink or a non-directory.
    public func directory(at components: ArraySlice<String>, createMissing: Bool = false) throws -> Directory? {
        var current = root
        for (index, name) in components.enumerated() {
            switch current.children[Name(name)] {
            case .directory(let dir)?:
                current = dir
            case .leaf(let inode)?:
                let prefix = TreePath.join(Array(components.prefix(index + 1)))
                if case .symlink(let target) = inode.kind {
                    throw LookupProblem.throughSymlink(prefix: prefix, target: target)
                }
                throw LookupProblem.notADirectory(prefix: prefix)
            case nil:
                guard createMissing else { return nil }
                let dir = Directory(metadata: .impliedDirectory)
                current.children[Name(name)] = .directory(dir)
                current = dir
            }
        }
        return current
    }

    /// The node at `components` without following a final symlink; nil when missing.
    public func node(at components: [String]) throws -> Node? {
        guard let last = components.last else { return .directory(root) }
        return try directory(at: components.dropLast())?.children[Name(last)]
    }

    // MARK: Changes

    /// Removes the entry (and a directory's whole subtree). Missing entries are fine.
    public func remove(_ components: [String]) throws {
        guard let last = components.last else { return }
        try directory(at: components.dropLast())?.children[Name(last)] = nil
    }

    /// Sets a directory at `components`. An existing directory keeps its children and takes the new
    /// metadata; anything else there is replaced. Missing parents are created as implied directories.
    public func setDirectory(_ components: [String], metadata: FileMetadata) throws {
        guard let last = components.last else {
            root.metadata = metadata
            return
        }
        let parent = try directory(at: components.dropLast(), createMissing: true)!
        if case .directory(let existing)? = parent.children[Name(last)] {
            existing.metadata = metadata
        } else {
            parent.children[Name(last)] = .directory(Directory(metadata: metadata))
        }
    }

    /// Puts a non-directory at `components`, replacing whatever was there (a directory with its subtree).
    @discardableResult
    public func setLeaf(_ components: [String], kind: EntryKind, metadata: FileMetadata) throws -> Inode {
        precondition(!components.isEmpty, "the root is always a directory")
        switch kind {
        case .directory, .hardlink: preconditionFailure("use setDirectory / link")
        default: break
        }
        let parent = try directory(at: components.dropLast(), createMissing: true)!
        let inode = Inode(kind: kind, metadata: metadata)
        parent.children[Name(components.last!)] = .leaf(inode)
        return inode
    }

    /// Adds an accelerator's entry: a directory (its metadata replacing an existing one's) or a leaf.
    public func add(_ entry: FileEntry) throws {
        let components = entry.path.split(separator: "/").map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains(".") else {
            throw InputError("`\(entry.path)` is not a path inside the image")
        }
        let resolved = try resolvingParents(components, what: entry.path)
        do {
            switch entry.kind {
            case .directory: try setDirectory(resolved, metadata: entry.metadata)
            case .hardlink:
                throw UnsupportedError(
                    "\(entry.path): hard links cannot be added to an image afterwards", hint: "add a copy or a symlink")
            default: try setLeaf(resolved, kind: entry.kind, metadata: entry.metadata)
            }
        } catch LookupProblem.notADirectory(let prefix), LookupProblem.throughSymlink(let prefix, _) {
            throw InputError("cannot add /\(entry.path) to the image: /\(prefix) is not a directory there")
        }
    }

    /// `components` with every parent that is a symlink inside the tree replaced by what it points
    /// to, as the guest's kernel would: a merged-/usr image has `lib -> usr/lib`, and a file added at
    /// lib/modules must land in usr/lib/modules.
    public func resolvingParents(_ components: [String], what: String) throws -> [String] {
        guard let last = components.last else { return components }
        var resolved: [String] = []
        var remaining = Array(components.dropLast())[...]
        var hops = 0
        while let name = remaining.popFirst() {
            if name == "." || name.isEmpty { continue }
            if name == ".." { _ = resolved.popLast(); continue }
            guard case .leaf(let inode)? = try? node(at: resolved + [name]), case .symlink(let target) = inode.kind
            else {
                resolved.append(name)
                continue
            }
            hops += 1
            guard hops <= 40 else {
                throw InputError(
                    "\(what): too many levels of symbolic links in the image (at /\(TreePath.join(resolved + [name])))")
            }
            if target.hasPrefix("/") { resolved = [] }
            remaining = (target.split(separator: "/").map(String.init) + remaining)[...]
        }
        return resolved + [last]
    }

    /// Gives `inode` one more name. Used for hard links.
    public func link(_ components: [String], to inode: Inode) throws {
        precondition(!components.isEmpty)
        let parent = try directory(at: components.dropLast(), createMissing: true)!
        parent.children[Name(components.last!)] = .leaf(inode)
    }

    /// Drops every child of the directory at `components` (an opaque whiteout).
    public func removeChildren(of components: [String]) throws {
        try directory(at: components[...])?.children.removeAll()
    }

    // MARK: Listing

    /// Every entry, depth first, children in byte order of their UTF-8 names, the root first as "".
    /// The second and later names of a shared inode are listed as `.hardlink` to the first one, so the
    /// listing can be written to a tar file in order. Iterative: depth is bounded only by path length.
    public func entries() -> [FileEntry] {
        var out: [FileEntry] = []
        var firstName: [ObjectIdentifier: String] = [:]
        var stack: [(path: String, node: Node)] = [("", .directory(root))]
        while let (path, node) = stack.popLast() {
            switch node {
            case .directory(let dir):
                out.append(FileEntry(path: path, kind: .directory, metadata: dir.metadata))
                let names = dir.children.keys.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
                for name in names.reversed() {
                    stack.append((path.isEmpty ? name.string : path + "/" + name.string, dir.children[name]!))
                }
            case .leaf(let inode):
                let id = ObjectIdentifier(inode)
                if let first = firstName[id] {
                    out.append(FileEntry(path: path, kind: .hardlink(target: first), metadata: inode.metadata))
                } else {
                    firstName[id] = path
                    out.append(FileEntry(path: path, kind: inode.kind, metadata: inode.metadata))
                }
            }
        }
        return out
    }
}
