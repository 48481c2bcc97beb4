import Core
import Foundation

/// An ops config file (`ops build -c manifest.json`), read as ops reads it (`OpsConfigDecoder`: Go's
/// encoding/json rules): unknown keys and type errors are errors naming the key, where it is and the
/// closest valid key; what ops accepts silently (a key in the wrong case, a key given twice, text after
/// the object) is accepted with the same result and a note.
public struct OpsManifest: Sendable {
    public var program: String?
    public var args: [String] = []
    public var env: [(String, String)] = []
    public var dirs: [String] = []
    public var files: [String] = []
    public var mapDirs: [(String, String)] = []
    public var mounts: [(String, String)] = []
    public var klibs: [String] = []
    public var klibDir: String?
    public var passthrough: [(String, JSONValue)] = []
    public var rebootOnExit = false
    public var baseVolumeSize: Int64?
    public var nameServers: [String] = []
    public var targetRoot: String?
    public var boot: String?
    public var kernel: String?
    public var nanosVersion: String?
    public var debugFlags: [String] = []
    public var noTrace: [String] = []
    public var imageName: String?
    /// `DisableArgsCopy`: ops copies the host file or directory `Args[1]` names into the image unless set.
    public var disableArgsCopy = false
    public var run = RunConfig()
    /// The manifest's directory: relative host paths resolve against it.
    public var directory: String
    /// For messages.
    public var path: String
    /// What ops accepts without a word but a user should hear about, each naming its line.
    public var notes: [String] = []

    public struct RunConfig: Sendable, Equatable {
        public var cpus: Int?
        public var memory: String?
        public var gpus: Int?
        public var gpuType: String?
        public var ports: [String] = []
        /// `RunConfig.ImageName`: the config's `-i`, which also puts the image in ~/.ops/images.
        public var imageName: String?
    }

    /// TargetRoot as a path: a relative one is taken from the manifest's directory.
    public var targetRootPath: String? { targetRoot.map { $0.hasPrefix("/") ? $0 : directory + "/" + $0 } }

    /// `Env.LD_LIBRARY_PATH`: guest directories the loader searches, so the resolver searches them too.
    public var libraryPath: [String] {
        env.first { $0.0 == "LD_LIBRARY_PATH" }?.1.split(separator: ":").map(String.init) ?? []
    }

    /// The resolver for the program's libraries, rooted at TargetRoot.
    public func libraryResolver() throws -> LibraryResolver {
        try LibraryResolver(root: targetRootPath ?? "/", libraryPath: libraryPath)
    }

    /// argv[0]: `Program` as written, else the name of the host file given as PROGRAM.
    public func programName(host: String) -> String { program ?? URL(fileURLWithPath: host).lastPathComponent }

    /// Where ops puts the program: `/` + its name without a leading `./` (`AddUserProgram`), as names.
    /// Empty when the name names no file.
    public static func imagePath(ofProgram name: String) -> [String] {
        var parts = name.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if name.hasPrefix("./") || parts.first == "." { parts = Array(parts.drop { $0 == "." }) }
        return parts
    }

    /// Keys of ops' Config that ask for what gvlt does not build.
    static let refusedWhenSet = [
        "Uefi": "UEFI images", "UefiBoot": "UEFI images", "TFSv4": "TFS version 4 images",
        "NightlyBuild": "nightly Nanos releases (pass the release with --nanos-dir)"
    ]
    public init(directory: String = FileManager.default.currentDirectoryPath, path: String = "manifest") {
        self.directory = directory
        self.path = path
    }

    public init(path: String) throws {
        let data = try ConfigFile.read(
            path, what: "manifest \(path)", hint: "pass the ops config JSON with --manifest FILE (or -c FILE)")
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String) throws {
        self.init(
            directory: URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path, path: path)
        let decoded = try OpsConfigDecoder.decode(data, where: "manifest \(path)")
        let fields = decoded.fields
        notes = decoded.notes.map(\.text)
        for (key, what) in Self.refusedWhenSet.sorted(by: { $0.key < $1.key }) {
            switch fields[key] {
            case nil, .null?, .bool(false)?, .string("")?: continue
            default:
                throw UnsupportedError(
                    "manifest \(path): \(key) asks for \(what), which gvlt does not build",
                    hint: "remove \(key) from the manifest")
            }
        }
        func location(_ key: String) -> String {
            let position = decoded.positions[key].map { " (line \($0.line), column \($0.column))" } ?? ""
            return "manifest \(path)\(position): \(key)"
        }
        func string(_ key: String) throws -> String? {
            switch fields[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            case let other?: throw InputError("\(location(key)) must be a string, not a \(other.typeName)")
            }
        }
        func strings(_ key: String) throws -> [String] {
            switch fields[key] {
            case nil, .null?: return []
            case .array(let items)?:
                return try items.enumerated().map { index, item in
                    guard case .string(let value) = item else {
                        throw InputError("\(location(key))[\(index)] must be a string, not a \(item.typeName)")
                    }
                    return value
                }
            case let other?:
                throw InputError(
                    "\(location(key)) must be a list of strings, not a \(other.typeName)",
                    hint: other.typeName == "string" ? "write [\"…\"]" : nil)
            }
        }
        func map(_ key: String) throws -> [(String, String)] {
            switch fields[key] {
            case nil, .null?: return []
            case .object(let items)?:
                return try items.keys.sorted().map { name in
                    guard case .string(let value) = items[name]! else {
                        throw InputError(
                            "\(location(key)).\(name) must be a string, not a \(items[name]!.typeName)",
                            hint: "quote it: \"\(name)\": \"…\"")
                    }
                    return (name, value)
                }
            case let other?: throw InputError("\(location(key)) must be an object of strings, not a \(other.typeName)")
            }
        }
        program = try string("Program")
        args = try strings("Args")
        env = try map("Env")
        dirs = try strings("Dirs")
        files = try strings("Files")
        mapDirs = try map("MapDirs")
        mounts = try map("Mounts")
        klibs = try strings("Klibs")
        klibDir = try string("KlibDir")
        switch fields["RebootOnExit"] {
        case nil, .null?: break
        case .bool(let value)?: rebootOnExit = value
        case let other?: throw InputError("\(location("RebootOnExit")) must be true or false, not a \(other.typeName)")
        }
        switch fields["DisableArgsCopy"] {
        case nil, .null?: break
        case .bool(let value)?: disableArgsCopy = value
        case let other?:
            throw InputError("\(location("DisableArgsCopy")) must be true or false, not a \(other.typeName)")
        }
        if let size = try string("BaseVolumeSz") {
            guard let bytes = Self.parseSize(size) else {
                throw InputError(
                    "\(location("BaseVolumeSz")): `\(size)` is not a size",
                    hint: "write a number of bytes with an optional k, m or g suffix, e.g. \"512m\"")
            }
            guard bytes <= NanosImageWriter.maximumPartitionSize else {
                throw InputError(
                    "\(location("BaseVolumeSz")): `\(size)` is larger than the \(NanosImageWriter.maximumPartitionSize >> 30) GiB an MBR partition can hold",
                    hint: "set it to at most \"\(NanosImageWriter.maximumPartitionSize >> 30)g\"")
            }
            baseVolumeSize = bytes
        }
        nameServers = try strings("NameServers")
        targetRoot = try string("TargetRoot")
        boot = try string("Boot")
        kernel = try string("Kernel")
        nanosVersion = try string("NanosVersion")
        debugFlags = try strings("Debugflags")
        noTrace = try strings("NoTrace")
        switch fields["ManifestPassthrough"] {
        case nil, .null?: break
        case .object(let items)?:
            passthrough = try items.keys.sorted().map { name in
                try Self.checkPassthrough(items[name]!, at: "\(location("ManifestPassthrough")).\(name)")
                return (name, items[name]!)
            }
        case let other?:
            throw InputError("\(location("ManifestPassthrough")) must be an object, not a \(other.typeName)")
        }
        if case .object(let cloud)? = fields["CloudConfig"] {
            if case .string(let name)? = cloud["ImageName"] { imageName = name }
        } else if let other = fields["CloudConfig"], other != .null {
            throw InputError("\(location("CloudConfig")) must be an object, not a \(other.typeName)")
        }
        switch fields["RunConfig"] {
        case nil, .null?: break
        case .object(let items)?:
            func runInt(_ key: String) throws -> Int? {
                switch items[key] {
                case nil, .null?: return nil
                case .number(let value)? where value >= 0 && Int(exactly: value) != nil: return Int(exactly: value)!
                case .number(let value)?:
                    throw InputError("\(location("RunConfig")).\(key) must be a whole number, not \(value.jsonText)")
                case let other?:
                    throw InputError("\(location("RunConfig")).\(key) must be a whole number, not a \(other.typeName)")
                }
            }
            run.cpus = try runInt("CPUs")
            run.gpus = try runInt("GPUs")
            switch items["Memory"] {
            case nil, .null?: break
            case .string(let value)?:
                guard Self.parseSize(value) != nil else {
                    throw InputError(
                        "\(location("RunConfig")).Memory: `\(value)` is not a size",
                        hint: "write e.g. \"2g\" or \"512m\"")
                }
                run.memory = value
            case let other?:
                throw InputError(
                    "\(location("RunConfig")).Memory must be a string like \"2g\", not a \(other.typeName)")
            }
            if case .string(let value)? = items["GPUType"] { run.gpuType = value }
            if case .string(let value)? = items["ImageName"], !value.isEmpty { run.imageName = value }
            if case .array(let ports)? = items["Ports"] {
                run.ports = ports.compactMap { if case .string(let p) = $0 { return p } else { return nil } }
            }
        case let other?: throw InputError("\(location("RunConfig")) must be an object, not a \(other.typeName)")
        }
    }

    /// ops' TFS writer takes strings, lists of strings and objects of those; numbers and booleans fail
    /// its build, so they are refused here with the fix.
    static func checkPassthrough(_ value: JSONValue, at location: String) throws {
        switch value {
        case .string: return
        case .array(let items):
            for (index, item) in items.enumerated() { try checkPassthrough(item, at: "\(location)[\(index)]") }
        case .object(let items):
            for (key, item) in items { try checkPassthrough(item, at: "\(location).\(key)") }
        case .bool(let flag):
            throw InputError(
                "\(location) is the boolean \(flag); Nanos manifest values are strings",
                hint: flag
                    ? "write \"t\", Nanos' own spelling of true"
                    : "leave the key out: Nanos reads an absent key as false")
        case .number(let number):
            throw InputError(
                "\(location) is the number \(number); Nanos manifest values are strings",
                hint: "quote it: \"\(number.jsonText)\"")
        case .null:
            throw InputError("\(location) is null; Nanos cannot store an absent value", hint: "remove the key")
        }
    }

    /// `512`, `64k`, `512m`, `2g` (also `2G`, `2gb`): bytes, in ops' dialect of the shared parser.
    public static func parseSize(_ text: String) -> Int64? {
        ByteSize.parse(text, ByteSize.ops).flatMap { Int64(exactly: $0) }
    }
}
