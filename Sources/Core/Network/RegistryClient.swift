import Core
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// The OCI distribution API of one registry host: manifests by tag or digest, blobs streamed to a
/// file and checked against their digest as they arrive, resumed with `Range` after a dropped
/// connection. Authentication follows the registry's challenge: none, Basic, or the Bearer token
/// flow (a token per repository scope from the challenge's realm). Credentials go only to the
/// registry host and its token realm, never into a message.
public final class RegistryClient: @unchecked Sendable {
    /// What the user sees: `127.0.0.1:5000`, `docker.io`.
    public let registry: String
    /// Where requests go (`registry-1.docker.io` for Docker Hub).
    public let host: String
    let session: HTTPSession
    let tls: TLSTrust
    /// registries.conf `insecure` or an allowed `--tls-verify=false`: plain HTTP may be tried when
    /// HTTPS fails.
    let allowPlainHTTP: Bool
    /// The credential for the repository pulled, looked up before any request (an auth file or a
    /// helper program), so that no request waits on a file or a child process.
    let credential: RegistryCredential?
    let note: @Sendable (String) -> Void

    private let lock = NSLock()
    private var scheme: String?
    private var challenge: AuthChallenge?
    private var tokens: [String: String] = [:]

    public static let manifestAccept = [
        MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest
    ]
    /// distribution's own limit on a manifest.
    public static let manifestLimit = 4 << 20

    public init(
        registry: String, host: String, session: HTTPSession, tls: TLSTrust, allowPlainHTTP: Bool,
        credential: RegistryCredential?, note: @escaping @Sendable (String) -> Void
    ) {
        self.registry = registry
        self.host = host
        self.session = session
        self.tls = tls
        self.allowPlainHTTP = allowPlainHTTP
        self.credential = credential
        self.note = note
    }

    // MARK: Manifests

    public struct Manifest: Sendable {
        public var data: Data
        public var mediaType: String
        public var digest: ContentDigest
    }

    /// The manifest's digest from a HEAD request, without downloading it (nil when the registry does
    /// not say); registries count HEADs apart from pulls.
    public func manifestDigest(repository: String, reference: String) async throws -> ContentDigest? {
        let what = "\(repository):\(reference)"
        return try await HTTPSession.retrying(note: note) { _ in
            let response = try await request(
                .HEAD, path: "/v2/\(repository)/manifests/\(reference)", repository: repository,
                accept: Self.manifestAccept, what: "HEAD the manifest of \(what)")
            guard response.status == .ok else {
                if response.status == .notFound || response.status.code >= 400 && response.status.code < 500 {
                    return nil
                }
                throw failure(response, body: Data(), what: "HEAD the manifest of \(what)", repository: repository)
            }
            return response.headers.first(name: "docker-content-digest").flatMap {
                try? ContentDigest($0, context: "Docker-Content-Digest")
            }
        }
    }

    /// The manifest or index named by `reference` (a tag or a digest), checked against the digest
    /// when it is one, and against `Docker-Content-Digest` when the registry sends it.
    public func manifest(repository: String, reference: String) async throws -> Manifest {
        let what = repository + (reference.hasPrefix("sha256:") ? "@" : ":") + reference
        return try await HTTPSession.retrying(note: note) { _ in
            let response = try await request(
                .GET, path: "/v2/\(repository)/manifests/\(reference)", repository: repository,
                accept: Self.manifestAccept, what: "GET the manifest of \(what)")
            let data = try await HTTPSession.collect(
                response, limit: Self.manifestLimit, what: "the manifest of \(what)")
            guard response.status == .ok else {
                if response.status == .notFound, !reference.hasPrefix("sha256:") {
                    let tags = (try? await self.tags(repository: repository)) ?? []
                    throw NetworkError(
                        "registry \(registry): \(repository) has no tag `\(reference)` (HTTP 404\(Self.errorCode(data).map { " \($0)" } ?? ""))",
                        hint: tags.isEmpty
                            ? "check the repository and the tag"
                            : "tags there: \(tags.prefix(20).map { ServerText.clean($0, limit: 128) }.joined(separator: ", "))\(tags.count > 20 ? ", …" : "")",
                        status: 404)
                }
                throw failure(response, body: data, what: "GET the manifest of \(what)", repository: repository)
            }
            let actual = try ContentDigest("sha256:" + SHA256.hash(data: data).hexString, context: "manifest")
            if reference.hasPrefix("sha256:"), actual.description != reference {
                throw HostileInputError(
                    "registry \(registry): the manifest served for \(what) is \(actual), not the digest asked for")
            }
            if let header = response.headers.first(name: "docker-content-digest"), header.hasPrefix("sha256:"),
                header != actual.description
            {
                throw HostileInputError(
                    "registry \(registry): the manifest of \(what) is \(actual), but the registry says \(ServerText.clean(header, limit: 80))"
                )
            }
            var mediaType = response.headers.first(name: "content-type")?.split(separator: ";").first.map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            // The document's own mediaType wins over a generic Content-Type.
            let shape = ManifestShape(data)
            if let declared = shape.mediaType { mediaType = declared }
            if mediaType == nil || !(MediaType.indexTypes.union(MediaType.manifestTypes).contains(mediaType!)) {
                if shape.schemaVersion == 1 || mediaType?.contains("v1+") == true {
                    throw UnsupportedError(
                        "registry \(registry): \(what) is a Docker schema 1 manifest, which gvlt does not read",
                        hint: "push the image again with a current tool (it writes schema 2 or OCI manifests)")
                }
                mediaType = shape.typeByShape
            }
            return Manifest(data: data, mediaType: mediaType!, digest: actual)
        }
    }

    /// The repository's tags (for the hint of a missing tag).
    public func tags(repository: String) async throws -> [String] {
        let response = try await request(
            .GET, path: "/v2/\(repository)/tags/list", repository: repository, accept: ["application/json"],
            what: "list the tags of \(registry)/\(repository)")
        let data = try await HTTPSession.collect(response, limit: 1 << 20, what: "the tag list")
        guard response.status == .ok else { return [] }
        struct List: Decodable { var tags: [String]? }
        return (try? JSONDecoder().decode(List.self, from: data))?.tags ?? []
    }

    // MARK: Blobs

    /// Streams the blob into `path` (created or resumed), verifying `size` (or, when it is not known,
    /// staying within `maximum`) and `digest` on the way;
    /// `progress` gets the bytes written so far. On a dropped connection the download resumes where
    /// it stopped (`Range`), or starts over when the server ignores the range.
    public func download(
        repository: String, digest: ContentDigest, size: Int64?, maximum: Int64? = nil, to path: String,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        let what = "registry \(registry): blob \(digest.short) of \(repository)"
        let (_, download) = try await ResumableDownload.run(
            to: path, limit: size ?? maximum, exact: size != nil, note: note
        ) {
            try await fetch(repository: repository, digest: digest, into: &$0, what: what, progress: progress)
        }
        let actual = "sha256:" + download.sha256
        guard actual == digest.description else {
            throw HostileInputError(
                "\(what) does not match its digest (its bytes hash to \(actual)); it was not cached",
                hint:
                    "the registry, a mirror or something in between served other bytes; pull again, or report it to the registry's owner"
            )
        }
    }

    /// One request for the rest of the blob. Progress made before a failure stays in `download`.
    private func fetch(
        repository: String, digest: ContentDigest, into download: inout ResumableDownload, what: String,
        progress: @Sendable (Int64) -> Void
    ) async throws {
        // Every byte is here (the body failed after its end): only the digest is left to check.
        if download.isComplete { return }
        var extra = HTTPHeaders()
        if let range = download.rangeHeader { extra.add(name: "Range", value: range) }
        let path = "/v2/\(repository)/blobs/\(digest)"
        var response = try await request(
            .GET, path: path, repository: repository, accept: ["*/*"], headers: extra,
            what: "GET blob \(digest.short) of \(repository)")
        var url = baseURL() + path
        // Registries send blobs from storage elsewhere (S3, a CDN) by redirect; the registry's
        // Authorization stays with the registry.
        var hops = 0
        while let target = HTTPSession.redirectTarget(response, from: url) {
            hops += 1
            guard hops <= 5 else { throw NetworkError("\(what): more than 5 redirects") }
            _ = try? await HTTPSession.collect(response, limit: 1 << 20, what: "a redirect")
            var next = HTTPClientRequest(url: target)
            next.headers = extra
            next.headers.add(name: "User-Agent", value: "gvlt/\(Installation.version)")
            if HTTPSession.origin(target) == HTTPSession.origin(url),
                let auth = lock.withLock({ currentAuthorization(repository) })
            {
                next.headers.add(name: "Authorization", value: auth)
            }
            // Blob storage elsewhere is verified even when the registry on this machine is not.
            var storageTrust = tls
            storageTrust.verify = tls.verify || !TLSTrust.isLoopback(URLComponents(string: target)?.host ?? "")
            next.tlsConfiguration = try storageTrust.configuration()
            url = target
            do {
                response = try await session.send(next)
            } catch {
                throw NetworkError.describe(
                    error, what: "\(what) (redirected)", host: URLComponents(string: target)?.host ?? target)
            }
        }
        guard response.status.code == 200 || response.status.code == 206 else {
            let body = (try? await HTTPSession.collect(response, limit: 1 << 20, what: "an error")) ?? Data()
            throw failure(
                response, body: body, what: "GET blob \(digest.short) of \(repository)", repository: repository)
        }
        try download.begin(response, what: what)
        try await download.receive(response, what: what, host: host, progress: progress)
    }

    // MARK: Requests and authentication

    /// `https://host` (or `http://host` where plain HTTP is allowed and HTTPS failed), decided by the
    /// first request.
    func baseURL() -> String {
        if let scheme = lock.withLock({ scheme }) { return "\(scheme)://\(host)" }
        return "https://\(host)"
    }

    /// Sends a request with the authorization the registry asked for, answering one 401 challenge.
    func request(
        _ method: HTTPMethod, path: String, repository: String, accept: [String], headers extra: HTTPHeaders = [:],
        what: String
    ) async throws -> HTTPClientResponse {
        var answeredChallenge = false
        while true {
            let response = try await send(
                method, path: path, repository: repository, accept: accept, headers: extra, what: what)
            guard response.status == .unauthorized, !answeredChallenge else {
                if response.status == .unauthorized {
                    let body = (try? await HTTPSession.collect(response, limit: 1 << 20, what: "an error")) ?? Data()
                    throw unauthorized(repository: repository, what: what, body: body)
                }
                return response
            }
            answeredChallenge = true
            _ = try? await HTTPSession.collect(response, limit: 1 << 20, what: "an error")
            // Whole header lines: NIO's canonical form splits at every comma, quoted or not.
            let challenges = response.headers["www-authenticate"].flatMap(AuthChallenge.parse)
            guard
                let chosen = challenges.first(where: { $0.scheme == "bearer" })
                    ?? challenges.first(where: { $0.scheme == "basic" })
            else {
                throw NetworkError(
                    "registry \(registry): \(what): HTTP 401 without a challenge gvlt can answer (\(challenges.map(\.scheme).joined(separator: ", ")))",
                    status: 401)
            }
            lock.withLock { challenge = chosen }
            if chosen.scheme == "bearer" {
                let scope = chosen.parameters["scope"] ?? "repository:\(repository):pull"
                let token = try await fetchToken(chosen, scope: scope, repository: repository)
                lock.withLock { tokens[repository] = token }
            } else if credential == nil {
                throw NetworkError(
                    "registry \(registry): \(what) needs credentials (HTTP 401, Basic)",
                    hint:
                        "pass --creds USER:PASSWORD, or log in with `podman login \(registry)` or `docker login \(registry)`",
                    status: 401)
            } else if credential?.user == nil {
                throw NetworkError(
                    "registry \(registry): \(what) asks for a password (HTTP 401, Basic), and \(credential!) is a token",
                    hint: "pass --creds USER:PASSWORD", status: 401)
            }
        }
    }

    /// The Authorization header for `repository`, from what the registry asked for so far.
    private func currentAuthorization(_ repository: String) -> String? {
        guard let challenge else { return nil }
        if challenge.scheme == "bearer" { return tokens[repository].map { "Bearer \($0)" } }
        guard case .password(let user, let password)? = credential?.secret else { return nil }
        return "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    private func send(
        _ method: HTTPMethod, path: String, repository: String, accept: [String], headers extra: HTTPHeaders,
        what: String
    ) async throws -> HTTPClientResponse {
        let settled = lock.withLock { scheme }
        let schemes = settled.map { [$0] } ?? (allowPlainHTTP ? ["https", "http"] : ["https"])
        var lastError: Error?
        for candidate in schemes {
            var request = HTTPClientRequest(url: "\(candidate)://\(host)\(path)")
            request.method = method
            request.headers = extra
            request.headers.add(name: "Accept", value: accept.joined(separator: ", "))
            request.headers.add(name: "User-Agent", value: "gvlt/\(Installation.version)")
            if let auth = lock.withLock({ currentAuthorization(repository) }) {
                request.headers.add(name: "Authorization", value: auth)
            }
            if candidate == "https" { request.tlsConfiguration = try tls.configuration() }
            do {
                let response = try await session.send(request)
                lock.withLock { if scheme == nil { scheme = candidate } }
                return response
            } catch {
                lastError = NetworkError.describe(error, what: "registry \(registry): \(what)", host: host)
                if candidate == "https" && schemes.count > 1 {
                    note("registry \(registry): HTTPS failed (\(lastError!)); trying plain HTTP, as it is insecure")
                }
            }
        }
        throw lastError!
    }

    /// A token for `scope` from the challenge's realm: GET with Basic credentials (or none), or, for
    /// an identity token, the OAuth2 refresh-token POST.
    private func fetchToken(_ challenge: AuthChallenge, scope: String, repository: String) async throws -> String {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
            let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let realmHost = components.host
        else {
            throw NetworkError(
                "registry \(registry): its Bearer challenge has no usable realm (`\(ServerText.clean(challenge.parameters["realm"] ?? ""))`)"
            )
        }
        // A secret goes to a plain-HTTP realm only where the registry itself may be plain HTTP.
        if scheme == "http", credential != nil, !allowPlainHTTP, !TLSTrust.isLoopback(realmHost) {
            throw NetworkError(
                "registry \(registry): its token realm \(ServerText.clean(realm)) is plain HTTP, and gvlt will not send \(credential!) there",
                hint: "the registry must name an https:// realm, or be listed as insecure in registries.conf")
        }
        var request: HTTPClientRequest
        if case .identityToken(let refresh)? = credential?.secret {
            request = HTTPClientRequest(url: realm)
            request.method = .POST
            var form = URLComponents()
            form.queryItems =
                [
                    URLQueryItem(name: "grant_type", value: "refresh_token"),
                    URLQueryItem(name: "refresh_token", value: refresh), URLQueryItem(name: "client_id", value: "gvlt"),
                    URLQueryItem(name: "scope", value: scope)
                ] + (challenge.parameters["service"].map { [URLQueryItem(name: "service", value: $0)] } ?? [])
            let body = (form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: body))
        } else {
            var items = components.queryItems ?? []
            if let service = challenge.parameters["service"] {
                items.append(URLQueryItem(name: "service", value: service))
            }
            for part in scope.split(separator: " ") { items.append(URLQueryItem(name: "scope", value: String(part))) }
            components.queryItems = items
            guard let url = components.string else {
                throw NetworkError("registry \(registry): bad token realm \(realm)")
            }
            request = HTTPClientRequest(url: url)
            if case .password(let user, let password)? = credential?.secret {
                request.headers.add(
                    name: "Authorization", value: "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
            }
        }
        request.headers.add(name: "User-Agent", value: "gvlt/\(Installation.version)")
        if scheme == "https" {
            // The realm trusts what the registry trusts; unverified only when it is on this machine too.
            var realmTrust = tls
            realmTrust.verify = tls.verify || !TLSTrust.isLoopback(realmHost)
            request.tlsConfiguration = try realmTrust.configuration()
        }
        let what = "registry \(registry): get a token for \(repository) from \(realmHost)"
        return try await HTTPSession.retrying(note: note) { _ in
            let response: HTTPClientResponse
            do {
                response = try await session.send(request)
            } catch {
                throw NetworkError.describe(error, what: what, host: realmHost)
            }
            let data = try await HTTPSession.collect(response, limit: 1 << 20, what: "the token answer")
            switch response.status.code {
            case 200:
                struct Answer: Decodable {
                    var token: String?
                    var access_token: String?
                }
                guard let answer = try? JSONDecoder().decode(Answer.self, from: data),
                    let token = answer.token ?? answer.access_token, !token.isEmpty
                else { throw NetworkError("\(what): the answer holds no token") }
                return token
            case 401, 403:
                throw NetworkError(
                    credential.map { "\(what): \($0) were refused (HTTP \(response.status.code))" }
                        ?? "\(what): anonymous access was refused (HTTP \(response.status.code))",
                    hint: credential == nil
                        ? "the repository needs credentials: pass --creds USER:PASSWORD or log in (podman login / docker login)"
                        : "check the user and password (or log in again)",
                    status: Int(response.status.code))
            case 429, 500...599:
                throw NetworkError(
                    "\(what): HTTP \(response.status.code)", status: Int(response.status.code), transient: true)
            default:
                throw NetworkError("\(what): HTTP \(response.status.code)", status: Int(response.status.code))
            }
        }
    }

    /// A 401 after the challenge was answered.
    private func unauthorized(repository: String, what: String, body: Data) -> NetworkError {
        let code = Self.errorCode(body).map { " \($0)" } ?? ""
        if let credential {
            return NetworkError(
                "registry \(registry): \(what): \(credential) were refused (HTTP 401\(code))",
                hint: "check the user and password, and that the user may pull \(repository)", status: 401)
        }
        return NetworkError(
            "registry \(registry): \(what) needs credentials (HTTP 401\(code))",
            hint: "pass --creds USER:PASSWORD, or log in with `podman login \(registry)` or `docker login \(registry)`",
            status: 401)
    }

    /// An unexpected status as an error naming the registry, what was asked and the status.
    func failure(_ response: HTTPClientResponse, body: Data, what: String, repository: String) -> Error {
        let code = Int(response.status.code)
        let detail = Self.errorCode(body).map { " \($0)" } ?? ""
        switch code {
        case 404:
            return NetworkError(
                "registry \(registry): \(what): not found (HTTP 404\(detail))",
                hint: "check the repository name (\(repository)) and the tag or digest", status: code)
        case 403:
            return NetworkError(
                "registry \(registry): \(what): access denied (HTTP 403\(detail))",
                hint: "the credentials may not pull \(repository)", status: code)
        case 429:
            return NetworkError(
                "registry \(registry): \(what): too many requests (HTTP 429)",
                hint: "the registry limits pulls; wait, or log in for a higher limit", status: code, transient: true)
        case 500...599:
            return NetworkError("registry \(registry): \(what): HTTP \(code)\(detail)", status: code, transient: true)
        default:
            return NetworkError("registry \(registry): \(what): HTTP \(code)\(detail)", status: code)
        }
    }

    /// `MANIFEST_UNKNOWN: manifest unknown` from a distribution error body.
    static func errorCode(_ body: Data) -> String? {
        struct Errors: Decodable {
            struct Item: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [Item]?
        }
        guard let first = (try? JSONDecoder().decode(Errors.self, from: body))?.errors?.first else { return nil }
        let text = [first.code, first.message].compactMap { $0 }.joined(separator: ": ")
        return text.isEmpty ? nil : ServerText.clean(text, limit: 200)
    }
}
