import Core
import XCTest

/// The shared size parser in each dialect, as the tool it stands in for reads sizes.
final class ByteSizeTests: XCTestCase {
    func parse(_ text: String, _ dialect: ByteSize.Dialect) -> UInt64? { ByteSize.parse(text, dialect) }

    func testOpsManifestSizes() {
        XCTAssertEqual(parse("512", ByteSize.ops), 512)
        XCTAssertEqual(parse("0", ByteSize.ops), 0)
        XCTAssertEqual(parse("64k", ByteSize.ops), 64 << 10)
        XCTAssertEqual(parse("512m", ByteSize.ops), 512 << 20)
        XCTAssertEqual(parse("2G", ByteSize.ops), 2 << 30)
        XCTAssertEqual(parse("2gb", ByteSize.ops), 2 << 30)
        XCTAssertEqual(parse(" 1t ", ByteSize.ops), 1 << 40)
        // As ops: a lone b is no unit, and there are no fractions, IEC names or inner blanks.
        for bad in ["512b", "1.5g", "2gib", "2 g", "g", "", "-1", "lots", "18446744073709551616", "99999999999999999t"]
        {
            XCTAssertNil(parse(bad, ByteSize.ops), bad)
        }
    }

    func testDiskSizes() {
        XCTAssertEqual(parse("10G", ByteSize.disk), 10 << 30)
        XCTAssertEqual(parse("1024M", ByteSize.disk), 1 << 30)
        XCTAssertEqual(parse("512MiB", ByteSize.disk), 512 << 20)
        XCTAssertEqual(parse("1T", ByteSize.disk), 1 << 40)
        XCTAssertEqual(parse("4096", ByteSize.disk), 4096)
        XCTAssertEqual(parse("4096b", ByteSize.disk), 4096)
        for bad in ["0", "0G", "ten", "1.5G", "10 G", "10X", "17179869184G"] {
            XCTAssertNil(parse(bad, ByteSize.disk), bad)
        }
    }

    func testMemorySizes() {
        XCTAssertEqual(parse("512", ByteSize.memory), 512 << 20)
        XCTAssertEqual(parse("512M", ByteSize.memory), 512 << 20)
        XCTAssertEqual(parse("4G", ByteSize.memory), 4 << 30)
        XCTAssertEqual(parse("2GiB", ByteSize.memory), 2 << 30)
        // A size so large it would overflow is refused, not a crash.
        for bad in ["0", "512K", "1T", "x", "9999999999999999G", ""] { XCTAssertNil(parse(bad, ByteSize.memory), bad) }
    }

    func testGevulotTaskSizes() {
        XCTAssertEqual(parse("512", ByteSize.gevulot), 512_000_000)
        XCTAssertEqual(parse("512MiB", ByteSize.gevulot), 512 << 20)
        XCTAssertEqual(parse("512 MiB", ByteSize.gevulot), 512 << 20)
        XCTAssertEqual(parse("4GB", ByteSize.gevulot), 4_000_000_000)
        XCTAssertEqual(parse("1.5GB", ByteSize.gevulot), 1_500_000_000)
        XCTAssertEqual(parse("0.5k", ByteSize.gevulot), 500)
        XCTAssertEqual(parse("1Pi", ByteSize.gevulot), 1 << 50)
        for bad in ["", "MiB", "1..5GB", "4 lots", "99999999999999999999999", "20000000000000000000000PB"] {
            XCTAssertNil(parse(bad, ByteSize.gevulot), bad)
        }
        // A task's bare number is megabytes too; one too large for 64 bits is an error, not a crash.
        XCTAssertEqual(try TaskUnits.bytes(.number(512), at: "spec.resources.memory"), 512_000_000)
        XCTAssertThrowsError(try TaskUnits.bytes(.number(1e300), at: "spec.resources.memory"))
        XCTAssertThrowsError(try TaskUnits.bytes(.string("20000000000000000000000PB"), at: "spec.resources.memory"))
    }

    /// Numbers from JSON and YAML are shown and passed on as written, however large: converting a
    /// huge double to Int traps.
    func testJSONNumbersPrintWithoutTrapping() throws {
        XCTAssertEqual(3.0.jsonText, "3")
        XCTAssertEqual((-2.0).jsonText, "-2")
        XCTAssertEqual(0.5.jsonText, "0.5")
        XCTAssertEqual(1e300.jsonText, "1e+300")
        let object = try StrictObject(
            JSONValue.parse(Data(#"{"n": 1e300, "m": 7}"#.utf8), what: "t.json"), location: "t.json",
            allowed: ["n", "m"])
        XCTAssertThrowsError(try object.integer("n")) { error in
            XCTAssertTrue("\(error)".contains("expected an integer, found 1e+300"), "\(error)")
        }
        XCTAssertEqual(try object.integer("m"), 7)
    }
}
