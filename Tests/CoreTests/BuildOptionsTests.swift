@testable import Core
import XCTest

/// Option values as flags, `--option` and the build config file give them, decoded leniently and
/// named by where they were written when they are wrong.
final class BuildOptionsTests: XCTestCase {
    struct Sample: BuildSettings {
        var text: String?
        var flag: Bool?
        var count: Int?
        var list: [String]?
        enum CodingKeys: String, CodingKey, CaseIterable { case text, flag, count, list }
    }

    func decode(_ options: BuildOptions) throws -> Sample { try Sample.decode(options) }

    func testLaterValuesWinAndKeepTheirOrigin() {
        var options = BuildOptions()
        options.set("text", "from-file", origin: "build.yaml: options.text")
        options.set("text", "from-flag", origin: "--text")
        XCTAssertEqual(options["text"], "from-flag")
        XCTAssertEqual(options.origin(of: "text"), "--text")
        XCTAssertEqual(options.only(["other"]).keys, [])
    }

    func testScalarsAreReadFromStringsAndFromTheirOwnTypes() throws {
        let strings = try decode(BuildOptions(["text": "a", "flag": "yes", "count": "12", "list": "one"]))
        XCTAssertEqual(strings.text, "a")
        XCTAssertEqual(strings.flag, true)
        XCTAssertEqual(strings.count, 12)
        XCTAssertEqual(strings.list, ["one"])
        let typed = try decode(
            BuildOptions(["text": .number(3), "flag": false, "count": .number(7), "list": ["a", .number(2)]]))
        XCTAssertEqual(typed.text, "3")
        XCTAssertEqual(typed.flag, false)
        XCTAssertEqual(typed.count, 7)
        XCTAssertEqual(typed.list, ["a", "2"])
        XCTAssertNil(try decode(BuildOptions()).text)
    }

    func testWrongValuesNameTheirOrigin() {
        var options = BuildOptions()
        options.set("count", "1e400", origin: "--option count")
        XCTAssertThrowsError(try decode(options)) {
            XCTAssertTrue("\($0)".contains("--option count: `1e400` is not a whole number"), "\($0)")
        }
        XCTAssertThrowsError(try decode(BuildOptions(["count": .number(1.5)], origin: "f"))) {
            XCTAssertTrue("\($0)".contains("f.count: expected a whole number, found 1.5"), "\($0)")
        }
        XCTAssertThrowsError(try decode(BuildOptions(["count": .number(1e300)], origin: "f"))) {
            XCTAssertTrue("\($0)".contains("f.count: expected a whole number"), "\($0)")
        }
        XCTAssertThrowsError(try decode(BuildOptions(["flag": "maybe"], origin: "f"))) {
            XCTAssertTrue("\($0)".contains("f.flag: `maybe` is not true or false"), "\($0)")
        }
        XCTAssertThrowsError(try decode(BuildOptions(["list": .object([:])], origin: "f"))) {
            XCTAssertTrue("\($0)".contains("f.list: expected a string, found object"), "\($0)")
        }
    }

    func testRoutingGivesEachKeyToItsOwners() throws {
        let routing = OptionRouting(elsewhere: ["manifest": "the nanos backend", "require-gpu": "--accel nvidia"])
        let parties = [
            OptionRouting.Party(title: "the linuxvm backend", keys: ["kernel", "size"]),
            OptionRouting.Party(title: "the hugepages accelerator", keys: ["hugepages"])
        ]
        let routed = try routing.route(BuildOptions(["kernel": "debian", "hugepages": "8"]), to: parties)
        XCTAssertEqual(routed.map(\.keys), [["kernel"], ["hugepages"]])
        XCTAssertThrowsError(try routing.route(BuildOptions(["manifest": "m.json"], origin: "cfg"), to: parties)) {
            XCTAssertTrue("\($0)".contains("cfg.manifest is for the nanos backend, not the linuxvm backend"), "\($0)")
            XCTAssertTrue("\($0)".contains("--backend nanos"), "\($0)")
        }
        XCTAssertThrowsError(try routing.route(BuildOptions(["require-gpu": true], origin: "cfg"), to: parties)) {
            XCTAssertTrue("\($0)".contains("cfg.require-gpu is for --accel nvidia"), "\($0)")
        }
        XCTAssertThrowsError(try routing.route(BuildOptions(["kernal": "debian"], origin: "cfg"), to: parties)) {
            XCTAssertTrue(
                "\($0)".contains("the linuxvm backend and the hugepages accelerator have no option `kernal`"), "\($0)")
            XCTAssertTrue("\($0)".contains("did you mean `kernel`?"), "\($0)")
        }
    }
}
