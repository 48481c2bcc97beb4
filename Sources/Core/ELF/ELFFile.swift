import CElf
import Foundation

/// A read-only view of an ELF file through libelf: its sections by name. Used for kernel modules
/// (`.modinfo`: dependencies, vermagic) and, later, program dependencies.
public final class ELFFile {
    /// The four bytes every ELF file starts with.
    public static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]

    /// Whether the file at `path` starts with `magic` (false when it cannot be read).
    public static func hasMagic(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)).map(Array.init) == magic
    }

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

    /// The first section called `name`.
    private func findSection(named name: String) throws -> (OpaquePointer, GElf_Shdr)? {
        var stringsIndex = 0
        guard elf_getshdrstrndx(elf, &stringsIndex) == 0 else {
            throw Problem(message: "\(path): no section name table")
        }
        var scn = elf_nextscn(elf, nil)
        while let current = scn {
            var header = GElf_Shdr()
            if gelf_getshdr(current, &header) != nil,
                // checked: sh_name is a UInt32
                let namePointer = elf_strptr(elf, stringsIndex, Int(header.sh_name)),
                String(cString: namePointer) == name
            {
                return (current, header)
            }
            scn = elf_nextscn(elf, current)
        }
        return nil
    }

    /// Whether the file has a section called `name`, without reading it.
    public func hasSection(named name: String) throws -> Bool { try findSection(named: name) != nil }

    /// The bytes of the first section called `name`, or nil when there is none.
    public func section(named name: String) throws -> [UInt8]? {
        guard let (section, header) = try findSection(named: name) else { return nil }
        guard header.sh_type != UInt32(SHT_NOBITS) else { return [] }
        var bytes: [UInt8] = []
        var data = elf_getdata(section, nil)
        while let chunk = data {
            if let buffer = chunk.pointee.d_buf {
                // checked: libelf hands out only section data that lies inside the file
                bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: Int(chunk.pointee.d_size)))
            }
            data = elf_getdata(section, chunk)
        }
        return bytes
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
            return (
                String(decoding: record[record.startIndex..<eq], as: UTF8.self),
                String(decoding: record[record.index(after: eq)...], as: UTF8.self)
            )
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
                if word == "pre:" {
                    inPre = true
                } else if word == "post:" {
                    inPre = false
                } else if inPre {
                    names.append(String(word))
                }
            }
            return names
        }
    }

    /// The kernel release and flags the module was built for, e.g. `6.1.0-56-amd64 SMP preempt mod_unload modversions `.
    public var vermagic: String? { values("vermagic").first }

    /// The module's own name (`name=`), which may differ from the file name by `-`/`_`.
    public var name: String? { values("name").first }
}

// MARK: - Program headers and the dynamic section (what a loader reads)

extension ELFFile {
    public struct Identity: Equatable, Sendable {
        /// ELFCLASS32 (1) or ELFCLASS64 (2).
        public var elfClass: UInt8
        /// ELFOSABI_* (0 System V, 3 GNU/Linux, …).
        public var osABI: UInt8
        /// ET_EXEC (2), ET_DYN (3), …
        public var type: UInt16
        /// EM_X86_64 (62), EM_AARCH64 (183), …
        public var machine: UInt16
    }

    public var identity: Identity {
        get throws {
            var header = GElf_Ehdr()
            guard gelf_getehdr(elf, &header) != nil else {
                throw Problem(message: "\(path): unreadable ELF header: \(String(cString: elf_errmsg(-1)))")
            }
            return Identity(
                elfClass: UInt8(gelf_getclass(elf)), osABI: header.e_ident.7, type: header.e_type,
                machine: header.e_machine)
        }
    }

    private func programHeaders() throws -> [GElf_Phdr] {
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else {
            throw Problem(message: "\(path): unreadable program headers: \(String(cString: elf_errmsg(-1)))")
        }
        // With PN_XNUM the count lives in section 0's sh_info, and libelf cuts a count that runs past
        // the file down to what fits: a header table that lies about its size is refused instead.
        var header = GElf_Ehdr()
        if gelf_getehdr(elf, &header) != nil, header.e_phnum == UInt16(PN_XNUM) {
            var section = GElf_Shdr()
            guard header.e_shoff != 0, let zero = elf_getscn(elf, 0), gelf_getshdr(zero, &section) != nil,
                section.sh_info != 0
            else {
                throw Problem(
                    message: "\(path): e_phnum is PN_XNUM (0xFFFF) but there is no section 0 to hold the real count")
            }
            guard UInt64(section.sh_info) == UInt64(count) else {
                throw Problem(
                    message:
                        "\(path): section 0 claims \(section.sh_info) program headers (PN_XNUM), more than the file holds"
                )
            }
        }
        return try (0..<count).map { index in
            var header = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &header) != nil else {
                throw Problem(message: "\(path): program header \(index) is unreadable (a truncated file?)")
            }
            return header
        }
    }

    /// The bytes at a file range, checked against the file's size (a truncated file is refused, not
    /// read as zeros).
    private func bytes(offset: UInt64, size: UInt64) throws -> [UInt8] {
        var raw = 0
        guard let image = elf_rawfile(elf, &raw), offset <= UInt64(raw), size <= UInt64(raw) - offset else {
            throw Problem(
                message: "\(path): a segment points past the end of the file (\(offset)+\(size)); the file is truncated"
            )
        }
        // checked: offset and size lie within the file (guard above)
        return Array(UnsafeRawBufferPointer(start: image + Int(offset), count: Int(size)))
    }

    /// The program interpreter (PT_INTERP), e.g. `/lib64/ld-linux-x86-64.so.2`; nil for static programs.
    public var interpreter: String? {
        get throws {
            guard let header = try programHeaders().first(where: { $0.p_type == UInt32(PT_INTERP) }) else { return nil }
            let text = try bytes(offset: header.p_offset, size: header.p_filesz)
            return String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public struct DynamicInfo: Equatable, Sendable {
        public var needed: [String] = []
        public var rpath: [String] = []
        public var runpath: [String] = []
        public var soname: String?
        /// DT_FLAGS_1 has DF_1_PIE: an executable even though its type is ET_DYN.
        public var isPIE = false

        public init() {}
    }

    /// DT_NEEDED, DT_RPATH, DT_RUNPATH and DT_SONAME, read from the PT_DYNAMIC segment and the string
    /// table it points to (mapped through the PT_LOAD segments, as the loader does, so stripped
    /// section headers do not matter). Nil when the file has no dynamic segment.
    public var dynamic: DynamicInfo? {
        get throws {
            let headers = try programHeaders()
            guard let segment = headers.first(where: { $0.p_type == UInt32(PT_DYNAMIC) }) else { return nil }
            let raw = try bytes(offset: segment.p_offset, size: segment.p_filesz)
            let is64 = gelf_getclass(elf) == ELFCLASS64
            let entrySize = is64 ? 16 : 8
            func word(_ at: Int) -> UInt64 {
                raw[at..<at + entrySize / 2].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            var entries: [(tag: Int64, value: UInt64)] = []
            var at = 0
            while at + entrySize <= raw.count {
                let tag = Int64(bitPattern: word(at))
                if tag == Int64(DT_NULL) { break }
                entries.append((tag, word(at + entrySize / 2)))
                at += entrySize
            }
            guard let stringTable = entries.first(where: { $0.tag == Int64(DT_STRTAB) })?.value else {
                throw Problem(message: "\(path): its dynamic section has no string table")
            }
            let loads = headers.filter { $0.p_type == UInt32(PT_LOAD) }
            // Every address and size here is the file's word: compare by differences, never by sums
            // that a hostile header can make wrap.
            guard
                let load = loads.first(where: { stringTable >= $0.p_vaddr && stringTable - $0.p_vaddr < $0.p_filesz }),
                case (let tableOffset, false) = load.p_offset.addingReportingOverflow(stringTable - load.p_vaddr)
            else {
                throw Problem(message: "\(path): its dynamic string table is outside every loaded segment")
            }
            let tableSize =
                entries.first(where: { $0.tag == Int64(DT_STRSZ) })?.value
                ?? (load.p_filesz - (stringTable - load.p_vaddr))
            let table = try bytes(offset: tableOffset, size: tableSize)
            func string(_ offset: UInt64) throws -> String {
                guard offset < UInt64(table.count) else {
                    throw Problem(message: "\(path): a dynamic entry points outside the string table")
                }
                // checked: offset < table.count (guard above)
                return String(decoding: table[Int(offset)...].prefix { $0 != 0 }, as: UTF8.self)
            }
            var info = DynamicInfo()
            for entry in entries {
                switch entry.tag {
                case Int64(DT_NEEDED): info.needed.append(try string(entry.value))
                case Int64(DT_RPATH): info.rpath += try string(entry.value).split(separator: ":").map(String.init)
                case Int64(DT_RUNPATH): info.runpath += try string(entry.value).split(separator: ":").map(String.init)
                case Int64(DT_SONAME): info.soname = try string(entry.value)
                case Int64(DT_FLAGS_1): info.isPIE = entry.value & UInt64(DF_1_PIE) != 0
                default: break
                }
            }
            return info
        }
    }
}
