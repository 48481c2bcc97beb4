import Core
import Foundation

/// The shared libraries a program needs, found the way glibc's loader would find them, by reading
/// ELF files only: the program is never run (ops runs it under ld.so to ask).
///
/// Paths exist twice: the guest path (where the loader inside the image looks, and where the file
/// goes) and the host path (where gvlt reads it). They differ by the root (`TargetRoot`) and by
/// `$ORIGIN`, which in the guest is the directory the program is placed in.
public struct LibraryResolver {
    /// One entry to put in the image.
    public struct Placement: Equatable, Sendable {
        public var guestPath: String
        /// The file to copy (already through every symlink); nil for a symlink entry.
        public var hostPath: String?
        public var symlinkTarget: String?
    }

    public struct Library: Equatable, Sendable {
        public var name: String
        public var guestPath: String
        public var hostPath: String
        public var neededBy: String
    }

    public struct Closure: Equatable, Sendable {
        public var interpreter: String?
        public var libraries: [Library]
        /// What goes into the image (interpreter and libraries, symlinked sonames kept), by guest path.
        public var placements: [Placement]
    }

    public struct MissingLibraries: UserFacingError {
        public var missing: [(name: String, neededBy: String, searched: [String])]
        public var message: String {
            "the program needs libraries that were not found:\n"
                + missing.map {
                    "    \($0.name) (needed by \($0.neededBy)); searched: \($0.searched.isEmpty ? "nothing" : $0.searched.joined(separator: ", "))"
                }.joined(separator: "\n")
        }
        public var hint: String? {
            "install them on this machine, add their directory to Env.LD_LIBRARY_PATH in the manifest, or add them with Files/Dirs"
        }
    }

    /// glibc's trusted directories for x86_64, in its search order (Debian's multiarch ones first).
    public static let defaultDirectories = [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"
    ]

    /// The host directory standing for the guest's `/` ("/" normally; the manifest's TargetRoot).
    public var root: String
    /// Guest directories, from the manifest's `Env.LD_LIBRARY_PATH`.
    public var libraryPath: [String]
    public var cache: LdSoCache

    public init(root: String = "/", libraryPath: [String] = []) throws {
        self.root = root == "/" ? "" : (root.hasSuffix("/") ? String(root.dropLast()) : root)
        self.libraryPath = libraryPath
        self.cache = try LdSoCache(path: self.root + "/etc/ld.so.cache")
    }

    func host(_ guest: String) -> String { root + guest }

    /// A directory to search, in both views, with where it came from for messages.
    struct Directory {
        var guest: String
        var host: String
        var origin: String
    }

    /// An object being resolved: what it needs, and the RPATHs of the chain that loaded it.
    struct Object {
        var guestPath: String
        var hostPath: String
        var dynamic: ELFFile.DynamicInfo
        var inheritedRPaths: [Directory]
    }

    /// The closure of `program` (a host path), which will sit at `guestPath` in the image.
    public func closure(program: String, guestPath: String) throws -> Closure {
        let elf = try ELFProgram.check(program)
        var placements: [String: Placement] = [:]
        var libraries: [Library] = []
        var interpreter: String?
        if let interp = try elf.interpreter {
            interpreter = interp
            let hostInterp = host(interp)
            guard let real = realPath(hostInterp) else {
                throw InputError(
                    "the program's interpreter \(interp) (PT_INTERP) is not on this machine\(root.isEmpty ? "" : " under \(root)")",
                    hint: "install the C library it was built for (libc6), or build the program statically")
            }
            // The loader is looked up by exactly this path, so it is a file there, not a link.
            placements[interp] = Placement(guestPath: interp, hostPath: real, symlinkTarget: nil)
        }
        guard let dynamic = try elf.dynamic else {
            return Closure(
                interpreter: interpreter, libraries: [],
                placements: placements.values.sorted { $0.guestPath < $1.guestPath })
        }
        var queue = [Object(guestPath: guestPath, hostPath: program, dynamic: dynamic, inheritedRPaths: [])]
        var loaded: Set<String> = []
        if let interp = interpreter { loaded.insert(URL(fileURLWithPath: interp).lastPathComponent) }
        var missing: [(String, String, [String])] = []
        var missingNames: Set<String> = []
        while !queue.isEmpty {
            let object = queue.removeFirst()
            let ownRPaths = expand(object.dynamic.rpath, object: object, kind: "RPATH")
            for name in object.dynamic.needed where !loaded.contains(name) && !missingNames.contains(name) {
                var searched: [String] = []
                var found: (guest: String, host: String)?
                if name.contains("/") {
                    let guest =
                        name.hasPrefix("/")
                        ? name : URL(fileURLWithPath: object.guestPath).deletingLastPathComponent().path + "/" + name
                    searched.append(guest)
                    if isCompatibleLibrary(host(guest)) { found = (guest, host(guest)) }
                } else {
                    for directory in searchOrder(object: object, ownRPaths: ownRPaths) {
                        let candidate = (guest: directory.guest + "/" + name, host: directory.host + "/" + name)
                        searched.append("\(directory.guest) (\(directory.origin))")
                        if isCompatibleLibrary(candidate.host) { found = candidate; break }
                    }
                }
                guard let (guest, hostPath) = found else {
                    missing.append((name, object.guestPath, searched))
                    missingNames.insert(name)
                    continue
                }
                loaded.insert(name)
                libraries.append(
                    Library(name: name, guestPath: normalize(guest), hostPath: hostPath, neededBy: object.guestPath))
                try place(guest: normalize(guest), host: hostPath, into: &placements)
                let library = try ELFFile(path: hostPath)
                let libraryDynamic = try library.dynamic ?? ELFFile.DynamicInfo()
                // A DT_RPATH applies to everything loaded below its object, unless that has a DT_RUNPATH.
                queue.append(
                    Object(
                        guestPath: normalize(guest), hostPath: hostPath, dynamic: libraryDynamic,
                        inheritedRPaths: object.dynamic.runpath.isEmpty ? object.inheritedRPaths + ownRPaths : []))
            }
        }
        guard missing.isEmpty else { throw MissingLibraries(missing: missing) }
        return Closure(
            interpreter: interpreter, libraries: libraries,
            placements: placements.values.sorted { $0.guestPath < $1.guestPath })
    }

    /// glibc's order: DT_RPATH (own, then the loaders'; only without DT_RUNPATH), LD_LIBRARY_PATH,
    /// DT_RUNPATH, ld.so.cache, the trusted directories.
    func searchOrder(object: Object, ownRPaths: [Directory]) -> [Directory] {
        var order: [Directory] = []
        if object.dynamic.runpath.isEmpty { order += ownRPaths + object.inheritedRPaths }
        order += libraryPath.map { Directory(guest: $0, host: host($0), origin: "LD_LIBRARY_PATH") }
        order += expand(object.dynamic.runpath, object: object, kind: "RUNPATH")
        return order + cacheDirectories(for: object)
            + Self.defaultDirectories.map { Directory(guest: $0, host: host($0), origin: "default") }
    }

    /// ld.so.cache answers by name, so it is tried as a one-entry directory per needed name; this
    /// gives every directory the cache points into, which is equivalent for lookups by name.
    func cacheDirectories(for object: Object) -> [Directory] {
        var seen: Set<String> = []
        var directories: [Directory] = []
        for name in object.dynamic.needed {
            guard let path = cache.entries[name] else { continue }
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if seen.insert(directory).inserted {
                directories.append(Directory(guest: directory, host: host(directory), origin: "ld.so.cache"))
            }
        }
        return directories
    }

    /// `$ORIGIN`, `$LIB` and `$PLATFORM` (also `${…}`) expanded in both views.
    func expand(_ entries: [String], object: Object, kind: String) -> [Directory] {
        let guestOrigin = URL(fileURLWithPath: object.guestPath).deletingLastPathComponent().path
        let hostOrigin = URL(fileURLWithPath: realPath(object.hostPath) ?? object.hostPath).deletingLastPathComponent()
            .path
        func substitute(_ text: String, origin: String) -> String {
            var result = text
            for (token, value) in [("ORIGIN", origin), ("LIB", "lib/x86_64-linux-gnu"), ("PLATFORM", "x86_64")] {
                result = result.replacingOccurrences(of: "${\(token)}", with: value).replacingOccurrences(
                    of: "$\(token)", with: value)
            }
            return result
        }
        return entries.map { entry in
            let guest = substitute(entry, origin: guestOrigin)
            let host = entry.contains("ORIGIN") ? substitute(entry, origin: hostOrigin) : self.host(guest)
            return Directory(guest: normalize(guest), host: host, origin: kind)
        }
    }

    /// Puts a library in the image at `guest`: a symlink whose target is a file in the same directory
    /// stays a symlink (libfoo.so.1 → libfoo.so.1.2.3) next to its target; anything else is copied
    /// as the file it resolves to.
    func place(guest: String, host: String, into placements: inout [String: Placement]) throws {
        var guest = guest
        var host = host
        for _ in 0..<16 {
            if placements[guest] != nil { return }
            var st = stat()
            guard lstat(host, &st) == 0 else { throw SystemError("cannot read", path: host, errno: errno) }
            if st.st_mode & S_IFMT == S_IFLNK,
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: host),
                !target.contains("/"), !target.isEmpty, target != "." && target != ".."
            {
                placements[guest] = Placement(guestPath: guest, hostPath: nil, symlinkTarget: target)
                let directory = URL(fileURLWithPath: guest).deletingLastPathComponent().path
                guest = (directory == "/" ? "" : directory) + "/" + target
                host = URL(fileURLWithPath: host).deletingLastPathComponent().path + "/" + target
                continue
            }
            guard let real = realPath(host) else { throw SystemError("cannot resolve", path: host, errno: errno) }
            placements[guest] = Placement(guestPath: guest, hostPath: real, symlinkTarget: nil)
            return
        }
        throw InputError("\(host): too many levels of symbolic links")
    }

    func isCompatibleLibrary(_ path: String) -> Bool {
        guard let real = realPath(path), let elf = try? ELFFile(path: real), let identity = try? elf.identity else {
            return false
        }
        // The loader skips libraries of another class or machine (e.g. i386 ones) and keeps looking.
        return identity.elfClass == 2 && identity.machine == 62
    }

    func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
