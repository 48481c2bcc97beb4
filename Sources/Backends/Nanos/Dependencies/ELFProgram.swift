import Core
import Foundation

/// The program of a Nanos image: an x86_64 Linux ELF executable, checked by reading its headers.
public enum ELFProgram {
    public static func check(_ path: String) throws -> ELFFile {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw InputError(
                "program \(path) does not exist", hint: "check Program in the manifest or the PROGRAM argument")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw InputError("program \(path) is not a regular file", hint: "point Program at the executable itself")
        }
        let head = (FileHandle(forReadingAtPath: path)?.readData(ofLength: 4)).map(Array.init) ?? []
        if head.starts(with: Array("#!".utf8)) {
            throw InputError(
                "program \(path) is a script, not an ELF executable; Nanos runs ELF programs only",
                hint:
                    "make the interpreter (e.g. python3) the Program and pass the script in Args, adding it with Files")
        }
        guard head == ELFFile.magic else {
            throw InputError(
                "program \(path) is not an ELF executable (it starts with \(head.hexString.isEmpty ? "nothing" : head.hexString))",
                hint: "point Program at an x86_64 Linux executable")
        }
        let elf: ELFFile
        let identity: ELFFile.Identity
        do {
            elf = try ELFFile(path: path)
            identity = try elf.identity
        } catch {
            throw InputError(
                "program \(path) is not a readable ELF file: \(error)",
                hint: "the file is truncated or corrupt; rebuild it")
        }
        guard identity.elfClass == 2, identity.machine == 62 else {
            let machine =
                [3: "i386", 40: "ARM", 183: "AArch64", 243: "RISC-V", 62: "x86_64"][Int(identity.machine)]
                ?? "machine \(identity.machine)"
            throw InputError(
                "program \(path) is a \(identity.elfClass == 1 ? "32-bit" : "64-bit") \(machine) ELF; Nanos images here run x86_64 programs",
                hint: "build the program for x86_64 Linux (64-bit)")
        }
        guard identity.osABI == 0 || identity.osABI == 3 else {
            throw InputError(
                "program \(path) is built for another OS (ELF OS/ABI \(identity.osABI)), not Linux",
                hint: "build the program for x86_64 Linux")
        }
        do {
            switch identity.type {
            case 2:  // ET_EXEC
                break
            case 3:  // ET_DYN: a PIE executable, or a shared library
                let dynamic = try elf.dynamic
                guard try elf.interpreter != nil || dynamic?.isPIE == true else {
                    throw InputError(
                        "program \(path) is a shared library, not an executable",
                        hint: "point Program at the executable that loads it")
                }
            default:
                throw InputError(
                    "program \(path) is not an executable (ELF type \(identity.type))",
                    hint: "point Program at a linked executable, not an object file or core dump")
            }
            // Read what the loader reads now, so a truncated file fails here with a clear message.
            _ = try elf.interpreter
            _ = try elf.dynamic
        } catch let error as InputError {
            throw error
        } catch {
            throw InputError(
                "program \(path) is damaged: \(error)", hint: "the file is truncated or corrupt; rebuild it")
        }
        return elf
    }
}
