import Foundation
import LinuxVM
import XCTest

/// The program's part of a guest console: between the init's `starting` and `exit-` lines, without
/// the init's and the kernel's lines, whatever the chunking.
final class ProgramOutputTests: XCTestCase {
    let console = """
        SeaBIOS (version 1.16.2-debian-1.16.2-1)\r
        Booting from Hard Disk...\r
        \u{1B}[2J\u{1B}[01;01HSYSLINUX 6.04 EDD 20191223\r
        [    0.812345] piix4_smbus 0000:00:01.3: SMBus Host Controller not enabled!\r
        gvlt-init: root file system on /dev/sda2\r
        gvlt-init: starting /hello.sh\r
        Hello, world!\r
        [   12.345678] random: crng init done\r
        [not a kernel line]\r
        gvlt-init: forwarding signal 15 to the program\r
        \r
        last words without a newlinegvlt-init: exit-status=0\r
        [   13.000000] reboot: Power down\r

        """

    func filtered(chunk: Int) -> String {
        var out = Data()
        let filter = ProgramOutput { out.append($0) }
        let bytes = Data(console.utf8)
        var offset = 0
        while offset < bytes.count {
            filter.consume(bytes[offset..<min(bytes.count, offset + chunk)])
            offset += chunk
        }
        filter.finish()
        return String(decoding: out, as: UTF8.self)
    }

    func testOnlyTheProgramsLinesAreKeptWhateverTheChunks() {
        let expected = "Hello, world!\n[not a kernel line]\n\nlast words without a newline"
        for chunk in [1, 2, 3, 7, 64, 4096] {
            XCTAssertEqual(filtered(chunk: chunk), expected, "chunks of \(chunk)")
        }
    }

    func testAConsoleWithoutTheStartLineGivesNothing() {
        var out = Data()
        let filter = ProgramOutput { out.append($0) }
        filter.consume(Data("gvlt-init: error: no command to run\ngvlt-init: exit-status=255 init-error\n".utf8))
        filter.finish()
        XCTAssertTrue(out.isEmpty)
    }

    func testKernelTimestampsAreRecognised() {
        XCTAssertTrue(ProgramOutput.isKernelLine(Data("[    0.000000] Linux version".utf8)))
        XCTAssertTrue(ProgramOutput.isKernelLine(Data("[12345.123456] x".utf8)))
        XCTAssertFalse(ProgramOutput.isKernelLine(Data("[1] x".utf8)))
        XCTAssertFalse(ProgramOutput.isKernelLine(Data("[ok] 1.5".utf8)))
        XCTAssertFalse(ProgramOutput.isKernelLine(Data("12.5]".utf8)))
    }
}
