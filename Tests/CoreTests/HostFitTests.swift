import Core
import XCTest

final class HostFitTests: XCTestCase {
    var host: HostFit {
        var host = HostFit()
        host.cpus = 2
        host.memoryBytes = 8 << 30
        return host
    }

    func testWithinTheHostNothingChanges() throws {
        let chosen = try host.check(cpus: 2, from: "--smp", memory: "8192M", from: "--mem", fit: false) { _ in
            XCTFail("no warning expected")
        }
        XCTAssertEqual(chosen.cpus, 2)
        XCTAssertEqual(chosen.memory, "8192M")
    }

    func testPastTheHostIsAnErrorNamingTheFieldOrCappedWithFit() throws {
        XCTAssertThrowsError(
            try host.check(cpus: 3, from: "t.yaml: resources.cpus", memory: "1G", from: "m", fit: false) { _ in }
        ) {
            XCTAssertTrue("\($0)".contains("t.yaml: resources.cpus is 3, and this host has 2 CPUs"), "\($0)")
        }
        XCTAssertThrowsError(try host.check(cpus: 1, from: "c", memory: "9216M", from: "--mem", fit: false) { _ in }) {
            XCTAssertTrue("\($0)".contains("--mem is 9216M (9216 MiB), and this host has 8192 MiB of memory"), "\($0)")
        }
        var warnings: [String] = []
        let capped = try host.check(cpus: 1000, from: "c", memory: "4194304M", from: "m", fit: true) {
            warnings.append($0)
        }
        XCTAssertEqual(capped.cpus, 2)
        XCTAssertEqual(capped.memory, "7168M", "a quarter, at most 1 GiB, stays with the host")
        XCTAssertEqual(warnings.count, 2)
    }
}
