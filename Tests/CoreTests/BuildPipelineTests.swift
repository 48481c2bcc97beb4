@testable import Core
import Foundation
import Logging
import TestSupport
import XCTest

/// The pipeline with a fake backend and fake accelerators: the order of the steps, what each step
/// gets, which checks run before any work, and that a failed build leaves nothing behind.
final class BuildPipelineTests: XCTestCase {
    /// What the fakes did, in order.
    final class Log {
        var steps: [String] = []
        var scratch: String?
    }

    final class FakeBackend: ImageBackend {
        struct Settings: BuildSettings {
            var fail: String?
            var label: String?
            enum CodingKeys: String, CodingKey, CaseIterable { case fail = "fail-at", label }
        }

        let name: String
        let description = "a fake"
        let capabilities: BackendCapabilities
        let log: Log

        init(name: String = "fake", takesTree: Bool = false, log: Log) {
            self.name = name
            capabilities = BackendCapabilities(
                inputs: [takesTree ? "rootfs-tree" : "elf-program"], outputs: ["raw-disk"],
                accelerators: [], reproducible: true, buildsImages: true)
            self.log = log
        }

        var targetKind: TargetKind { .nanosRelease }

        func check(_ settings: Settings, _ step: String) throws {
            log.steps.append(step)
            if settings.fail == step { throw InputError("\(step) failed") }
        }

        func validate(_ settings: Settings, input: BuildInput) throws { try check(settings, "validate") }

        func prepare(_ settings: Settings, input: BuildInput, context: BuildContext) throws -> Preparation<String> {
            try check(settings, "prepare")
            log.scratch = context.scratch.path
            try Data("partial".utf8).write(to: URL(fileURLWithPath: context.scratch.path + "/partial"))
            return Preparation(target: .nanosRelease(NanosTarget(klibDirectory: "/klibs")), state: "prepared-state")
        }

        func build(_ job: BackendJob<Settings, String>, context: BuildContext) throws -> BuildReport {
            try check(job.settings, "build")
            log.steps.append(
                "build got \(job.prepared), \(job.contributions.map(\.accelerator)), label \(job.settings.label ?? "-")"
            )
            try Data("image".utf8).write(to: URL(fileURLWithPath: job.output))
            return BuildReport(backend: name, output: job.output, sha256: "", bytes: 5, steps: [])
        }

        func preview(_ settings: Settings, input: BuildInput, kind: PreviewKind, scratch: ScratchDirectory) throws
            -> String?
        {
            log.steps.append("preview \(kind)")
            return "\(kind.rawValue) of \(input.program ?? "-")\n"
        }
    }

    final class FakeAccelerator: Accelerator {
        struct Settings: BuildSettings {
            var level: Int?
            enum CodingKeys: String, CodingKey, CaseIterable { case level = "fake-level" }
        }

        let name: String
        let description = "a fake accelerator"
        let supportedBackends: [String]
        let log: Log

        init(name: String, backends: [String] = ["fake"], log: Log) {
            self.name = name
            supportedBackends = backends
            self.log = log
        }

        func validate(_ settings: Settings, for target: TargetKind) throws {
            log.steps.append("\(name) validate for \(target.rawValue)")
            if let level = settings.level, level < 0 { throw InputError("--fake-level must not be negative") }
        }

        func contribute(_ settings: Settings, to request: ContributionRequest, context: BuildContext) throws
            -> AcceleratorContribution
        {
            guard case .nanosRelease(let release) = request.target else { throw InputError("wrong target") }
            log.steps.append("\(name) contribute (\(release.klibDirectory ?? "-"), level \(settings.level ?? 0))")
            return AcceleratorContribution(
                resources: ["level": String(settings.level ?? 0)], nanos: .init(klibs: [name]))
        }
    }

    var log = Log()
    var sandbox: Sandbox!

    override func setUpWithError() throws {
        log = Log()
        sandbox = try Sandbox()
    }

    func pipeline(_ backends: [any ImageBackend] = [], accelerators: [any Accelerator] = []) -> BuildPipeline {
        let registry = PluginRegistry()
        registry.register(backend: FakeBackend(log: log))
        for backend in backends { registry.register(backend: backend) }
        registry.register(accelerator: FakeAccelerator(name: "b-accel", log: log))
        registry.register(accelerator: FakeAccelerator(name: "a-accel", log: log))
        registry.register(accelerator: FakeAccelerator(name: "elsewhere", backends: ["other"], log: log))
        for accelerator in accelerators { registry.register(accelerator: accelerator) }
        return BuildPipeline(
            registry: registry, progress: ProgressReporter(mode: .quiet), logger: Logger(label: "test"),
            cache: CacheDirectory(root: sandbox.path("cache")))
    }

    func request(_ options: [String: JSONValue] = [:], accelerators: [String] = [], output: String? = "out.img")
        -> BuildRequest
    {
        BuildRequest(
            backend: "fake", program: "/bin/prover", accelerators: accelerators,
            options: BuildOptions(options, origin: "test"),
            output: output.map(sandbox.path))
    }

    func assertRefused(_ request: BuildRequest, _ fragment: String, file: StaticString = #filePath, line: UInt = #line)
    {
        XCTAssertThrowsError(try pipeline().run(request), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "`\(fragment)` not in: \(error)", file: file, line: line)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out.img")), file: file, line: line)
    }

    func testStepsRunInOrderAndEachGetsWhatThePreviousSettled() throws {
        let outcome = try pipeline().run(
            request(["label": "x", "fake-level": "3"], accelerators: ["b-accel", "a-accel"]))
        XCTAssertEqual(
            log.steps,
            [
                "b-accel validate for nanos-release", "a-accel validate for nanos-release",
                "validate", "prepare",
                "b-accel contribute (/klibs, level 3)", "a-accel contribute (/klibs, level 3)",
                // Contributions reach the backend sorted by name, whatever the order of --accel.
                "build", "build got prepared-state, [\"a-accel\", \"b-accel\"], label x"
            ])
        guard case .built(let report) = outcome else { return XCTFail("no report") }
        XCTAssertEqual(report.resources, ["a-accel": ["level": "3"], "b-accel": ["level": "3"]])
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("out.img"), encoding: .utf8), "image")
        // The build's scratch went away with the build.
        XCTAssertFalse(FileManager.default.fileExists(atPath: try XCTUnwrap(log.scratch)))
    }

    func testAFailedStepLeavesNoScratchAndNoImage() throws {
        for step in ["prepare", "build"] {
            log.steps = []
            log.scratch = nil
            assertRefused(request(["fail-at": .string(step)]), "\(step) failed")
            if let scratch = log.scratch {
                XCTAssertFalse(FileManager.default.fileExists(atPath: scratch), "\(step): \(scratch) left behind")
            }
        }
    }

    func testChecksThatNeedNoWorkRunBeforeAnyWork() throws {
        assertRefused(request(["fake-level": "-1"], accelerators: ["a-accel"]), "--fake-level must not be negative")
        XCTAssertFalse(log.steps.contains("prepare"))
        assertRefused(
            request(["fake-level": "lots"], accelerators: ["a-accel"]), "test.fake-level: `lots` is not a whole number")
        try Data("old".utf8).write(to: URL(fileURLWithPath: sandbox.path("exists.img")))
        XCTAssertThrowsError(try pipeline().run(request(output: "exists.img"))) { error in
            XCTAssertTrue("\(error)".contains("already exists"), "\(error)")
        }
        XCTAssertFalse(log.steps.contains("prepare"), "\(log.steps)")
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("exists.img"), encoding: .utf8), "old")
    }

    func testOptionsGoToTheirOwnersAndStrayOnesAreNamed() {
        assertRefused(request(["lable": "x"]), "test.lable: the fake backend has no option `lable`")
        assertRefused(request(["lable": "x"]), "did you mean `label`?")
        // An accelerator's option without the accelerator says which --accel it needs.
        assertRefused(request(["fake-level": "1"]), "test.fake-level is for --accel a-accel")
        assertRefused(
            request([:], accelerators: ["elsewhere"]), "accelerator `elsewhere` does not support the fake backend")
    }

    func testAPartyThatDeclaresNoOptionsTakesTheUnclaimedOnes() throws {
        final class OpenAccelerator: Accelerator {
            let name = "open"
            let description = "takes any option"
            let supportedBackends = ["fake"]
            var seen: [String] = []
            var optionKeys: [String]? { nil }
            func settings(from options: BuildOptions) throws -> BuildOptions { options }
            func contribute(_ settings: BuildOptions, to request: ContributionRequest, context: BuildContext) throws
                -> AcceleratorContribution
            {
                seen = settings.keys
                return AcceleratorContribution()
            }
        }
        let open = OpenAccelerator()
        _ = try pipeline(accelerators: [open]).run(request(["label": "x", "pages": "8"], accelerators: ["open"]))
        XCTAssertEqual(open.seen, ["pages"])
        XCTAssertTrue(log.steps.contains("build got prepared-state, [\"open\"], label x"), "\(log.steps)")
    }

    func testPreviewWritesNothing() throws {
        let outcome = try pipeline().run(
            BuildRequest(
                backend: "fake", program: "/bin/p", options: BuildOptions(),
                output: sandbox.path("out.img"), previews: [.dependencies, .manifest]))
        guard case .previewed(let texts) = outcome else { return XCTFail("no preview") }
        XCTAssertEqual(texts, ["dependencies of /bin/p\n", "manifest of /bin/p\n"])
        XCTAssertEqual(log.steps, ["preview dependencies", "preview manifest"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out.img")))
    }

    func testEachBackendGetsOnlyTheInputItTakes() throws {
        let tree = FakeBackend(name: "tree", takesTree: true, log: log)
        XCTAssertThrowsError(try pipeline([tree]).run(BuildRequest(backend: "tree", output: sandbox.path("out.img")))) {
            error in
            XCTAssertTrue("\(error)".contains("no source given"), "\(error)")
        }
        try FileManager.default.createDirectory(atPath: sandbox.path("root/etc"), withIntermediateDirectories: true)
        var withSource = request()
        withSource.source = RootfsDirectorySource(directory: sandbox.path("root"))
        assertRefused(withSource, "the fake backend takes a program, not --container/--containerfile/--rootfs-dir")
        withSource.backend = "tree"
        _ = try pipeline([tree]).run(withSource)
        XCTAssertTrue(FileManager.default.fileExists(atPath: sandbox.path("out.img")))
    }
}
