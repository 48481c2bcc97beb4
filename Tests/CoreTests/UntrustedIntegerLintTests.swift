import Foundation
import XCTest

/// The readers of images and archives convert numbers from the input. A plain `Int(x)` or
/// `Int64(x)` traps when `x` does not fit, so in these files each one says why it cannot: a
/// `checked:` comment on its line or on one of the three lines above (a guard, a `min`, a type that
/// always fits). Conversions that cannot trap by construction (`exactly:`, `clamping:`,
/// `truncatingIfNeeded:`, `bitPattern:`), and those of literals and C constants, need no comment. A new unexplained conversion fails here.
final class UntrustedIntegerLintTests: XCTestCase {
    static let readers = [
        "Sources/Backends/Nanos/TFS/TFSReader.swift", "Sources/Backends/Nanos/TFS/TFSEncoding.swift",
        "Sources/Backends/Nanos/TFS/TFSFiles.swift", "Sources/Backends/Nanos/Image/NanosImageReader.swift",
        "Sources/Backends/Nanos/Image/NanosPartitionTable.swift", "Sources/Backends/Nanos/Image/NanosInspector.swift",
        "Sources/Backends/Nanos/Dependencies/LdSoCache.swift", "Sources/Core/ELF/ELFFile.swift",
        "Sources/Core/Archive/ArchiveReader.swift", "Sources/Core/Archive/ArchiveEntryCoding.swift",
        "Sources/Core/Archive/ByteSource.swift", "Sources/Core/Archive/TarHeaderAudit.swift", "Sources/Core/OCI",
        "Sources/Core/Sources",
        "Sources/Backends/LinuxVM/Inspect", "Sources/Backends/LinuxVM/Disk/MBR.swift",
        "Sources/Backends/LinuxVM/Disk/SquashfsBlockCache.swift"
    ]

    func testEveryIntegerConversionInTheReadersSaysWhyItCannotTrap() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let conversion = try NSRegularExpression(
            pattern:
                #"(?<![A-Za-z0-9_.])Int(64)?\((?!exactly:|clamping:|truncatingIfNeeded:|bitPattern:|[0-9]+\)|[A-Z][A-Z0-9_]*\))"#
        )
        var files: [String] = []
        for reader in Self.readers {
            let path = root + "/" + reader
            var isDirectory: ObjCBool = false
            XCTAssertTrue(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), reader)
            if isDirectory.boolValue {
                files += try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".swift") }
                    .sorted().map { reader + "/" + $0 }
            } else {
                files.append(reader)
            }
        }
        var unexplained: [String] = []
        for file in files {
            let lines = try String(contentsOfFile: root + "/" + file, encoding: .utf8).components(separatedBy: "\n")
            for (index, line) in lines.enumerated() {
                let code = line.components(separatedBy: "//").first ?? line
                guard conversion.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) != nil else {
                    continue
                }
                let window = lines[max(0, index - 3)...index]
                if !window.contains(where: { $0.contains("checked:") }) {
                    unexplained.append("\(file):\(index + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        XCTAssertEqual(
            unexplained, [], "conversions without a `checked:` reason:\n" + unexplained.joined(separator: "\n"))
    }
}
