import Foundation
import XCTest

@testable import Nanos

final class KlibDiagnosisTests: XCTestCase {
    /// Nanos' own line, split across console chunks as the serial port delivers it.
    func testTheKlibFailureLineIsFoundAcrossChunks() {
        let watch = NanosRun.KlibWatch()
        for chunk in [
            "en1: assigned 10.0.2.15\nNo NVIDIA devices probed.\nklib autom", "atic load failed (4)\r\n", "halt\n"
        ] {
            watch.feed(Data(chunk.utf8))
        }
        XCTAssertEqual(watch.failure, "klib automatic load failed (4)")
        let quiet = NanosRun.KlibWatch()
        quiet.feed(Data("booting\nran\n".utf8))
        XCTAssertNil(quiet.failure)
    }
}
