import Core
import Foundation
@testable import Nanos
import TestSupport
import XCTest

/// Every nanos option (ops build's names), decoded once, with what the backend refuses.
final class NanosSettingsTests: XCTestCase {
    typealias Settings = NanosBackend.Settings

    func settings(_ values: [String: JSONValue]) throws -> Settings {
        try Settings.decode(BuildOptions(values, origin: "test"))
    }

    func assertRefused(
        _ values: [String: JSONValue], _ fragment: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try settings(values), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "`\(fragment)` not in: \(error)", file: file, line: line)
        }
    }

    func testTheKeyListIsTheFlagList() {
        XCTAssertEqual(
            Set(Settings.optionKeys),
            [
                "manifest", "args", "imagename", "nightly", "boot", "kernel", "label", "nanos-dir", "nanos-version",
                "local-run", "envs", "target-root", "ops-images"
            ])
    }

    func testDefaults() throws {
        let settings = try settings([:])
        XCTAssertFalse(settings.localRun)
        XCTAssertEqual(settings.label, "")
        XCTAssertNil(settings.explicitName)
        XCTAssertNil(settings.release.nanosDirectory)
        XCTAssertEqual(settings.manifest.args, [])
        XCTAssertThrowsError(try settings.program(.program(nil))) { error in
            XCTAssertTrue("\(error)".contains("the nanos backend needs a program"), "\(error)")
        }
        XCTAssertEqual(try settings.program(.program("/bin/prover")), "/bin/prover")
        XCTAssertEqual(settings.imageName(program: "/bin/prover.v2"), "prover")
    }

    func testManifestArgsAndImageName() throws {
        let sandbox = try Sandbox()
        try sandbox.write("config.json", Data(#"{"Program": "prover.v2", "Args": ["a"]}"#.utf8))
        let fromManifest = try settings(["manifest": .string(sandbox.path("config.json"))])
        XCTAssertEqual(fromManifest.manifest.args, ["a"])
        // Without PROGRAM the manifest's Program is the host file next to the manifest.
        XCTAssertEqual(try fromManifest.program(.program(nil)), sandbox.path("prover.v2"))
        XCTAssertEqual(fromManifest.imageName(program: "/other/name"), "prover")
        // ops build's -a replaces Args, and -i names the image as given.
        let overridden = try settings([
            "manifest": .string(sandbox.path("config.json")), "args": ["x", "y z"], "imagename": "prover.v1"
        ])
        XCTAssertEqual(overridden.manifest.args, ["x", "y z"])
        XCTAssertEqual(overridden.explicitName, "prover.v1")
        XCTAssertEqual(overridden.imageName(program: "/p"), "prover.v1")
        XCTAssertEqual(try settings(["args": "one"]).manifest.args, ["one"])
        assertRefused(["imagename": "a/b"], "--imagename `a/b` is not an image name")
        assertRefused(["imagename": ".."], "--imagename `..` is not an image name")
        assertRefused(["manifest": "/nonexistent/config.json"], "/nonexistent/config.json")
    }

    /// ops' -e adds to Env (a later name wins), -r replaces TargetRoot from the working directory,
    /// and RunConfig.ImageName (or --ops-images) sends the image to ~/.ops/images.
    func testOpsEnvsTargetRootAndImagePlace() throws {
        let sandbox = try Sandbox()
        try sandbox.write("config.json", Data(#"{"Program": "p", "Env": {"A": "1", "B": "2"}}"#.utf8))
        let merged = try settings([
            "manifest": .string(sandbox.path("config.json")), "envs": ["B=3", "C=x=y"], "target-root": "rel/root"
        ])
        XCTAssertEqual(merged.manifest.env.map { "\($0.0)=\($0.1)" }, ["A=1", "B=3", "C=x=y"])
        XCTAssertEqual(merged.manifest.targetRoot, FileManager.default.currentDirectoryPath + "/rel/root")
        assertRefused(["envs": ["NOVALUE"]], "--envs `NOVALUE` is not NAME=VALUE")
        assertRefused(["envs": ["=x"]], "--envs `=x` is not NAME=VALUE")

        XCTAssertFalse(try settings([:]).writesToOpsImages)
        XCTAssertTrue(try settings(["ops-images": true]).writesToOpsImages)
        try sandbox.write("named.json", Data(#"{"Program": "p", "RunConfig": {"Imagename": "web-server.v1"}}"#.utf8))
        let named = try settings(["manifest": .string(sandbox.path("named.json"))])
        XCTAssertTrue(named.writesToOpsImages)
        XCTAssertEqual(named.imageName(program: "/x/p"), "web-server")
    }

    func testReleaseChoice() throws {
        let release = try settings(["nanos-dir": "/r", "boot": "/r/boot.img", "kernel": "/r/kernel.img"]).release
        XCTAssertEqual(release.nanosDirectory, "/r")
        XCTAssertEqual(release.boot, "/r/boot.img")
        XCTAssertEqual(release.kernel, "/r/kernel.img")
        XCTAssertEqual(try settings(["nanos-version": "0.1.52"]).release.nanosVersion, "0.1.52")
        assertRefused(
            ["nanos-dir": "/r", "nanos-version": "0.1.52"], "--nanos-dir and --nanos-version both name a release")
        assertRefused(["nightly": true], "--nightly needs the network")
        XCTAssertNoThrow(try settings(["nightly": false]))
    }

    func testLocalRunAndLabel() throws {
        XCTAssertTrue(try settings(["local-run": true]).localRun)
        XCTAssertTrue(try settings(["local-run": "true"]).localRun)
        XCTAssertEqual(try settings(["label": "prover"]).label, "prover")
        assertRefused(["local-run": "sometimes"], "test.local-run: `sometimes` is not true or false")
    }

    /// gvlt run's Nanos-only options: --volume DIR and -c MANIFEST, and nothing else.
    func testRunSettingsDecodeVolumeAndManifest() throws {
        XCTAssertEqual(Set(NanosRunner.RunSettings.optionKeys), ["volume", "manifest"])
        let settings = try NanosRunner.RunSettings.decode(
            BuildOptions(["volume": "data", "manifest": "config.json"], origin: "--volume"))
        XCTAssertEqual(settings.volume, "data")
        XCTAssertEqual(settings.manifest, "config.json")
        let empty = try NanosRunner.RunSettings.decode(BuildOptions())
        XCTAssertNil(empty.volume)
        XCTAssertNil(empty.manifest)
        XCTAssertThrowsError(
            try NanosRunner.RunSettings.decode(BuildOptions(["volume": .array(["a", "b"])], origin: "--volume"))
        ) { error in
            XCTAssertTrue("\(error)".contains("--volume"), "\(error)")
        }
    }
}
