import Core
import XCTest

final class RuntimeDefaultsTests: XCTestCase {
    let passwd = """
        root:x:0:0:root:/root:/bin/bash
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        prover:x:1000:1000::/home/prover:/bin/sh
        nohome:x:1001:1001:::/bin/sh
        """

    func testPathAndHomeAreAddedOnlyWhereMissing() {
        let bare = RuntimeDefaults.apply(to: RunSpec(command: "/app"), passwd: passwd)
        XCTAssertEqual(
            bare.env,
            [
                RunSpec.EnvVar(key: "PATH", value: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                RunSpec.EnvVar(key: "HOME", value: "/root")
            ])
        let given = RunSpec(
            command: "/app", env: [.init(key: "PATH", value: "/opt/bin"), .init(key: "HOME", value: "/w")])
        XCTAssertEqual(RuntimeDefaults.apply(to: given, passwd: passwd).env, given.env)
    }

    func testHomeFollowsTheUserAsRuncDecidesIt() {
        for (user, home): (String?, String) in [
            (nil, "/root"), ("0", "/root"), ("prover", "/home/prover"), ("1000", "/home/prover"),
            ("1000:1000", "/home/prover"), ("prover:staff", "/home/prover"), ("4242", "/"), ("ghost", "/"),
            ("nohome", "/"), (":1000", "/root")
        ] {
            XCTAssertEqual(RuntimeDefaults.home(of: user, passwd: passwd), home, "\(user ?? "nil")")
        }
        XCTAssertEqual(RuntimeDefaults.home(of: nil, passwd: nil), "/")
    }
}
