import Core
import XCTest

/// Task files read as gevulot-rs reads them: field names, units and the checks that keep a local
/// run from meaning something else than the network's.
final class GevulotTaskTests: XCTestCase {
    /// gvltctl's task template writes zeros for what it leaves unset; they are the run's defaults.
    func testZeroResourcesAreUnset() throws {
        let task = try GevulotTask(
            yaml: "kind: Task\nversion: v0\nspec:\n  resources: {cpus: 0, gpus: 0, memory: 0, time: 0}\n",
            location: "task.yaml")
        XCTAssertNil(task.millicores)
        XCTAssertNil(task.memoryBytes)
        XCTAssertEqual(task.gpuMillicores ?? 0, 0)
        var request = RunRequest(image: "disk.img")
        request.task = task
        XCTAssertNil(try request.memoryArgument())
        XCTAssertNil(try request.cpuCount())
        XCTAssertNil(try request.timeoutSeconds())
    }

    func testTheDocsExampleWithEveryField() throws {
        let task = try GevulotTask(
            yaml: """
                kind: Task
                version: v0
                metadata:
                  name: 'Hello I/O task'
                  tags: [hello-world]
                  labels: [{key: content-type, value: text/plain}]
                spec:
                  image: 'https://storage.googleapis.com/gevulot-static-assets/hello.img'
                  command: ['/app/hello']
                  args: ['-input', '/mnt/gevulot/input/input.txt', '-output', '/mnt/gevulot/output/output.txt']
                  env:
                    - name: 'DEBUG'
                      value: 'true'
                    - name: LEVEL
                      value: 8
                  inputContexts:
                    - source: 'https://storage.googleapis.com/gevulot-static-assets/input.txt'
                      target: '/mnt/gevulot/input/input.txt'
                  outputContexts:
                    - source: '/mnt/gevulot/output/output.txt'
                      retentionPeriod: 900
                  resources:
                    cpus: 1
                    gpus: 0
                    memory: 512
                    time: 60
                  storeStdout: true
                """, location: "task.yaml")
        XCTAssertEqual(task.image, "https://storage.googleapis.com/gevulot-static-assets/hello.img")
        XCTAssertEqual(task.command, ["/app/hello"])
        XCTAssertEqual(
            task.args, ["-input", "/mnt/gevulot/input/input.txt", "-output", "/mnt/gevulot/output/output.txt"])
        XCTAssertEqual(
            task.env, [RunSpec.EnvVar(key: "DEBUG", value: "true"), RunSpec.EnvVar(key: "LEVEL", value: "8")])
        XCTAssertEqual(
            task.inputContexts,
            [
                .init(
                    source: "https://storage.googleapis.com/gevulot-static-assets/input.txt",
                    target: "/mnt/gevulot/input/input.txt")
            ])
        XCTAssertEqual(task.outputContexts, [.init(source: "/mnt/gevulot/output/output.txt", retentionPeriod: 900)])
        // gevulot-rs: bare numbers are cores, megabytes (10^6 bytes) and seconds.
        XCTAssertEqual(task.millicores, 1000)
        XCTAssertEqual(task.gpuMillicores, 0)
        XCTAssertEqual(task.memoryBytes, 512_000_000)
        XCTAssertEqual(task.timeSeconds, 60)
        XCTAssertTrue(task.storeStdout)
        XCTAssertFalse(task.storeStderr)
    }

    func testUnitsAsGevulotRsReadsThem() throws {
        func resources(_ body: String) throws -> GevulotTask {
            try GevulotTask(yaml: "kind: Task\nversion: v0\nspec:\n  resources: {\(body)}\n", location: "t.yaml")
        }
        let cases: [(String, Int?, UInt64?, Double?)] = [
            ("cpus: \"2cpu\", memory: \"512mb\", time: \"1h\"", 2000, 512_000_000, 3600),
            ("cpus: \"1000 MCpu\", memory: \"1024 MiB\", time: \"1 hr\"", 1000, 1 << 30, 3600),
            ("cpus: \"500mcpu\", memory: \"4GB\", time: \"1h 30m\"", 500, 4_000_000_000, 5400),
            ("cpus: \"2 cores\", memory: \"1.5GiB\", time: \"90s\"", 2000, 1_610_612_736, 90),
            ("cpus: 1.5, memory: \"256\", time: 0", 1500, 256_000_000, 0)
        ]
        for (body, cpus, memory, time) in cases {
            let task = try resources(body)
            XCTAssertEqual(task.millicores, cpus, body)
            XCTAssertEqual(task.memoryBytes, memory, body)
            XCTAssertEqual(task.timeSeconds, time, body)
        }
        for (body, named) in [
            ("cpus: \"2 parsecs\"", "cpus"), ("memory: \"12 bananas\"", "memory"), ("time: \"soon\"", "time"),
            ("memory: -5", "memory")
        ] {
            XCTAssertThrowsError(try resources(body), body) { error in
                XCTAssertTrue("\(error)".contains("resources.\(named)"), "\(error)")
            }
        }
    }

    func testMistakesAreNamedWithTheWayOut() throws {
        func error(_ text: String) -> String {
            do {
                _ = try GevulotTask(yaml: text, location: "t.yaml")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(error("kind: Workflow\nversion: v0\nspec: {}\n").contains("not Task"))
        XCTAssertTrue(error("kind: Task\nversion: v1\nspec: {}\n").contains("version `v1`"))
        let typo = error("kind: Task\nversion: v0\nspec:\n  inputContext: []\n")
        XCTAssertTrue(typo.contains("unknown key `inputContext`") && typo.contains("inputContexts"), typo)
        let outside = error("kind: Task\nversion: v0\nspec:\n  inputContexts: [{source: a, target: /etc/passwd}]\n")
        XCTAssertTrue(outside.contains("not under /mnt/gevulot/input"), outside)
        let escape = error("kind: Task\nversion: v0\nspec:\n  outputContexts: [{source: /mnt/gevulot/output/../x}]\n")
        XCTAssertTrue(escape.contains("without `..`"), escape)
        XCTAssertTrue(
            error("kind: Task\nversion: v0\nspec:\n  env: [{name: 'A=B', value: x}]\n").contains("not a variable name"))
        XCTAssertTrue(error("kind: Task\nversion: v0\nspec: [\n").contains("not valid YAML"))
        XCTAssertEqual(try GevulotTask.relative("out/a.txt", under: GevulotTask.outputRoot, at: "x"), "out/a.txt")
        XCTAssertEqual(
            try GevulotTask.relative("/mnt/gevulot/output/out/a.txt", under: GevulotTask.outputRoot, at: "x"),
            "out/a.txt")
    }
}
