import Core
import Foundation
import XCTest

/// ELF headers a hostile program can lie in: PN_XNUM (e_phnum = 0xFFFF) moves the real count to
/// section 0's sh_info, which must be read, and a count there that runs past the file is an error.
final class ELFFileTests: XCTestCase {
    func patched(_ edit: (inout [UInt8], _ phnum: UInt16, _ shoff: Int) -> Void) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "/bin/ls")))
        let phnum = UInt16(bytes[56]) | UInt16(bytes[57]) << 8
        let shoff = (0..<8).reduce(0) { $0 | Int(bytes[40 + $1]) << (8 * $1) }
        edit(&bytes, phnum, shoff)
        let path = NSTemporaryDirectory() + "gvlt-elf-" + UUID().uuidString
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func put32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    func testExtendedProgramHeaderCountIsReadFromSectionZero() throws {
        let plain = try ELFFile(path: "/bin/ls").interpreter
        XCTAssertEqual(plain, "/lib64/ld-linux-x86-64.so.2")
        let extended = try patched { bytes, phnum, shoff in
            bytes[56] = 0xFF
            bytes[57] = 0xFF
            put32(&bytes, shoff + 44, UInt32(phnum))
        }
        XCTAssertEqual(try ELFFile(path: extended).interpreter, plain)
    }

    func testExtendedProgramHeaderCountPastTheFileIsRefused() throws {
        let lying = try patched { bytes, _, shoff in
            bytes[56] = 0xFF
            bytes[57] = 0xFF
            put32(&bytes, shoff + 44, 0x00FF_FFFF)
        }
        XCTAssertThrowsError(try ELFFile(path: lying).interpreter) { error in
            XCTAssertTrue("\(error)".contains(lying), "\(error)")
        }
        let noSections = try patched { bytes, _, _ in
            bytes[56] = 0xFF
            bytes[57] = 0xFF
            for i in 40..<48 { bytes[i] = 0 }
        }
        XCTAssertThrowsError(try ELFFile(path: noSections).interpreter) { error in
            XCTAssertTrue("\(error)".contains(noSections), "\(error)")
        }
    }

    /// Loaded segments whose address plus size wraps past 2^64: the string table lookup compares
    /// differences, so this is an answer (or an error naming the file), never an overflow trap.
    func testSegmentSizesThatWrapAreNotAdded() throws {
        let wrapped = try patched { bytes, phnum, _ in
            let phoff = (0..<8).reduce(0) { $0 | Int(bytes[32 + $1]) << (8 * $1) }
            let size = Int(bytes[54]) | Int(bytes[55]) << 8
            for index in 0..<Int(phnum) where bytes[phoff + index * size] == 1 {  // PT_LOAD
                let header = phoff + index * size
                for i in 0..<8 { bytes[header + 16 + i] = i == 0 ? 1 : 0 }  // p_vaddr = 1
                for i in 0..<8 { bytes[header + 32 + i] = 0xFF }  // p_filesz = 2^64 - 1
            }
        }
        do {
            _ = try ELFFile(path: wrapped).dynamic
        } catch {
            XCTAssertTrue("\(error)".contains(wrapped), "\(error)")
        }
    }
}
