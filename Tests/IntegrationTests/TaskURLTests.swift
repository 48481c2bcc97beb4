import Foundation
import TestSupport
import XCTest

/// `gvlt run -f task.yaml` whose spec.image and inputs are URLs, served by Python's http.server on
/// 127.0.0.1 (the input over HTTPS with the test CA, trusted through $SSL_CERT_FILE).
final class TaskURLTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    func task(image: String, input: String) -> Data {
        Data(
            """
            kind: Task
            version: v0
            spec:
              image: \(image)
              args: [from-task]
              inputContexts:
                - source: \(input)
                  target: /mnt/gevulot/input/in.txt
              outputContexts:
                - source: /mnt/gevulot/output/out.txt

            """.utf8)
    }

    func testATaskWhoseImageAndInputAreURLsRunsAndChecksWhatItFetched() throws {
        let sandbox = try Sandbox()
        let www = sandbox.root + "/www"
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try Images.runImage.get(), toPath: www + "/prover.img")
        try Data("remote-witness\n".utf8).write(to: URL(fileURLWithPath: www + "/in.txt"))
        let imageSHA = TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: www + "/prover.img"))).dropFirst(7)
        let plain = try FileServer(root: www, tls: false)
        let secure = try FileServer(root: www, tls: true)
        let imageURL = "http://127.0.0.1:\(plain.port)/prover.img"
        let inputURL = "https://127.0.0.1:\(secure.port)/in.txt"
        try sandbox.write("task.yaml", task(image: imageURL, input: inputURL))
        let environment = ["SSL_CERT_FILE": TestPKI.caFile]
        let cache = ["--cache-dir", sandbox.root + "/cache"]
        func run(_ arguments: [String]) throws -> RunResult {
            try GvltBinary.run(
                ["run", "--accel", "tcg"] + arguments + cache, in: sandbox, environment: environment, timeout: 300)
        }

        let result = try run(["-f", "task.yaml", "--output-dir", "results"])
        XCTAssertEqual(result.status, 0, result.stderr + result.stdout)
        XCTAssertTrue(result.stdout.contains("prover says: from-task"), result.stdout)
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("results/out.txt"), encoding: .utf8), "got remote-witness\n")
        XCTAssertTrue(plain.log.contains("GET /prover.img"), plain.log)
        XCTAssertTrue(secure.log.contains("GET /in.txt"), secure.log)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "downloads left behind")

        // Again: the server is asked whether the image changed (304) and nothing is downloaded; the
        // printed command boots the cached image and the input is in the prepared share.
        let again = try run(["-f", "task.yaml", "--print-qemu-command", "--shares-dir", "shares"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(plain.log.contains(" 304"), plain.log)
        XCTAssertTrue(again.stdout.contains("/blobs/sha256/\(imageSHA)"), again.stdout)
        XCTAssertEqual(
            try String(contentsOfFile: sandbox.path("shares/input/in.txt"), encoding: .utf8), "remote-witness\n")

        // The sha256 pins: the right one passes (from the cache, without asking), a wrong one is refused.
        let requests = plain.log.split(separator: "\n").count
        try sandbox.write("pinned.yaml", task(image: imageURL + "#sha256=\(imageSHA)", input: inputURL))
        let pinned = try run(["-f", "pinned.yaml", "--print-qemu-command", "--shares-dir", "s2"])
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        XCTAssertEqual(plain.log.split(separator: "\n").count, requests, "a cached sha256 needs no request")
        let wrong = String(repeating: "0", count: 64)
        try sandbox.write("wrong.yaml", task(image: imageURL + "#sha256=\(wrong)", input: inputURL))
        let refused = try run(["-f", "wrong.yaml", "--print-qemu-command", "--shares-dir", "s3"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("has sha256 \(imageSHA), not the \(wrong) asked for"), refused.stderr)
        let flagRefused = try run([
            "-f", "task.yaml", "--image-sha256", wrong, "--print-qemu-command", "--shares-dir", "s4"
        ])
        XCTAssertEqual(flagRefused.status, 1)
        XCTAssertTrue(flagRefused.stderr.contains("not the \(wrong) asked for"), flagRefused.stderr)

        // Missing files, CIDs and --offline each say what they are.
        try sandbox.write("missing.yaml", task(image: "http://127.0.0.1:\(plain.port)/nope.img", input: inputURL))
        let missing = try run(["-f", "missing.yaml"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("/nope.img was not found (HTTP 404)"), missing.stderr)
        try sandbox.write(
            "missing-input.yaml", task(image: imageURL, input: "https://127.0.0.1:\(secure.port)/gone.txt"))
        let missingInput = try run(["-f", "missing-input.yaml"])
        XCTAssertEqual(missingInput.status, 1)
        XCTAssertTrue(
            missingInput.stderr.contains(
                "input /mnt/gevulot/input/in.txt: https://127.0.0.1:\(secure.port)/gone.txt was not found (HTTP 404)"),
            missingInput.stderr)
        try sandbox.write("cid.yaml", task(image: "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", input: inputURL))
        let cid = try run(["-f", "cid.yaml"])
        XCTAssertEqual(cid.status, 1)
        XCTAssertTrue(cid.stderr.contains("is an IPFS CID, which is not supported"), cid.stderr)
        XCTAssertTrue(cid.stderr.contains("give a URL"), cid.stderr)
        let offline = try run(["-f", "task.yaml", "--offline"])
        XCTAssertEqual(offline.status, 1)
        XCTAssertTrue(
            offline.stderr.contains("is remote, and --offline keeps gvlt run from fetching it"), offline.stderr)
        // An image on the command line wins over the task's URL.
        let local = try run(["-f", "missing.yaml", www + "/prover.img", "--print-qemu-command", "--shares-dir", "s5"])
        XCTAssertEqual(local.status, 0, local.stderr)
        XCTAssertEqual(sandbox.listing(sandbox.root + "/cache/tmp"), [], "a partial download was left")
    }
}
