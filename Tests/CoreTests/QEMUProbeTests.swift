@testable import Core
import Foundation
import XCTest

final class QEMUProbeTests: XCTestCase {
    /// The probe guest itself must be right, or every KVM verdict would be wrong: under software
    /// emulation it must boot and exit through isa-debug-exit with status 3.
    func testProbeGuestExitsThroughDebugExitUnderTCG() throws {
        let qemu = try XCTUnwrap(QEMUProbe.qemu.locate(), "qemu-system-x86_64 is not installed: run scripts/setup")
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let run = try QEMUProbe.run(accel: "tcg", qemuPath: qemu, scratch: scratch.path)
        XCTAssertTrue(run.exited, "the probe guest did not stop")
        XCTAssertEqual(run.status, 3)
        XCTAssertTrue(run.succeeded)
    }
}
