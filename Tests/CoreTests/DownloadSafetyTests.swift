import Core
@testable import CoreNetwork
import XCTest

/// What a server or a downloaded file may not do to the host: drive the terminal through a message,
/// leak a signed URL into one, or make QEMU open host files.
final class DownloadSafetyTests: XCTestCase {
    func testServerTextCannotDriveTheTerminal() {
        XCTAssertEqual(ServerText.clean("tag\u{1B}[2Jx\u{9B}y\nz"), "tag?[2Jx?y?z")
        XCTAssertEqual(ServerText.clean(String(repeating: "a", count: 20), limit: 5), "aaaaa…")
        XCTAssertEqual(
            ServerText.url("https://user:pw@bucket.example/obj.img?X-Amz-Signature=secret#sha256=ab"),
            "https://bucket.example/obj.img?…")
        XCTAssertEqual(ServerText.url("http://h:8080/a/b.img"), "http://h:8080/a/b.img")
    }

    func testADownloadedQcow2MayNotNameHostFiles() throws {
        let directory = NSTemporaryDirectory() + "gvlt-qcow2-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func header(version: UInt8, backing: UInt8, incompatible: UInt8) -> Data {
            var bytes = [UInt8](repeating: 0, count: 104)
            bytes[0...3] = [0x51, 0x46, 0x49, 0xFB]
            bytes[7] = version
            bytes[15] = backing  // backing_file_offset, big-endian
            bytes[79] = incompatible  // incompatible_features, big-endian
            return Data(bytes)
        }
        let cases: [(String, Data, String?)] = [
            ("plain", header(version: 3, backing: 0, incompatible: 0), nil),
            ("backed", header(version: 2, backing: 0x68, incompatible: 0), "a backing file"),
            ("external", header(version: 3, backing: 0, incompatible: 0b100), "an external data file"),
            ("raw", Data(repeating: 0, count: 512), nil)
        ]
        for (name, data, refused) in cases {
            let path = directory + "/" + name
            try data.write(to: URL(fileURLWithPath: path))
            if let refused {
                XCTAssertThrowsError(try RemoteTaskFiles.refuseExternalReferences(path, what: name)) {
                    XCTAssertTrue("\($0)".contains(refused), "\($0)")
                }
            } else {
                XCTAssertNoThrow(try RemoteTaskFiles.refuseExternalReferences(path, what: name), name)
            }
        }
    }

    func testSha256FragmentsMayCarryTheirPrefix() throws {
        let hex = String(repeating: "ab", count: 32)
        XCTAssertEqual(try RemoteTaskFiles.checkedHex("sha256:" + hex.uppercased(), flag: "x"), hex)
        XCTAssertThrowsError(try RemoteTaskFiles.checkedHex("abc", flag: "--image-sha256"))
    }
}
