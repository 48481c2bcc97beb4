import Foundation
import TestSupport
import XCTest

/// `gvlt run` takes `gvltctl local-run`'s options and Gevulot task files, with their meaning, checked
/// in the booted guest or on the QEMU command line.
final class GvltctlRunTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    /// gvltctl's integration scenario: a Containerfile whose entrypoint is a shell script.
    func makeScenario(_ sandbox: Sandbox) throws {
        XCTAssertTrue(
            FileManager.default.isExecutableFile(atPath: "/bin/busybox"),
            "busybox-static is not installed: run scripts/setup")
        try FileManager.default.createDirectory(atPath: sandbox.path("ctx"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: sandbox.path("ctx/busybox"))
        try sandbox.writeExecutable(
            "ctx/hello.sh",
            """
            #!/bin/sh
            echo "Hello, world!"
            echo "This is output." > /mnt/gevulot/output/output.txt
            [ $# -eq 0 ] || echo "args: $*"

            """)
        try sandbox.write(
            "ctx/Containerfile",
            Data(
                """
                FROM scratch
                COPY busybox /bin/busybox
                COPY hello.sh /hello.sh
                RUN ["/bin/busybox", "--install", "-s", "/bin"]
                ENTRYPOINT ["/hello.sh"]
                """.utf8))
    }

    func run(_ arguments: [String], in sandbox: Sandbox) throws -> RunResult {
        try GvltBinary.run(["run", "--accel", "tcg"] + arguments, in: sandbox, timeout: 300)
    }

    func testGvltctlScenarioRunsFromATaskFile() throws {
        if ProcessInfo.processInfo.environment["GVLT_TESTS_WITHOUT_PODMAN"] == "1" {
            throw XCTSkip("GVLT_TESTS_WITHOUT_PODMAN=1")
        }
        let sandbox = try Sandbox()
        try makeScenario(sandbox)
        let (initBinary, _) = try Images.built.get()
        // gvltctl build's short flags: -f Containerfile, -q.
        let build = try GvltBinary.run(
            [
                "build", "--backend", "linuxvm", "-f", "ctx/Containerfile", "-o", "hello.img", "-q",
                "--init-binary", initBinary, "--cache-dir", Images.kernelCache
            ], in: sandbox, timeout: 600)
        XCTAssertEqual(build.status, 0, build.stderr)
        XCTAssertEqual(build.stdout + build.stderr, "", "-q printed something")

        // gvltctl's test task.yaml: storeStdout and one output context; the image from spec.image.
        try sandbox.write(
            "task.yaml",
            Data(
                """
                kind: Task
                version: v0
                metadata:
                  name: hello
                spec:
                  image: hello.img
                  resources:
                    cpus: 1
                    gpus: 0
                    memory: 512
                    time: 120
                  storeStdout: true
                  outputContexts:
                    - source: /mnt/gevulot/output/output.txt
                      retentionPeriod: 900
                """.utf8))
        let result = try run(["-f", "task.yaml", "--json"], in: sandbox)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("output/stdout"), encoding: .utf8), "Hello, world!\n")
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("output/output.txt"), encoding: .utf8), "This is output.\n")
        // The console went to stderr; stdout is the report alone.
        XCTAssertTrue(result.stderr.contains("gvlt-init: starting /hello.sh"), result.stderr)
        let report = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.stdout)
        XCTAssertEqual(report["result"] as? String, "exited")
        XCTAssertEqual(report["exit_code"] as? Int, 0)
        XCTAssertGreaterThan(try XCTUnwrap(report["execution_time"] as? Double), 0.5)
        XCTAssertEqual(report["outputs"] as? [String], ["output/stdout", "output/output.txt"])

        // A task that overrides the command: its first words, its args, env (a number is a string to
        // the program), an input context, resources; flags add env and show the program's output only.
        try sandbox.write("in.txt", Data("input file\n".utf8))
        try sandbox.write(
            "task2.yaml",
            Data(
                """
                kind: Task
                version: v0
                spec:
                  image: file://hello.img
                  command: [/bin/sh, -c, 'echo "$0 $1 A=$A B=$B"; cat /mnt/gevulot/input/data/in.txt /mnt/gevulot/input/more.txt; nproc; exit 3']
                  args: [first, second]
                  env: [{name: A, value: 8}]
                  inputContexts: [{source: in.txt, target: /mnt/gevulot/input/data/in.txt}]
                  resources: {cpus: "2cpu", memory: "256MiB", time: "2m"}
                  storeStderr: true
                """.utf8))
        try sandbox.write("more.txt", Data("more input\n".utf8))
        let second = try run(
            [
                "-f", "task2.yaml", "-e", "B=2", "-i", "more.txt:/mnt/gevulot/input/more.txt", "--stdout",
                "--output-dir", "out2"
            ], in: sandbox)
        XCTAssertEqual(second.status, 3, second.stderr)
        XCTAssertEqual(second.stdout, "first second A=8 B=2\ninput file\nmore input\n2\n")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: sandbox.path("out2/stderr")), "storeStderr wrote no stderr file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out2/stdout")))

        // Task args reach the image's own entrypoint without a command override (gvltctl drops them).
        // --store-stdout and -o as flags; --stderr alone shows QEMU's messages and not the console.
        try sandbox.write("task3.yaml", Data("kind: Task\nversion: v0\nspec:\n  args: [x, 'y z']\n".utf8))
        let third = try run(
            [
                "hello.img", "-f", "task3.yaml", "--store-stdout", "-o", "/mnt/gevulot/output/output.txt", "--stderr",
                "--output-dir", "out3"
            ], in: sandbox)
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertEqual(third.stdout, "")
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("out3/stdout"), encoding: .utf8), "Hello, world!\nargs: x y z\n")
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: sandbox.path("out3"))), ["stdout", "output.txt"])
    }

    static let simpleVM =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        + "/Fixtures/gvltctl-simple-vm"

    /// gvlt linked as `gvltctl` runs gvltctl's own integration scenario as its run_test.sh does: its
    /// Containerfile (with a local busybox stage for alpine:latest) and task file, unchanged, through
    /// `gvltctl build` and `gvltctl local-run` with gvltctl's defaults (disk.img, output/).
    func testGvltctlPersonalityRunsGvltctlsOwnScenario() throws {
        if ProcessInfo.processInfo.environment["GVLT_TESTS_WITHOUT_PODMAN"] == "1" {
            throw XCTSkip("GVLT_TESTS_WITHOUT_PODMAN=1")
        }
        let sandbox = try Sandbox()
        XCTAssertTrue(
            FileManager.default.isExecutableFile(atPath: "/bin/busybox"),
            "busybox-static is not installed: run scripts/setup")
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: sandbox.path("busybox"))
        let original = try String(contentsOfFile: Self.simpleVM + "/Containerfile", encoding: .utf8)
        XCTAssertTrue(original.hasPrefix("FROM alpine:latest\n"), original)
        try sandbox.write(
            "Containerfile",
            Data(
                ("FROM scratch AS alpine\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\n"
                    + original.replacingOccurrences(of: "FROM alpine:latest", with: "FROM alpine")).utf8))
        try sandbox.write(
            "src/main.sh",
            Data(
                """
                #!/bin/sh
                echo "Hello, world!"
                echo "Input file:"
                cat /mnt/gevulot/input/input.txt
                echo "This is output." > /mnt/gevulot/output/output.txt
                echo "Done"

                """.utf8))
        try sandbox.write("inputs/input.txt", Data("This is input.\n".utf8))
        try FileManager.default.copyItem(atPath: Self.simpleVM + "/task.yaml", toPath: sandbox.path("task.yaml"))
        let gvltctl = try GvltBinary.link(named: "gvltctl", in: sandbox)
        let (initBinary, _) = try Images.built.get()
        let environment = ["GVLT_INIT": initBinary, "GVLT_CACHE_DIR": Images.kernelCache]

        let build = try GvltBinary.run(
            ["build", "--force", "--containerfile", "./Containerfile"], in: sandbox, environment: environment,
            timeout: 600, executable: gvltctl)
        XCTAssertEqual(build.status, 0, build.stderr)
        // gvltctl's default: a 10G disk, most of it a hole.
        let attributes = try FileManager.default.attributesOfItem(atPath: sandbox.path("disk.img"))
        XCTAssertEqual((attributes[.size] as? NSNumber)?.int64Value, 10 << 30)

        let run = try GvltBinary.run(
            [
                "local-run", "disk.img", "--file", "task.yaml", "--input", "inputs/input.txt:input.txt", "--stdout",
                "--stderr", "--smp", "1", "--mem", "512"
            ], in: sandbox, environment: environment, timeout: 300, executable: gvltctl)
        XCTAssertEqual(run.status, 0, run.stderr)
        // run_test.sh's two checks, and gvltctl's closing message.
        let stdout = try String(contentsOfFile: sandbox.path("output/stdout"), encoding: .utf8)
        XCTAssertEqual(stdout, "Hello, world!\nInput file:\nThis is input.\nDone\n")
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("output/output.txt"), encoding: .utf8), "This is output.\n")
        XCTAssertTrue(run.stdout.hasPrefix("Hello, world!\n"), run.stdout)
        XCTAssertTrue(run.stdout.hasSuffix("Done\nmessage: VM program exited successfully\n\n"), run.stdout)

        // -F before the command, as gvltctl's global flag; the network commands say what they need.
        let json = try GvltBinary.run(
            [
                "-F", "json", "local-run", "disk.img", "--file", "task.yaml", "-i", "inputs/input.txt:input.txt",
                "--stdout", "--output-dir", "out2"
            ], in: sandbox, environment: environment, timeout: 300,
            executable: gvltctl)
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertTrue(json.stdout.hasSuffix("Done\n{\"message\":\"VM program exited successfully\"}\n"), json.stdout)
        let task = try GvltBinary.run(["task", "list"], in: sandbox, executable: gvltctl)
        XCTAssertEqual(task.status, 1)
        XCTAssertTrue(task.stderr.contains("gvltctl task talks to the Gevulot network"), task.stderr)
        // Without --force an existing disk.img stays, as in gvltctl.
        let again = try GvltBinary.run(
            ["build", "--containerfile", "./Containerfile"], in: sandbox, environment: environment, executable: gvltctl)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("exists"), again.stderr)
    }

    func testLocalRunFlagsAndTaskResourcesOnTheQEMUCommandLine() throws {
        let sandbox = try Sandbox()
        try sandbox.write("disk.img", FakeDisk.firestarterShaped())
        try sandbox.write(
            "task.yaml",
            Data(
                """
                kind: Task
                version: v0
                spec:
                  image: disk.img
                  resources: {cpus: 1500mcpu, memory: 512, time: 60}
                """.utf8))
        func words(_ arguments: [String]) throws -> [String] {
            let result = try GvltBinary.run(["run", "--print-qemu-command", "--accel", "tcg"] + arguments, in: sandbox)
            XCTAssertEqual(result.status, 0, result.stderr)
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: " ")
        }
        func value(after flag: String, in words: [String]) -> String? {
            words.firstIndex(of: flag).map { words[$0 + 1] }
        }
        // gevulot-rs units: 1500 millicores need 2 CPUs; 512 is megabytes, 489 MiB.
        let fromTask = try words(["-f", "task.yaml"])
        XCTAssertEqual(value(after: "-smp", in: fromTask), "2")
        XCTAssertEqual(value(after: "-m", in: fromTask), "489M")
        XCTAssertTrue(fromTask.contains { $0.contains("file=disk.img,format=raw") }, "\(fromTask)")
        // gvltctl's short flags win over the task; --qemu-arg is one argument each, never split.
        let flags = try words([
            "-f", "task.yaml", "-s", "1", "-m", "1G", "-g", "0000:01:00.0", "--qemu-arg", "-cpu", "--qemu-arg",
            "max,+pdpe1gb",
            "--qemu-arg", "-name", "--qemu-arg", "two words", "--qemu-path", "/usr/bin/qemu-system-x86_64"
        ])
        XCTAssertEqual(flags.first, "/usr/bin/qemu-system-x86_64")
        XCTAssertEqual(value(after: "-smp", in: flags), "1")
        XCTAssertEqual(value(after: "-m", in: flags), "1024M")
        XCTAssertEqual(value(after: "-cpu", in: flags), "max,+pdpe1gb")
        XCTAssertTrue(flags.joined(separator: " ").hasSuffix("-name 'two words'"), "\(flags)")
        XCTAssertTrue(flags.contains("vfio-pci,rombar=0,host=0000:01:00.0"), "\(flags)")
    }

    /// More CPUs or memory than the host has is a clear error before QEMU starts, or capped with --fit;
    /// --gpu none runs a GPU task without its GPUs.
    func testTaskResourcesBeyondTheHostAndGPUNone() throws {
        let sandbox = try Sandbox()
        try sandbox.write("disk.img", FakeDisk.firestarterShaped())
        try sandbox.write(
            "big.yaml",
            Data(
                "kind: Task\nversion: v0\nspec:\n  image: disk.img\n  resources: {cpus: 1000, memory: 4TiB, gpus: 1}\n"
                    .utf8))
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        let refused = try GvltBinary.run(["run", "-f", "big.yaml", "--gpu", "none", "--accel", "tcg"], in: sandbox)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(
            refused.stderr.contains("big.yaml: resources.cpus is 1000, and this host has \(cpus) CPU"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--fit"), refused.stderr)
        let gpu = try GvltBinary.run(["run", "-f", "big.yaml", "--fit", "--print-qemu-command"], in: sandbox)
        XCTAssertEqual(gpu.status, 1, gpu.stderr)
        XCTAssertTrue(gpu.stderr.contains("the task's resources.gpus is 1"), gpu.stderr)
        XCTAssertTrue(gpu.stderr.contains("ask for 0 GPUs"), gpu.stderr)
        let fitted = try GvltBinary.run(
            ["run", "-f", "big.yaml", "--fit", "--gpu", "none", "--print-qemu-command", "--accel", "tcg"], in: sandbox)
        XCTAssertEqual(fitted.status, 0, fitted.stderr)
        let words = fitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: " ")
        XCTAssertEqual(words.firstIndex(of: "-smp").map { words[$0 + 1] }, "\(cpus)")
        XCTAssertFalse(words.contains { $0.contains("vfio-pci") }, "\(words)")
        XCTAssertTrue(
            fitted.stderr.contains("resources.cpus is 1000; running with this host's \(cpus) (--fit)"), fitted.stderr)
        XCTAssertTrue(fitted.stderr.contains("resources.memory is"), fitted.stderr)
        let mixed = try GvltBinary.run(["run", "-f", "big.yaml", "--gpu", "none", "--gpu", "0000:01:00.0"], in: sandbox)
        XCTAssertTrue(mixed.stderr.contains("--gpu none cannot be combined"), mixed.stderr)
    }

    /// --print-qemu-command prints what a run would start: the same image and input checks, and
    /// --accel auto decided by the same probe.
    func testPrintQEMUCommandChecksAndDecidesLikeARun() throws {
        let sandbox = try Sandbox()
        try sandbox.write("disk.img", FakeDisk.firestarterShaped())
        try sandbox.write("program", Data([0x7F, 0x45, 0x4C, 0x46] + [UInt8](repeating: 0, count: 60)))
        let elf = try GvltBinary.run(["run", "program", "--print-qemu-command", "--accel", "tcg"], in: sandbox)
        XCTAssertEqual(elf.status, 1, elf.stdout)
        XCTAssertTrue(elf.stderr.contains("program is not a Firestarter image"), elf.stderr)
        let input = try GvltBinary.run(
            ["run", "disk.img", "--input", "missing.txt:in.txt", "--print-qemu-command", "--accel", "tcg"], in: sandbox)
        XCTAssertTrue(input.stderr.contains("input missing.txt: no such file or directory"), input.stderr)
        let auto = try GvltBinary.run(["run", "disk.img", "--print-qemu-command"], in: sandbox)
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertTrue(
            auto.stdout.contains("-accel kvm")
                || (auto.stdout.contains("-accel tcg") && auto.stderr.contains("KVM is not usable here")),
            "auto was not decided by the probe: \(auto.stdout) \(auto.stderr)")
    }

    func testTaskFileMistakesAndRemoteSourcesAreClearErrors() throws {
        let sandbox = try Sandbox()
        try sandbox.write("disk.img", FakeDisk.firestarterShaped())
        let cases: [(String, String)] = [
            // URLs are fetched (TaskURLTests); --offline refuses them as before.
            (
                "spec:\n  image: https://example.com/hello.img\n",
                "is remote, and --offline keeps gvlt run from fetching it"
            ),
            (
                "spec:\n  image: disk.img\n  inputContexts: [{source: 'https://example.com/in.txt', target: /mnt/gevulot/input/in.txt}]\n",
                "is remote, and --offline keeps gvlt run from fetching it"
            ),
            (
                "spec:\n  image: disk.img\n  inputContexts: [{source: bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi, target: in.txt}]\n",
                "is an IPFS CID, which is not supported"
            ),
            ("spec:\n  image: disk.img\n  resources: {memory: 8}\n", "too little to boot"),
            ("spec:\n  image: disk.img\n  outputContexts: [{source: /tmp/x}]\n", "not under /mnt/gevulot/output"),
            ("spec:\n  imag: disk.img\n", "did you mean `image`"),
            ("spec: {}\n", "no image given")
        ]
        for (index, (spec, expected)) in cases.enumerated() {
            try sandbox.write("t\(index).yaml", Data("kind: Task\nversion: v0\n\(spec)".utf8))
            let result = try GvltBinary.run(["run", "-f", "t\(index).yaml", "--accel", "tcg", "--offline"], in: sandbox)
            XCTAssertNotEqual(result.status, 0, spec)
            XCTAssertTrue(result.stderr.contains(expected), "\(spec): \(result.stderr)")
        }
        XCTAssertEqual(
            sandbox.listing(sandbox.work).filter { !$0.hasPrefix("t") && $0 != "disk.img" }, [],
            "a failed run left files behind")
    }
}
