import Foundation
import TestSupport
import XCTest

/// Registry pulls without an engine, against Debian's docker-registry (CNCF distribution 2.8) on
/// 127.0.0.1 with TLS from a test CA: anonymous, htpasswd Basic and bearer-token setups; images
/// pushed with skopeo (setup only); what gvlt asked for is read from the registry's access log.
final class RegistryPullTests: XCTestCase {
    typealias Images = LinuxVMImageTests

    // MARK: Fixtures

    /// The bundled hello-prover, static, built once.
    static let helloProver: Result<Data, Error> = Result {
        let work = NSTemporaryDirectory() + "gvlt-test-hello-" + UUID().uuidString
        RemoveAtEnd.register(work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try Shell.run([
            "gcc", "-static", "-O2", "-o", work + "/hello-prover",
            LoopbackRegistry.repository + "/examples/hello-prover/hello-prover.c"
        ])
        return try Data(contentsOf: URL(fileURLWithPath: work + "/hello-prover"))
    }

    /// The base layer both images share: same members, so the same gzip bytes and digest.
    static func baseLayer() -> LayerFixture {
        var noise = Data(count: 256 << 10)
        for index in noise.indices { noise[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
        return LayerFixture([
            .dir("etc"), .file("etc/os-release", "ID=gvlt-test\n"), .dir("usr"), .dir("usr/share"),
            TarMember("usr/share/base.bin", .file(noise))
        ])
    }

    /// hello-prover on the shared base: the witness's sha256 goes to /mnt/gevulot/output/proof.txt.
    static func helloLayout(_ directory: String) throws {
        let layout = try OCILayoutBuilder(directory: directory)
        try layout.writeIndex([
            try layout.image(
                [
                    baseLayer(),
                    LayerFixture([
                        .dir("usr/bin"), TarMember("usr/bin/hello-prover", .file(try helloProver.get()), mode: 0o755)
                    ])
                ], config: ["Entrypoint": ["/usr/bin/hello-prover"], "Cmd": ["/mnt/gevulot/input/witness.txt"]])
        ])
    }

    /// Three layers, the first of them hello-prover's base.
    static func sharedBaseLayout(_ directory: String) throws {
        let layout = try OCILayoutBuilder(directory: directory)
        try layout.writeIndex([
            try layout.image(
                [
                    baseLayer(), LayerFixture([.dir("opt"), .file("opt/second", "second layer\n")]),
                    LayerFixture([.file("opt/third", "third layer\n"), .whiteout("opt/second")], compression: .zstd)
                ], config: ["Entrypoint": ["/bin/true"]])
        ])
    }

    /// One tag, two platforms (an index nested under the layout's index.json, as skopeo --all copies it).
    static func twoPlatformLayout(_ directory: String) throws -> [String: String] {
        let layout = try OCILayoutBuilder(directory: directory)
        var digests: [String: String] = [:]
        var manifests: [[String: Any]] = []
        for architecture in ["amd64", "arm64"] {
            let descriptor = try layout.image(
                [LayerFixture([.file("arch", architecture + "\n")])], architecture: architecture,
                config: ["Entrypoint": ["/bin/\(architecture)"]], tag: nil, platformInIndex: true)
            digests[architecture] = descriptor["digest"] as? String
            manifests.append(descriptor)
        }
        let index = try layout.json([
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
        ])
        let (digest, size) = try layout.putBlob(index)
        try layout.writeIndex([
            [
                "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
                "annotations": ["org.opencontainers.image.ref.name": "latest"]
            ]
        ])
        digests["index"] = digest
        return digests
    }

    /// A cache of its own for a test, holding the Debian kernel the other tests fetched (hard links),
    /// so that builds need no apt and blob counts start from nothing.
    static func cache(in sandbox: Sandbox) throws -> String {
        _ = try Images.runImage.get()
        let cache = sandbox.root + "/cache"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try Shell.run(["cp", "-al", Images.kernelCache + "/entries", cache + "/entries"])
        return cache
    }

    /// PATH without podman, skopeo and buildah: links to every other program on it.
    static func pathWithoutEngines(in sandbox: Sandbox) throws -> String {
        let bin = sandbox.root + "/no-engine-bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            where !["podman", "skopeo", "buildah", "docker"].contains(name) {
                _ = try? FileManager.default.createSymbolicLink(
                    atPath: bin + "/" + name, withDestinationPath: directory + "/" + name)
            }
        }
        return bin
    }

    func gvlt(_ arguments: [String], _ sandbox: Sandbox, environment: [String: String] = [:], timeout: Double = 600)
        throws -> RunResult
    {
        try GvltBinary.run(arguments, in: sandbox, environment: environment, timeout: timeout)
    }

    func build(
        _ source: String, _ sandbox: Sandbox, cache: String, output: String, extra: [String] = [],
        environment: [String: String] = [:]
    ) throws -> RunResult {
        let (initBinary, _) = try Images.built.get()
        return try gvlt(
            [
                "build", "--backend", "linuxvm", "--container", source, "-o", output, "--init-binary", initBinary,
                "--cache-dir", cache, "--cert-dir", TestPKI.certDirectory, "--json"
            ] + extra, sandbox, environment: environment)
    }

    /// The layer digests of a layout's only image.
    static func layerDigests(_ layout: String) throws -> [String] {
        func document(_ path: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        }
        let index = try document(layout + "/index.json")
        let digest = (index["manifests"] as! [[String: Any]])[0]["digest"] as! String
        let manifest = try document(layout + "/blobs/sha256/" + digest.dropFirst(7))
        return (manifest["layers"] as! [[String: Any]]).map { $0["digest"] as! String }
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    // MARK: Tests

    /// The hello-prover pulled by tag with no engine on PATH boots and proves; the same image by
    /// digest is the same bytes; a rebuild asks the registry for no blob; and the image equals the
    /// one built from the OCI layout the registry was fed from.
    func testRegistryImageBootsAndProvesWithoutAnEngineAndRebuildsFromTheCache() throws {
        let sandbox = try Sandbox()
        try Self.helloLayout(sandbox.path("hello"))
        let registry = try LoopbackRegistry()
        try registry.push(layout: sandbox.path("hello"), tag: "latest", as: "hello-prover:latest")
        let cache = try Self.cache(in: sandbox)
        let path = try Self.pathWithoutEngines(in: sandbox)
        let environment = ["PATH": path]

        let first = try build(
            "\(registry.host)/hello-prover:latest", sandbox, cache: cache, output: "tag.img", environment: environment)
        XCTAssertEqual(first.status, 0, first.stderr)
        let firstReport = Self.json(first.stdout)
        XCTAssertEqual(
            registry.blobRequests().count, 3,
            "config and two layers:\n" + registry.gvltRequests().joined(separator: "\n"))
        XCTAssertTrue(first.stderr.contains("layer 2/2"), first.stderr)

        // Boots as a worker would, and proves.
        let witness = LoopbackRegistry.repository + "/examples/hello-prover/witness.txt"
        let run = try gvlt(
            ["run", "tag.img", "--accel", "tcg", "--input", witness + ":witness.txt", "--output", "proof.txt"], sandbox,
            environment: environment, timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr + run.stdout)
        let expected = TarBuilder.sha256(try Data(contentsOf: URL(fileURLWithPath: witness))).dropFirst(7)
        XCTAssertEqual(try String(contentsOfFile: sandbox.path("output/proof.txt"), encoding: .utf8), expected + "\n")

        // A second build of the same tag: manifests may be asked for, blobs may not.
        let requestsBefore = registry.gvltRequests().count
        let second = try build(
            "docker://\(registry.host)/hello-prover:latest", sandbox, cache: cache, output: "again.img",
            environment: environment)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(
            registry.blobRequests().count, 3,
            "the rebuild fetched a blob:\n" + registry.gvltRequests().joined(separator: "\n"))
        let rebuildRequests = registry.gvltRequests().dropFirst(requestsBefore)
        XCTAssertTrue(
            rebuildRequests.allSatisfy { $0.contains("/manifests/") }, rebuildRequests.joined(separator: "\n"))
        XCTAssertEqual(Self.json(second.stdout)["sha256"] as? String, firstReport["sha256"] as? String)

        // By digest: the same bytes, and nothing to ask the registry at all.
        let index =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: sandbox.path("hello/index.json")))) as! [String: Any]
        let digest = ((index["manifests"] as! [[String: Any]])[0]["digest"] as! String)
        let before = registry.gvltRequests().count
        let pinned = try build(
            "\(registry.host)/hello-prover@\(digest)", sandbox, cache: cache, output: "digest.img",
            environment: environment)
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        XCTAssertEqual(Self.json(pinned.stdout)["sha256"] as? String, firstReport["sha256"] as? String)
        XCTAssertEqual(registry.gvltRequests().count, before, "a cached digest needs no request")

        // The registry source gives the bytes the OCI layout it came from gives.
        let fromLayout = try build("oci:hello:latest", sandbox, cache: cache, output: "layout.img")
        XCTAssertEqual(fromLayout.status, 0, fromLayout.stderr)
        XCTAssertEqual(Self.json(fromLayout.stdout)["sha256"] as? String, firstReport["sha256"] as? String)
        XCTAssertEqual(sandbox.listing(sandbox.tmp), [], "scratch left behind")
        XCTAssertEqual(sandbox.listing(cache + "/tmp"), [], "downloads left in the cache's tmp")
    }

    /// An image sharing its base with one already pulled fetches only its own layers; a two-platform
    /// index resolves to --platform; `gvlt pull -o oci:` writes a layout `gvlt export` reads, with the
    /// tree the registry source gives.
    func testSharedBasesIndexesAndPulledLayouts() throws {
        let sandbox = try Sandbox()
        try Self.helloLayout(sandbox.path("hello"))
        try Self.sharedBaseLayout(sandbox.path("shared"))
        let platforms = try Self.twoPlatformLayout(sandbox.path("multi"))
        let registry = try LoopbackRegistry()
        try registry.push(layout: sandbox.path("hello"), tag: "latest", as: "hello-prover:latest")
        try registry.push(layout: sandbox.path("shared"), tag: "latest", as: "tools/shared:1.0")
        try registry.push(layout: sandbox.path("multi"), tag: "latest", as: "multi:latest", all: true)
        let cache = sandbox.root + "/cache"
        let common = ["--cache-dir", cache, "--cert-dir", TestPKI.certDirectory, "--json"]

        let hello = try gvlt(["pull", "\(registry.host)/hello-prover:latest", "-o", "oci:pulled:v1"] + common, sandbox)
        XCTAssertEqual(hello.status, 0, hello.stderr)
        let baseDigest = (Self.json(hello.stdout)["layers"] as? Int).map { _ in "" }
        XCTAssertNotNil(baseDigest)
        let shared = try gvlt(["pull", "\(registry.host)/tools/shared:1.0"] + common, sandbox)
        XCTAssertEqual(shared.status, 0, shared.stderr)
        let sharedReport = Self.json(shared.stdout)
        XCTAssertEqual(sharedReport["layers"] as? Int, 3)
        // Its base was in the cache: only its config and two layers of its own came over the wire.
        let sharedRequests = registry.blobRequests().filter { $0.contains("/v2/tools/shared/") }
        XCTAssertEqual(sharedRequests.count, 3, sharedRequests.joined(separator: "\n"))
        XCTAssertLessThan(sharedReport["downloadedBytes"] as? Int ?? .max, sharedReport["bytes"] as? Int ?? 0)
        XCTAssertTrue(shared.stderr.contains("cached"), shared.stderr)

        // The pulled layout exports to the same tree as the registry itself.
        let fromLayout = try gvlt(["export", "--container", "oci:pulled:v1", "-o", "a.tar", "--json"], sandbox)
        XCTAssertEqual(fromLayout.status, 0, fromLayout.stderr)
        let fromRegistry = try gvlt(
            ["export", "--container", "\(registry.host)/hello-prover:latest", "-o", "b.tar"] + common, sandbox)
        XCTAssertEqual(fromRegistry.status, 0, fromRegistry.stderr)
        XCTAssertEqual(
            Self.json(fromLayout.stdout)["sha256"] as? String, Self.json(fromRegistry.stdout)["sha256"] as? String)
        XCTAssertTrue(
            try TarListing.of(sandbox.path("a.tar")).contains { $0.hasPrefix("usr/bin/hello-prover file 0755") })
        // skopeo reads it too.
        XCTAssertNoThrow(try Shell.run(["skopeo", "inspect", "oci:" + sandbox.path("pulled") + ":v1"]))

        // A registry that redirects blob GETs to storage on another origin (as Docker Hub does).
        let front = try RedirectFront(registry: registry)
        let redirected = try gvlt(
            [
                "pull", "127.0.0.1:\(front.port)/tools/shared:1.0", "--cache-dir", sandbox.root + "/cache-front",
                "--cert-dir", TestPKI.certDirectory, "--json"
            ], sandbox)
        XCTAssertEqual(redirected.status, 0, redirected.stderr)
        XCTAssertEqual(front.log.components(separatedBy: " 307 redirected").count - 1, 4, front.log)
        XCTAssertEqual(
            registry.blobRequests().filter { $0.contains("/v2/tools/shared/") }.count, 3 + 4,
            registry.gvltRequests().joined(separator: "\n"))

        // The index: amd64 by default, arm64 when asked.
        let amd = try gvlt(["pull", "docker://\(registry.host)/multi:latest"] + common, sandbox)
        XCTAssertEqual(amd.status, 0, amd.stderr)
        XCTAssertEqual(Self.json(amd.stdout)["manifest"] as? String, platforms["amd64"])
        XCTAssertEqual(Self.json(amd.stdout)["digest"] as? String, platforms["index"])
        let arm = try gvlt(["pull", "\(registry.host)/multi:latest", "--platform", "linux/arm64"] + common, sandbox)
        XCTAssertEqual(Self.json(arm.stdout)["manifest"] as? String, platforms["arm64"], arm.stderr)
        let none = try gvlt(["pull", "\(registry.host)/multi:latest", "--platform", "linux/s390x"] + common, sandbox)
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("linux/amd64, linux/arm64"), none.stderr)
    }

    /// A connection cut mid-blob resumes where it stopped (a Range request); a tampered blob is
    /// refused and nothing of it enters the cache.
    func testDroppedConnectionsResumeAndTamperedBlobsStayOut() throws {
        let sandbox = try Sandbox()
        // A layer of 6 MiB that does not compress: the cut lands inside it.
        let big = FileHandle(forReadingAtPath: "/dev/urandom")!.readData(ofLength: 6 << 20)
        let layout = try OCILayoutBuilder(directory: sandbox.path("big"))
        try layout.writeIndex([try layout.image([LayerFixture([TarMember("big.bin", .file(big))], compression: .none)])]
        )
        let registry = try LoopbackRegistry()
        try registry.push(layout: sandbox.path("big"), tag: "latest", as: "big:latest")
        let proxy = try CuttingProxy(target: registry.host, cutAfter: 2 << 20)
        let cache = sandbox.root + "/cache"
        let pulled = try gvlt(
            [
                "pull", "127.0.0.1:\(proxy.port)/big:latest", "--cache-dir", cache, "--cert-dir", TestPKI.certDirectory,
                "--json", "--jobs", "1"
            ], sandbox)
        XCTAssertEqual(pulled.status, 0, pulled.stderr)
        XCTAssertTrue(proxy.log.contains("CUT"), proxy.log)
        XCTAssertTrue(pulled.stderr.contains("resuming"), pulled.stderr)
        let layerDigest = try Self.layerDigests(sandbox.path("big"))[0]
        let layerRequests = registry.blobRequests(layerDigest)
        XCTAssertEqual(layerRequests.count, 2, layerRequests.joined(separator: "\n"))
        XCTAssertTrue(
            layerRequests.last!.contains("\" 206 "), "the second request asked for the rest: \(layerRequests)")
        XCTAssertEqual(
            TarBuilder.sha256(
                try Data(contentsOf: URL(fileURLWithPath: "\(cache)/blobs/sha256/\(layerDigest.dropFirst(7))"))),
            layerDigest)

        // The registry now serves other bytes for the layer: refused, never cached.
        let second = try OCILayoutBuilder(directory: sandbox.path("small"))
        try second.writeIndex([
            try second.image([LayerFixture([.file("payload", String(repeating: "p", count: 100_000))])])
        ])
        try registry.push(layout: sandbox.path("small"), tag: "latest", as: "small:latest")
        let smallLayer = try Self.layerDigests(sandbox.path("small"))[0]
        let file = registry.blobFile(smallLayer)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: file))
        let tampered = try gvlt(
            ["pull", "\(registry.host)/small:latest", "--cache-dir", cache, "--cert-dir", TestPKI.certDirectory],
            sandbox)
        XCTAssertEqual(tampered.status, 1, tampered.stderr)
        XCTAssertTrue(tampered.stderr.contains("does not match its digest"), tampered.stderr)
        XCTAssertTrue(tampered.stderr.contains(String(smallLayer.prefix(19))), tampered.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(cache)/blobs/sha256/\(smallLayer.dropFirst(7))"))
        XCTAssertEqual(sandbox.listing(cache + "/tmp"), [], "a partial download was left")
        let build = try self.build("\(registry.host)/small:latest", sandbox, cache: cache, output: "t.img")
        XCTAssertEqual(build.status, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("t.img")))
    }

    /// Each failure names itself: wrong credentials (Basic and token), a missing tag, an unknown
    /// host, an untrusted certificate. --offline fails naming what is missing with a cold cache and
    /// needs no request with a warm one. Credentials never reach the output.
    func testAuthenticationFailuresOfflineAndSecrets() throws {
        let sandbox = try Sandbox()
        try Self.sharedBaseLayout(sandbox.path("img"))
        let secret = "s3cret-\(UUID().uuidString.prefix(8))"
        let basic = try LoopbackRegistry(auth: .htpasswd(user: "alice", password: secret))
        try basic.push(layout: sandbox.path("img"), tag: "latest", as: "private/img:v1")
        let token = try LoopbackRegistry(auth: .token(users: [("bob", secret)]))
        try token.push(layout: sandbox.path("img"), tag: "latest", as: "private/img:v1")
        let cache = sandbox.root + "/cache"
        let common = ["--cache-dir", cache, "--cert-dir", TestPKI.certDirectory, "-v"]
        var outputs: [String] = []
        func pull(_ reference: String, _ extra: [String] = [], environment: [String: String] = [:]) throws -> RunResult
        {
            let result = try gvlt(["pull", reference] + common + extra, sandbox, environment: environment, timeout: 120)
            outputs.append(result.stdout + result.stderr)
            return result
        }

        let anonymous = try pull("\(basic.host)/private/img:v1")
        XCTAssertEqual(anonymous.status, 1)
        XCTAssertTrue(anonymous.stderr.contains("needs credentials"), anonymous.stderr)
        let wrong = try pull("\(basic.host)/private/img:v1", ["--creds", "alice:wrong-\(secret)"])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(
            wrong.stderr.contains("the credentials of `alice` from --creds were refused (HTTP 401"), wrong.stderr)
        let right = try pull("\(basic.host)/private/img:v1", ["--creds", "alice:\(secret)"])
        XCTAssertEqual(right.status, 0, right.stderr)

        // Token auth, with credentials from an auth file (containers-auth.json).
        try sandbox.write(
            "auth.json",
            Data(
                #"{"auths": {"\#(token.host)": {"auth": "\#(Data("bob:\(secret)".utf8).base64EncodedString())"}}}"#.utf8
            ))
        let viaFile = try pull(
            "\(token.host)/private/img:v1", environment: ["REGISTRY_AUTH_FILE": sandbox.path("auth.json")])
        XCTAssertEqual(viaFile.status, 0, viaFile.stderr)
        XCTAssertTrue(token.tokenLog.contains("Basic"), token.tokenLog)
        try sandbox.write(
            "bad-auth.json",
            Data(#"{"auths": {"\#(token.host)": {"auth": "\#(Data("bob:nope".utf8).base64EncodedString())"}}}"#.utf8))
        let tokenRefused = try pull(
            "\(token.host)/private/img:v1", ["--cache-dir", sandbox.root + "/cold"],
            environment: ["REGISTRY_AUTH_FILE": sandbox.path("bad-auth.json")])
        XCTAssertEqual(tokenRefused.status, 1)
        XCTAssertTrue(
            tokenRefused.stderr.contains(
                "the credentials of `bob` from \(sandbox.path("bad-auth.json")) were refused (HTTP 401)"),
            tokenRefused.stderr)
        // An identity token (docker login's refresh token) and a credential helper.
        try sandbox.write(
            "id-auth.json", Data(#"{"auths": {"\#(token.host)": {"identitytoken": "refresh-bob"}}}"#.utf8))
        let identity = try pull(
            "\(token.host)/private/img:v1", ["--cache-dir", sandbox.root + "/cold2"],
            environment: ["REGISTRY_AUTH_FILE": sandbox.path("id-auth.json")])
        XCTAssertEqual(identity.status, 0, identity.stderr)
        XCTAssertTrue(token.tokenLog.contains("refresh_token"), token.tokenLog)
        try sandbox.writeExecutable(
            "helpers/docker-credential-gvlttest",
            """
            #!/bin/sh
            read server
            [ "$1" = get ] && [ "$server" = "\(token.host)" ] && printf '{"ServerURL":"%s","Username":"bob","Secret":"\(secret)"}' "$server" && exit 0
            echo "credentials not found in native keychain"; exit 1

            """)
        try sandbox.write("helper-auth.json", Data(#"{"credHelpers": {"\#(token.host)": "gvlttest"}}"#.utf8))
        let helper = try pull(
            "\(token.host)/private/img:v1", ["--cache-dir", sandbox.root + "/cold3"],
            environment: [
                "REGISTRY_AUTH_FILE": sandbox.path("helper-auth.json"),
                "PATH": sandbox.path("helpers") + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "")
            ])
        XCTAssertEqual(helper.status, 0, helper.stderr)

        let missingTag = try pull("\(basic.host)/private/img:v2", ["--creds", "alice:\(secret)"])
        XCTAssertEqual(missingTag.status, 1)
        XCTAssertTrue(missingTag.stderr.contains("private/img has no tag `v2`"), missingTag.stderr)
        XCTAssertTrue(missingTag.stderr.contains("tags there: v1"), missingTag.stderr)
        let unknownHost = try pull("registry.gvlt-test.invalid/private/img:v1")
        XCTAssertEqual(unknownHost.status, 1)
        XCTAssertTrue(
            unknownHost.stderr.contains("cannot resolve the host registry.gvlt-test.invalid"), unknownHost.stderr)
        let untrusted = try gvlt(["pull", "\(basic.host)/private/img:v1", "--cache-dir", cache], sandbox)
        XCTAssertEqual(untrusted.status, 1)
        XCTAssertTrue(untrusted.stderr.contains("TLS certificate of \(basic.host) is not trusted"), untrusted.stderr)
        XCTAssertTrue(untrusted.stderr.contains("--cert-dir"), untrusted.stderr)
        // $SSL_CERT_FILE adds the CA as --cert-dir does.
        let viaEnvironment = try gvlt(
            ["pull", "\(basic.host)/private/img:v1", "--cache-dir", cache, "--creds", "alice:\(secret)"], sandbox,
            environment: ["SSL_CERT_FILE": TestPKI.caFile])
        XCTAssertEqual(viaEnvironment.status, 0, viaEnvironment.stderr)
        // --tls-verify=false: for a loopback registry only, with a warning.
        let unverified = try gvlt(
            [
                "pull", "\(basic.host)/private/img:v1", "--cache-dir", cache, "--creds", "alice:\(secret)",
                "--tls-verify=false"
            ],
            sandbox)
        XCTAssertEqual(unverified.status, 0, unverified.stderr)
        XCTAssertTrue(unverified.stderr.contains("TLS verification is off for \(basic.host)"), unverified.stderr)
        let refusedUnverified = try gvlt(
            ["pull", "ghcr.io/o/r:v1", "--tls-verify=false", "--cache-dir", cache], sandbox)
        XCTAssertEqual(refusedUnverified.status, 1)
        XCTAssertTrue(
            refusedUnverified.stderr.contains("--tls-verify=false is refused for ghcr.io"), refusedUnverified.stderr)

        // Offline: a warm cache answers without a request; a cold one names what is missing.
        let before = basic.gvltRequests().count
        let offline = try pull("\(basic.host)/private/img:v1", ["--offline", "--json"])
        XCTAssertEqual(offline.status, 0, offline.stderr)
        XCTAssertEqual(basic.gvltRequests().count, before, "--offline reached the registry")
        let cold = try pull("\(basic.host)/private/img:v1", ["--offline", "--cache-dir", sandbox.root + "/empty"])
        XCTAssertEqual(cold.status, 1)
        XCTAssertTrue(cold.stderr.contains("--offline: \(basic.host)/private/img:v1 is not in the cache"), cold.stderr)

        for output in outputs {
            XCTAssertFalse(output.contains(secret), "a secret was printed:\n\(output)")
            XCTAssertFalse(output.contains(Data("bob:\(secret)".utf8).base64EncodedString()), output)
            XCTAssertFalse(output.contains(Data("alice:\(secret)".utf8).base64EncodedString()), output)
        }
        XCTAssertFalse(token.tokenLog.contains(secret))
    }

    /// A pull that crashes (no cleanup runs) leaves its download in the cache's tmp and its layout in
    /// a staging directory; neither is a cache entry or a layout, and the next pull sweeps both.
    func testACrashedPullLeavesNothingOnceTheNextPullSweeps() throws {
        let sandbox = try Sandbox()
        try Self.sharedBaseLayout(sandbox.path("img"))
        let registry = try LoopbackRegistry()
        try registry.push(layout: sandbox.path("img"), tag: "latest", as: "img:v1")
        let cache = sandbox.root + "/cache"
        let pull = [
            "pull", "\(registry.host)/img:v1", "--cache-dir", cache, "--cert-dir", TestPKI.certDirectory, "-o",
            "oci:out"
        ]
        for step in ["pull-blob", "pull-layout"] {
            let crashed = try gvlt(
                pull, sandbox, environment: ["GVLT_TEST_TRAP_AT": step, "SWIFT_BACKTRACE": "enable=no"])
            XCTAssertTrue(crashed.stderr.contains("GVLT_TEST_TRAP_AT=\(step)"), "\(step): \(crashed.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.path("out")), "\(step): a partial layout")
            if step == "pull-blob" {
                XCTAssertFalse(sandbox.listing(cache + "/tmp").isEmpty, "the crashed pull had a staging directory")
                let cached = Set(sandbox.listing(cache + "/blobs/sha256"))
                for layer in try Self.layerDigests(sandbox.path("img")) {
                    XCTAssertFalse(cached.contains(String(layer.dropFirst(7))), "a layer entered the cache unpublished")
                }
            }
        }
        XCTAssertTrue(sandbox.listing(sandbox.work).contains { $0.hasPrefix("gvlt-layout-") })
        let next = try gvlt(pull, sandbox)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(sandbox.listing(cache + "/tmp"), [], "abandoned downloads were not swept")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: sandbox.work).filter { $0 != "img" }.sorted(), ["out"])
    }

    /// registries.conf: a mirror serves a name whose own registry does not exist; a blocked prefix
    /// is refused by name.
    func testRegistriesConfMirrorsAndBlocks() throws {
        let sandbox = try Sandbox()
        try Self.sharedBaseLayout(sandbox.path("img"))
        let registry = try LoopbackRegistry()
        try registry.push(layout: sandbox.path("img"), tag: "latest", as: "mirrored/img:v1")
        try sandbox.write(
            "registries.conf",
            Data(
                """
                # gvlt's test: example.invalid does not exist; its images are on the test registry.
                [[registry]]
                prefix = "registry.gvlt-test.invalid/team"
                location = "registry.gvlt-test.invalid/team"
                [[registry.mirror]]
                location = "\(registry.host)/mirrored"

                [[registry]]
                location = "blocked.gvlt-test.invalid"
                blocked = true

                """.utf8))
        let environment = ["CONTAINERS_REGISTRIES_CONF": sandbox.path("registries.conf")]
        let common = ["--cache-dir", sandbox.root + "/cache", "--cert-dir", TestPKI.certDirectory, "--json"]
        let mirrored = try gvlt(
            ["pull", "registry.gvlt-test.invalid/team/img:v1"] + common, sandbox, environment: environment)
        XCTAssertEqual(mirrored.status, 0, mirrored.stderr)
        XCTAssertEqual(Self.json(mirrored.stdout)["pulledFrom"] as? String, "\(registry.host)/mirrored/img:v1")
        let blocked = try gvlt(["pull", "blocked.gvlt-test.invalid/x:1"] + common, sandbox, environment: environment)
        XCTAssertEqual(blocked.status, 1)
        XCTAssertTrue(blocked.stderr.contains("is blocked by \(sandbox.path("registries.conf"))"), blocked.stderr)
    }
}
