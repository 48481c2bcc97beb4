import Core
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Downloads one `http(s)://` URL to a file: redirects followed (never from HTTPS down to HTTP), a
/// size bound checked before and while the body streams, resumed with `Range` after a dropped
/// connection, hashed as it arrives. With a validator from an earlier download, a 304 answer means
/// the copy at hand is current.
public struct URLDownloader: Sendable {
    public struct Validator: Codable, Sendable {
        public var etag: String?
        public var lastModified: String?
    }

    public enum Outcome: Sendable {
        case notModified
        case downloaded(sha256: String, bytes: Int64, validator: Validator)
    }

    let session: HTTPSession
    let trust: TLSTrust
    let note: @Sendable (String) -> Void

    public init(session: HTTPSession, trust: TLSTrust, note: @escaping @Sendable (String) -> Void) {
        self.session = session
        self.trust = trust
        self.note = note
    }

    public func download(
        _ url: String, to path: String, limit: Int64, what: String, validator: Validator? = nil,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws -> Outcome {
        let (answer, download) = try await ResumableDownload.run(
            to: path, limit: limit, exact: false,
            limitHint: "raise --max-download-size if it is meant to be that large", note: note
        ) { download in
            // A validator asks whether the whole file changed; a resumed request wants the rest.
            let fresh = download.offset == 0
            return try await fetch(
                url, into: &download, what: what, validator: fresh ? validator : nil, progress: progress)
        }
        guard let answer else { return .notModified }
        return .downloaded(sha256: download.sha256, bytes: download.offset, validator: answer)
    }

    /// One request; nil when the server says the validator's copy is current.
    private func fetch(
        _ start: String, into download: inout ResumableDownload, what: String, validator: Validator?,
        progress: @Sendable (Int64) -> Void
    ) async throws -> Validator? {
        var url = start
        var hops = 0
        while true {
            guard let components = URLComponents(string: url), let host = components.host,
                let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http"
            else { throw InputError("\(what): `\(ServerText.url(url))` is not an http(s) URL") }
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "User-Agent", value: "gvlt/\(Installation.version)")
            if download.rangeHeader != nil && download.validator == nil {
                // Without a validator a resumed tail could belong to a newer file: start over.
                try download.reset()
            }
            if let range = download.rangeHeader, let validator = download.validator {
                request.headers.add(name: "Range", value: range)
                request.headers.add(name: "If-Range", value: validator)
            }
            if let etag = validator?.etag { request.headers.add(name: "If-None-Match", value: etag) }
            if let modified = validator?.lastModified {
                request.headers.add(name: "If-Modified-Since", value: modified)
            }
            if scheme == "https" { request.tlsConfiguration = try trust.configuration() }
            let response: HTTPClientResponse
            do {
                response = try await session.send(request)
            } catch {
                throw NetworkError.describe(error, what: what, host: host)
            }
            if let target = HTTPSession.redirectTarget(response, from: url) {
                _ = try? await HTTPSession.collect(response, limit: 1 << 20, what: "a redirect")
                hops += 1
                guard hops <= 10 else {
                    throw NetworkError("\(what): more than 10 redirects from \(ServerText.url(start))")
                }
                guard !(scheme == "https" && target.lowercased().hasPrefix("http:")) else {
                    throw NetworkError(
                        "\(what): \(host) redirects from HTTPS to plain HTTP (\(ServerText.url(target))), which is refused",
                        hint: "give the final URL if it is meant to be plain HTTP")
                }
                url = target
                continue
            }
            switch response.status.code {
            case 200, 206:
                try download.begin(response, what: what)
                try await download.receive(response, what: what, host: host, progress: progress)
                return Validator(
                    etag: response.headers.first(name: "etag"),
                    lastModified: response.headers.first(name: "last-modified"))
            case 304 where validator != nil:
                return nil
            case 404:
                throw NetworkError(
                    "\(what): \(ServerText.url(url)) was not found (HTTP 404)", hint: "check the URL", status: 404)
            case 401, 403:
                throw NetworkError(
                    "\(what): \(host) refused access to \(ServerText.url(url)) (HTTP \(response.status.code))",
                    hint: "the URL needs credentials gvlt does not send; download it yourself and give the file",
                    status: Int(response.status.code))
            case 408, 429, 500...599:
                throw NetworkError(
                    "\(what): \(host) answered HTTP \(response.status.code) for \(ServerText.url(url))",
                    status: Int(response.status.code), transient: true)
            default:
                throw NetworkError(
                    "\(what): \(host) answered HTTP \(response.status.code) for \(ServerText.url(url))",
                    status: Int(response.status.code))
            }
        }
    }
}
