import Core
import XCTest

/// registries.conf through gvlt's TOML reader, and what it says about where to pull from.
final class RegistriesConfTests: XCTestCase {
    func testTOMLValuesTablesAndArraysOfTables() throws {
        let document = try TOMLReader.parse(
            #"""
            # comment
            unqualified-search-registries = ["docker.io", 'quay.io',]   # trailing comma
            short-name-mode = "enforcing"
            dotted.key = 0x1F
            "quoted key" = """
            two \
              lines"""
            literal = '''C:\path'''
            inline = { a = 1, b.c = true }
            numbers = [1_000, -2, +3, 0o17, 0b101]

            [[registry]]
            prefix = "example.com/foo"
            location = "mirror\u002eexample/bar"

            [[registry.mirror]]
            location = "m1.local"
            insecure = true

            [[registry]]
            location = "b.example"
            """#)
        guard case .object(let top) = document else { return XCTFail("not a table") }
        XCTAssertEqual(top["unqualified-search-registries"], .array([.string("docker.io"), .string("quay.io")]))
        XCTAssertEqual(top["dotted"], .object(["key": .number(31)]))
        XCTAssertEqual(top["quoted key"], .string("two lines"))
        XCTAssertEqual(top["literal"], .string(#"C:\path"#))
        XCTAssertEqual(top["inline"], .object(["a": .number(1), "b": .object(["c": .bool(true)])]))
        XCTAssertEqual(top["numbers"], .array([1000, -2, 3, 15, 5].map { .number($0) }))
        guard case .array(let registries)? = top["registry"] else { return XCTFail("no [[registry]]") }
        XCTAssertEqual(registries.count, 2)
        guard case .object(let first) = registries[0], case .array(let mirrors)? = first["mirror"] else {
            return XCTFail("no mirror")
        }
        XCTAssertEqual(first["location"], .string("mirror.example/bar"))
        XCTAssertEqual(mirrors, [.object(["location": .string("m1.local"), "insecure": .bool(true)])])
    }

    func testTOMLErrorsSayWhereAndWhat() {
        let cases: [(String, String)] = [
            ("a = 1\na = 2", "line 2"),
            ("a = 1.5", "floating-point"),
            ("a = 1979-05-27", "dates"),
            ("a = \"open", "not closed"),
            ("[t]\n[t]", "defined twice"),
            ("a = [1, 2", "not closed"),
            ("a = bare", "strings are quoted"),
            ("a = \"\\q\"", "escape"),
            ("= 1", "expected a key"),
            ("a = 1 b = 2", "end of the line"),
            (String(repeating: "a = [", count: 1) + String(repeating: "[", count: 100), "nest")
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try TOMLReader.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
                XCTAssertTrue("\(error)".hasPrefix("line "), "\(error)")
            }
        }
    }

    func testPullSourcesFollowPrefixesMirrorsAndBlocks() throws {
        let conf = try RegistriesConf.parse(
            """
            [[registry]]
            prefix = "docker.io"
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.gcr.io"
            [[registry.mirror]]
            location = "digests.local:5000/hub"
            pull-from-mirror = "digest-only"

            [[registry]]
            prefix = "example.com/team"
            location = "internal:5000/team-images"
            insecure = true

            [[registry]]
            prefix = "*.evil.example"
            blocked = true

            [[registry]]
            prefix = "*.corp.example"
            [[registry.mirror]]
            location = "cache.corp.example:5000/proxy"

            [[registry]]
            prefix = "docker.io/myorg"
            location = "docker.io/myorg"
            insecure = true

            [registries.insecure]
            registries = ["legacy.local"]
            """, file: "test.conf")
        let alpine = try ImageReference(parsing: "alpine:3.20")
        XCTAssertEqual(
            try conf.pullSources(for: alpine).map(\.reference.description),
            ["mirror.gcr.io/library/alpine:3.20", "docker.io/library/alpine:3.20"])
        let pinned = try ImageReference(parsing: "alpine@sha256:" + String(repeating: "a", count: 64))
        XCTAssertEqual(try conf.pullSources(for: pinned).count, 3, "digest-only mirrors serve digests")
        let team = try conf.pullSources(for: try ImageReference(parsing: "example.com/team/app:v1"))
        XCTAssertEqual(team.map(\.reference.description), ["internal:5000/team-images/app:v1"])
        XCTAssertEqual(team.map(\.insecure), [true])
        // A prefix matches whole components only.
        XCTAssertEqual(
            try conf.pullSources(for: try ImageReference(parsing: "example.com/teamwork/app")).map(
                \.reference.registry),
            ["example.com"])
        XCTAssertThrowsError(try conf.pullSources(for: try ImageReference(parsing: "x.evil.example/app"))) {
            XCTAssertTrue("\($0)".contains("is blocked by test.conf"), "\($0)")
        }
        XCTAssertEqual(try conf.pullSources(for: try ImageReference(parsing: "legacy.local/x")).map(\.insecure), [true])
        // `insecure` holds for its prefix only, not for every image on the host.
        XCTAssertEqual(try conf.pullSources(for: try ImageReference(parsing: "myorg/app")).map(\.insecure), [true])
        XCTAssertEqual(try conf.pullSources(for: alpine).map(\.insecure), [false, false])
        // A wildcard's mirror replaces the matched host, port included.
        XCTAssertEqual(
            try conf.pullSources(for: try ImageReference(parsing: "git.corp.example:5000/team/app:1")).map(
                \.reference.description),
            ["cache.corp.example:5000/proxy/team/app:1", "git.corp.example:5000/team/app:1"])
    }

    func testBadEntriesAreRefusedByName() {
        for (text, expected) in [
            ("[[registry]]\ninsecure = true", "has neither `prefix` nor `location`"),
            ("[[registry]]\nlocation = \"a.b\"\nmirrors = []", "did you mean `mirror`"),
            ("[[registry]]\nprefix = \"*.a.b\"\nlocation = \"c.d\"", "cannot have a location"),
            (
                "[[registry]]\nlocation = \"a.b\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"some\"",
                "pull-from-mirror"
            ),
            ("registry = 1", "[[registry]]"),
            (
                "[[registry]]\nlocation = \"a.b\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"all\"",
                "cannot be combined"
            )
        ] {
            XCTAssertThrowsError(try RegistriesConf.parse(text, file: "r.conf"), text) {
                XCTAssertTrue("\($0)".contains(expected), "\(text): \($0)")
            }
        }
    }

    func testEnvironmentNamesTheOnlyFile() throws {
        let directory = NSTemporaryDirectory() + "gvlt-regconf-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("[[registry]]\nlocation = \"only.example\"\nblocked = true\n".utf8)
            .write(to: URL(fileURLWithPath: directory + "/r.conf"))
        let conf = try RegistriesConf.load(environment: [
            "CONTAINERS_REGISTRIES_CONF": directory + "/r.conf", "HOME": directory
        ])
        XCTAssertEqual(conf.files, [directory + "/r.conf"])
        XCTAssertThrowsError(try RegistriesConf.load(environment: ["CONTAINERS_REGISTRIES_CONF": directory + "/none"]))
        {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
    }
}

/// Credentials: --creds, auth files in containers/image's order, Docker's URL keys, helpers; and a
/// credential never prints its secret.
final class RegistryCredentialTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gvlt-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testLookupOrderAndKeys() throws {
        let auth = Data("alice:pa:ss".utf8).base64EncodedString()
        let repoScoped = Data("team:t".utf8).base64EncodedString()
        let first = try write(
            "auth.json",
            #"{"auths": {"ghcr.io": {"auth": "\#(auth)"}, "ghcr.io/acme/app": {"auth": "\#(repoScoped)"}}}"#)
        let docker = try write(
            "config.json",
            #"{"auths": {"https://index.docker.io/v1/": {"auth": "\#(Data("hub:h".utf8).base64EncodedString())"}, "https://quay.io/v2/": {"identitytoken": "rt"}}}"#
        )
        let store = CredentialStore(files: [first, docker], environment: [:])
        XCTAssertEqual(try store.credential(registry: "ghcr.io", repository: "other/app")?.user, "alice")
        let scoped = try store.credential(registry: "ghcr.io", repository: "acme/app")
        XCTAssertEqual(scoped?.user, "team", "the most specific key wins")
        XCTAssertEqual(try store.credential(registry: "docker.io", repository: "library/alpine")?.user, "hub")
        XCTAssertNil(try store.credential(registry: "quay.io", repository: "x")?.user)
        XCTAssertEqual(try store.credential(registry: "quay.io", repository: "x")?.origin, docker)
        XCTAssertNil(try store.credential(registry: "example.com", repository: "x"))
        if case .password(_, let password)? = try store.credential(registry: "ghcr.io", repository: "x")?.secret {
            XCTAssertEqual(password, "pa:ss", "a password may hold `:`")
        } else {
            XCTFail("no password")
        }
        let explicit = CredentialStore(
            files: [first], explicit: try RegistryCredential.parse(creds: "bob:x"), environment: [:])
        XCTAssertEqual(try explicit.credential(registry: "ghcr.io", repository: "y")?.origin, "--creds")
    }

    func testStandardPathsFollowTheEnvironment() {
        let store = CredentialStore.standard(
            explicit: nil,
            environment: ["REGISTRY_AUTH_FILE": "/a/auth.json", "XDG_RUNTIME_DIR": "/run/u", "HOME": "/h"])
        XCTAssertEqual(store.files, ["/a/auth.json", "/h/.config/containers/auth.json", "/h/.docker/config.json"])
        let defaults = CredentialStore.standard(
            explicit: nil, environment: ["XDG_RUNTIME_DIR": "/run/u", "HOME": "/h", "DOCKER_CONFIG": "/d"])
        XCTAssertEqual(
            defaults.files, ["/run/u/containers/auth.json", "/h/.config/containers/auth.json", "/d/config.json"])
    }

    func testHelpersAndBrokenFiles() throws {
        let helper = directory + "/docker-credential-fake"
        _ = try write(
            "docker-credential-fake",
            """
            #!/bin/sh
            read server
            case "$server" in
              reg.example) echo '{"ServerURL":"reg.example","Username":"h-user","Secret":"h-secret"}' ;;
              token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh"}' ;;
              *) echo "credentials not found in native keychain"; exit 1 ;;
            esac
            """)
        chmod(helper, 0o755)
        let file = try write("auth.json", #"{"credHelpers": {"reg.example": "fake"}, "credsStore": "fake"}"#)
        let store = CredentialStore(files: [file], environment: ["PATH": directory])
        let found = try store.credential(registry: "reg.example", repository: "x")
        XCTAssertEqual(found?.user, "h-user")
        XCTAssertEqual(found?.origin, "docker-credential-fake")
        XCTAssertNil(try store.credential(registry: "token.example", repository: "x")?.user)
        XCTAssertNil(try store.credential(registry: "none.example", repository: "x"))
        let missing = CredentialStore(files: [file], environment: ["PATH": "/nonexistent"])
        XCTAssertThrowsError(try missing.credential(registry: "reg.example", repository: "x")) {
            XCTAssertTrue("\($0)".contains("docker-credential-fake"), "\($0)")
        }
        let broken = try write("broken.json", #"{"auths": {"a.b": {"auth": "@@@"}}}"#)
        XCTAssertThrowsError(
            try CredentialStore(files: [broken], environment: [:]).credential(registry: "a.b", repository: "x")
        ) {
            XCTAssertTrue("\($0)".contains("not base64"), "\($0)")
        }
        let garbage = try write("garbage.json", "{nope")
        XCTAssertThrowsError(
            try CredentialStore(files: [garbage], environment: [:]).credential(registry: "a.b", repository: "x")
        ) {
            XCTAssertTrue("\($0)".contains("is not a valid auth file"), "\($0)")
        }
    }

    func testACredentialNeverPrintsItsSecret() throws {
        let credential = try RegistryCredential.parse(creds: "alice:hunter2-secret")
        for text in ["\(credential)", String(describing: credential), String(reflecting: credential), "\([credential])"]
        {
            XCTAssertFalse(text.contains("hunter2"), text)
        }
        var dumped = ""
        dump(credential, to: &dumped)
        XCTAssertFalse(dumped.contains("hunter2"), dumped)
        XCTAssertThrowsError(try RegistryCredential.parse(creds: "no-colon"))
        XCTAssertThrowsError(try RegistryCredential.parse(creds: ":pw"))
    }
}

final class TaskSourceTests: XCTestCase {
    func testClassification() {
        XCTAssertEqual(TaskSource.classify("file:///x/y.img"), .local("/x/y.img"))
        XCTAssertEqual(TaskSource.classify("relative.img"), .local("relative.img"))
        XCTAssertEqual(TaskSource.classify("https://h/p.img"), .url("https://h/p.img", sha256: nil))
        XCTAssertEqual(TaskSource.classify("HTTP://h/p.img#sha256=ABC"), .url("HTTP://h/p.img", sha256: "abc"))
        XCTAssertEqual(TaskSource.classify("http://h/p#other"), .url("http://h/p", sha256: nil))
        XCTAssertEqual(
            TaskSource.classify("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"),
            .ipfs("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"))
        let v1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
        XCTAssertEqual(TaskSource.classify(v1), .ipfs(v1))
        XCTAssertEqual(TaskSource.classify("ipfs://x"), .ipfs("ipfs://x"))
        XCTAssertEqual(TaskSource.classify("s3://bucket/x"), .unsupported("s3://bucket/x"))
    }
}
