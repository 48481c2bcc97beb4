import Core
import CoreNetwork
import XCTest

/// References are normalised as docker normalises them (distribution's reference grammar).
final class ImageReferenceTests: XCTestCase {
    func parse(_ text: String) throws -> ImageReference { try ImageReference(parsing: text) }

    func testDockerHubShortNamesAndHosts() throws {
        XCTAssertEqual(try parse("alpine").description, "docker.io/library/alpine:latest")
        XCTAssertEqual(try parse("alpine:3.20").description, "docker.io/library/alpine:3.20")
        XCTAssertEqual(try parse("docker://alpine").description, "docker.io/library/alpine:latest")
        XCTAssertEqual(
            try parse("nvidia/cuda:12.6.2-runtime-ubuntu24.04").description,
            "docker.io/nvidia/cuda:12.6.2-runtime-ubuntu24.04")
        XCTAssertEqual(try parse("docker.io/alpine").repository, "library/alpine")
        XCTAssertEqual(try parse("index.docker.io/library/alpine").registry, "docker.io")
        XCTAssertEqual(try parse("docker.io/library/alpine").apiHost, "registry-1.docker.io")
        let local = try parse("127.0.0.1:5000/hello-prover:latest")
        XCTAssertEqual(local.registry, "127.0.0.1:5000")
        XCTAssertEqual(local.repository, "hello-prover")
        XCTAssertEqual(local.apiHost, "127.0.0.1:5000")
        XCTAssertEqual(try parse("localhost/app").registry, "localhost")
        XCTAssertEqual(try parse("ghcr.io/acme/team/prover:v3").repository, "acme/team/prover")
        // A first component without `.`, `:` or `localhost` is a Docker Hub namespace.
        XCTAssertEqual(try parse("myhost/app").description, "docker.io/myhost/app:latest")
        XCTAssertEqual(try parse("[::1]:5000/app").registry, "[::1]:5000")
    }

    func testDigestsPin() throws {
        let hex = String(repeating: "ab", count: 32)
        let pinned = try parse("ghcr.io/o/r@sha256:\(hex)")
        XCTAssertNil(pinned.tag)
        XCTAssertEqual(pinned.manifestReference, "sha256:\(hex)")
        let both = try parse("ghcr.io/o/r:v1@sha256:\(hex)")
        XCTAssertEqual(both.tag, "v1")
        XCTAssertEqual(both.manifestReference, "sha256:\(hex)", "the digest wins over the tag")
        XCTAssertEqual(both.description, "ghcr.io/o/r:v1@sha256:\(hex)")
    }

    func testMalformedReferencesAreRefusedByName() {
        for bad in [
            "", "alpine:", "alpine@sha256:123", "a//b", "-lead/x", "host:99999/x", "alpine:bad/tag",
            "host:port/x", "alpine:" + String(repeating: "t", count: 129), "white space", "a..b/c"
        ] {
            XCTAssertThrowsError(try parse(bad), bad) { error in
                XCTAssertTrue("\(error)".contains("is not an image reference"), "\(bad): \(error)")
            }
        }
        XCTAssertThrowsError(try parse("alpine@md5:abc")) { XCTAssertTrue("\($0)".contains("md5"), "\($0)") }
    }

    func testContainerFlagTellsTransportsFromReferences() throws {
        let access = RegistryAccess(
            cache: CacheDirectory(root: "/nonexistent"), credentials: CredentialStore(files: [], environment: [:]),
            registriesConf: RegistriesConf())
        let registry: (ImageReference) throws -> ImageSource = { RegistrySource(reference: $0, access: access) }
        XCTAssertTrue(try ContainerReference.parse("oci:./img:latest", registry: registry) is OCILayoutSource)
        XCTAssertTrue(
            try ContainerReference.parse("containers-storage:localhost/x", registry: registry)
                is ContainersStorageSource)
        let pulled = try ContainerReference.parse("127.0.0.1:5000/hello:v1", registry: registry)
        XCTAssertEqual((pulled as? RegistrySource)?.reference.description, "127.0.0.1:5000/hello:v1")
        XCTAssertEqual(
            (try ContainerReference.parse("docker://busybox", registry: registry) as? RegistrySource)?.reference
                .description,
            "docker.io/library/busybox:latest")
        XCTAssertThrowsError(try ContainerReference.parse("docker:busybox", registry: registry)) {
            XCTAssertTrue("\($0)".contains("docker://"), "\($0)")
        }
        XCTAssertThrowsError(try ContainerReference.parse("oic:./x/Y", registry: registry)) {
            XCTAssertTrue("\($0)".contains("neither TRANSPORT:REF nor an image reference"), "\($0)")
        }
    }
}
