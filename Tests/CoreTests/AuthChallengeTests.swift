import Core
import XCTest

final class AuthChallengeTests: XCTestCase {
    func testDockerHubsBearerChallenge() {
        let parsed = AuthChallenge.parse(
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
        )
        XCTAssertEqual(
            parsed,
            [
                AuthChallenge(
                    scheme: "bearer",
                    parameters: [
                        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/alpine:pull"
                    ])
            ])
    }

    func testSeveralChallengesTokensAndEscapes() {
        let parsed = AuthChallenge.parse(
            #"Basic realm="Registry \"R\"", Bearer realm=https://h/t, error=invalid_token"#)
        XCTAssertEqual(parsed.map(\.scheme), ["basic", "bearer"])
        XCTAssertEqual(parsed[0].parameters["realm"], #"Registry "R""#)
        XCTAssertEqual(parsed[1].parameters["realm"], "https://h/t")
        XCTAssertEqual(parsed[1].parameters["error"], "invalid_token")
        XCTAssertEqual(AuthChallenge.parse("Basic").map(\.scheme), ["basic"])
        XCTAssertEqual(AuthChallenge.parse("BASIC REALM=x")[0].parameters["realm"], "x", "names are case-insensitive")
    }

    func testMalformedHeadersGiveWhatWasRead() {
        XCTAssertEqual(AuthChallenge.parse(""), [])
        XCTAssertEqual(AuthChallenge.parse(#"Bearer realm="unterminated"#).first?.scheme, "bearer")
        XCTAssertEqual(AuthChallenge.parse(",,,"), [])
        // A huge header is read up to its bound, not without end.
        _ = AuthChallenge.parse("Bearer " + String(repeating: "a=b,", count: 100_000))
    }
}
