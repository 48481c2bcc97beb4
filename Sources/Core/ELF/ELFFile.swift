import CElf
import Foundation

/// A read-only view of an ELF file through libelf: its sections by name. Used for kernel modules
/// (`.modinfo`: dependencies, vermagic) and, later, program dependencies.
public final class ELFFile {
    public let path: String
    private let fd: Int32
    private let elf: OpaquePointer

    public struct Problem: UserFacingError {
        public let message: String
        public var hint: String? { nil }
    }

    public init(path: String) throws {
        self.path = path
        _ = Self.initialized
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("cannot open", path: path, errno: errno) }
        guard let elf = elf_begin(fd, ELF_C_READ, nil) else {
            close(fd)
            throw Problem(message: "\(path): libelf cannot read it: \(String(cString: elf_errmsg(-1)))")
        }
        guard elf_kind(elf) == ELF_K_ELF else {
            elf_end(elf)
            close(fd)
            throw Problem(message: "\(path) is not an ELF file")
        }
        self.elf = elf
    }

    deinit {
        elf_end(elf)
        close(fd)
    }

    /// libelf requires elf_version before anything else, once per process.
    private static let initialized: Void = { _ = elf_version(UInt32(EV_CURRENT)) }()

    /// The bytes of the first section called `name`, or nil when there is none.
    public func section(named name: String) throws -> [UInt8]? {
        var stringsIndex = 0
        guard elf_getshdrstrndx(elf, &stringsIndex) == 0 else {
            throw Problem(message: "\(path): no section name table")
        }
        var scn = elf_nextscn(elf, nil)
        while let current = scn {
            var header = GElf_Shdr()
            if gelf_getshdr(current, &header) != nil,
               let namePointer = elf_strptr(elf, stringsIndex, Int(header.sh_name)),
               String(cString: namePointer) == name {
                guard header.sh_type != UInt32(SHT_NOBITS) else { return [] }
                var bytes: [UInt8] = []
                var data = elf_getdata(current, nil)
                while let chunk = data {
                    if let buffer = chunk.pointee.d_buf {
                        bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: Int(chunk.pointee.d_size)))
                    }
                    data = elf_getdata(current, chunk)
                }
                return bytes
            }
            scn = elf_nextscn(elf, current)
        }
        return nil
    }
}

/// The `.modinfo` section of a Linux kernel module: NUL-separated `key=value` strings.
public struct ModuleInfo: Equatable, Sendable {
    public var fields: [(key: String, value: String)]

    public static func == (a: ModuleInfo, b: ModuleInfo) -> Bool {
        a.fields.map { "\($0.key)=\($0.value)" } == b.fields.map { "\($0.key)=\($0.value)" }
    }

    public init(bytes: [UInt8]) {
        fields = bytes.split(separator: 0).compactMap { record in
            guard let eq = record.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            return (String(decoding: record[record.startIndex..<eq], as: UTF8.self),
                    String(decoding: record[record.index(after: eq)...], as: UTF8.self))
        }
    }

    public init(module path: String) throws {
        guard let bytes = try ELFFile(path: path).section(named: ".modinfo") else {
            throw ELFFile.Problem(message: "\(path) has no .modinfo section, so it is not a kernel module")
        }
        self.init(bytes: bytes)
    }

    public func values(_ key: String) -> [String] { fields.filter { $0.key == key }.map(\.value) }

    /// Modules this one needs loaded first (`depends=a,b`).
    public var dependencies: [String] {
        values("depends").flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
    }

    /// Modules to load before this one that it only requests at run time (`softdep=pre: a b post: c`),
    /// e.g. ext4's `crc32c`. Names may be aliases rather than module names.
    public var softPreDependencies: [String] {
        values("softdep").flatMap { value -> [String] in
            var inPre = false
            var names: [String] = []
            for word in value.split(separator: " ") {
                if word == "pre:" { inPre = true } else if word == "post:" { inPre = false } else if inPre { names.append(String(word)) }
            }
            return names
        }
    }

    /// The kernel release and flags the module was built for, e.g. `6.1.0-56-amd64 SMP preempt mod_unload modversions `.
    public var vermagic: String? { values("vermagic").first }

    /// The module's own name (`name=`), which may differ from the file name by `-`/`_`.
    public var name: String? { values("name").first }
}
