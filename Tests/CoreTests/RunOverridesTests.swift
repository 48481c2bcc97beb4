import Core
import XCTest

/// Dockerfile and podman `--change` semantics for the build's run-config flags.
final class RunOverridesTests: XCTestCase {
    let image = RunSpec(
        entrypoint: ["/bin/app", "--serve"], cmd: ["--port", "80"], env: ["PATH=/bin", "A=1"], workingDir: "/w",
        user: "1000")

    func argv(_ spec: RunSpec) -> [String] { (spec.command.map { [$0] } ?? []) + spec.args }

    func testEntrypointAndCmdFollowDockerfileRules() {
        XCTAssertEqual(
            argv(RunOverrides(cmd: ["--port", "90"]).apply(to: image)), ["/bin/app", "--serve", "--port", "90"])
        XCTAssertEqual(argv(RunOverrides(entrypoint: ["/bin/other"]).apply(to: image)), ["/bin/other"], "Cmd is reset")
        XCTAssertEqual(argv(RunOverrides(entrypoint: ["/bin/o"], cmd: ["x"]).apply(to: image)), ["/bin/o", "x"])
        XCTAssertEqual(argv(RunOverrides(entrypoint: [], cmd: ["/bin/sh"]).apply(to: image)), ["/bin/sh"])
        XCTAssertEqual(argv(RunOverrides().apply(to: image)), argv(image))
        // A root directory has no config: the flags are all there is.
        XCTAssertEqual(argv(RunOverrides(entrypoint: ["/usr/bin/prover"]).apply(to: RunSpec())), ["/usr/bin/prover"])
    }

    func testEnvReplacesByKeyAndWorkdirAndUserReplace() {
        let changed = RunOverrides(
            env: [.init(key: "A", value: "2"), .init(key: "B", value: "3")], workingDir: "", user: "prover"
        ).apply(to: image)
        XCTAssertEqual(changed.env.map { "\($0.key)=\($0.value)" }, ["PATH=/bin", "A=2", "B=3"])
        XCTAssertNil(changed.workingDir)
        XCTAssertEqual(changed.user, "prover")
    }

    func testWordsAreAJSONArrayOrOneWord() throws {
        XCTAssertEqual(
            try RunOverrides.words("[\"/usr/bin/python3\", \"-u\"]", flag: "--entrypoint"), ["/usr/bin/python3", "-u"])
        XCTAssertEqual(try RunOverrides.words("/opt/my prover", flag: "--entrypoint"), ["/opt/my prover"])
        XCTAssertEqual(try RunOverrides.words("", flag: "--entrypoint"), [])
        XCTAssertThrowsError(try RunOverrides.words("[1, 2]", flag: "--cmd")) {
            XCTAssertTrue("\($0)".contains("--cmd `[1, 2]` is not a JSON array of strings"), "\($0)")
        }
    }
}
