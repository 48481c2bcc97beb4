import Core
import Foundation
@testable import Nanos
import XCTest

/// The reader against images made by the reference tools (Nanos' own mkfs and ops' writer), decoded
/// to exactly the text Nanos' `dump` printed for them.
final class TFSGoldenTests: XCTestCase {
    static let golden =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/Tests/Fixtures/nanos-golden"

    static func gunzip(_ path: String) throws -> String {
        let out =
            NSTemporaryDirectory() + "gvlt-golden-\(getpid())-"
            + URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        if !FileManager.default.fileExists(atPath: out) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "gzip -dc '\(path)' > '\(out).tmp' && mv '\(out).tmp' '\(out)'"]
            try process.run()
            process.waitUntilExit()
        }
        return out
    }

    func expected(_ name: String) throws -> String {
        try String(contentsOfFile: Self.golden + "/" + name, encoding: .utf8)
    }

    func testMkfsVolumeDecodesToItsDump() throws {
        let path = try Self.gunzip(Self.golden + "/volume-basic/basic.tfs.gz")
        let volume = try TFSReader.read(file: try SharedFile.openReadOnly(path), what: path)
        XCTAssertEqual(TFSDump.dump(volume), try expected("volume-basic/basic.dump.txt"))
        XCTAssertEqual(volume.label, "gvltgold")
        XCTAssertEqual(volume.logExtensions.map(\.start), [0, 1])
    }

    func testOpsImageBootAndRootFilesystemsDecodeToTheirDumps() throws {
        let path = try Self.gunzip(Self.golden + "/ops-layout/ops-layout.img.gz")
        let image = try NanosImageReader.open(path)
        XCTAssertEqual(TFSDump.dump(image.boot), try expected("ops-layout/bootfs.dump.txt"))
        // dump prints the "detected filesystem" line last when its output is not a terminal.
        XCTAssertEqual(
            TFSDump.dump(image.root) + "detected filesystem at 0x\(String(image.root.offset, radix: 16))\n",
            try expected("ops-layout/ops-layout.dump.txt"))
    }
}
