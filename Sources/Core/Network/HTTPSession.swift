import Core
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// The one HTTP client of a gvlt command: async-http-client (SwiftNIO, BoringSSL through swift-nio-ssl,
/// linked in, so the release binary still needs only glibc). Redirects are followed by the callers,
/// which decide what headers cross to another host; bodies come undecoded, because digests are of
/// the bytes as served; connection failures are reported at once, and retried with backoff by
/// `HTTPSession.retrying`, so that each error names what was being fetched.
public final class HTTPSession: @unchecked Sendable {
    public let client: HTTPClient
    private let lock = NSLock()
    private var closed = false

    /// How long the server may stay silent while a response is read.
    public static let readTimeout: TimeAmount = .seconds(60)

    public init() {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(30), read: Self.readTimeout))
        configuration.decompression = .disabled
        // Parallel blobs each get their own connection: over HTTP/2 they would share one TCP stream.
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { shutdown() }

    public func shutdown() {
        let first = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        let client = self.client
        try? Blocking.run { try await client.shutdown() }
    }

    /// Sends `request`; the body is left to the caller to stream. A transfer may last hours; a stall
    /// is caught by the read timeout.
    public func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        try await client.execute(request, deadline: .now() + .hours(12))
    }

    /// `body` again after a transient failure (a dropped connection, a 5xx, a 429), up to `attempts`
    /// times, waiting 0.5 s, 1 s, 2 s… between tries. `body` gets the attempt number, from 0.
    public static func retrying<T>(
        attempts: Int = 5, note: (String) -> Void = { _ in }, _ body: (Int) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body(attempt)
            } catch let error as NetworkError where error.transient && attempt + 1 < attempts {
                let delay = min(8.0, 0.5 * Double(1 << attempt))
                note("\(error.message); trying again in \(delay) s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                attempt += 1
            }
        }
    }

    /// The whole body, refusing more than `limit` bytes.
    public static func collect(_ response: HTTPClientResponse, limit: Int, what: String) async throws -> Data {
        if let length = response.headers.first(name: "content-length").flatMap(Int64.init), length > Int64(limit) {
            throw HostileInputError("\(what) is \(length) bytes; more than \(limit >> 20) MiB is refused")
        }
        var data = Data()
        for try await chunk in response.body {
            guard data.count + chunk.readableBytes <= limit else {
                throw HostileInputError("\(what) is more than \(limit >> 20) MiB, which is refused")
            }
            chunk.withUnsafeReadableBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    /// A `Location` header resolved against the URL it came from.
    public static func redirectTarget(_ response: HTTPClientResponse, from url: String) -> String? {
        guard [301, 302, 303, 307, 308].contains(response.status.code),
            let location = response.headers.first(name: "location"),
            let base = URL(string: url), let target = URL(string: location, relativeTo: base)?.absoluteURL,
            let scheme = target.scheme?.lowercased(), scheme == "https" || scheme == "http"
        else { return nil }
        return target.absoluteString
    }

    /// `scheme://host[:port]` of a URL, to tell whether a redirect leaves the server.
    public static func origin(_ url: String) -> String? {
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme, let host = parsed.host else {
            return nil
        }
        return "\(scheme.lowercased())://\(host.lowercased())" + (parsed.port.map { ":\($0)" } ?? "")
    }
}

/// A file written by `pwrite` at a running offset while a body streams in.
struct StreamingFileWriter {
    let fd: Int32
    let path: String

    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let wrote = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if wrote < 0 && errno == EINTR { continue }
            guard wrote > 0 else { throw SystemError("cannot write", path: path, errno: errno) }
            done += wrote
        }
    }

    func truncate() throws {
        guard ftruncate(fd, 0) == 0 else { throw SystemError("cannot truncate", path: path, errno: errno) }
    }
}

/// One download that may take several responses: each resumes where the last stopped. The bytes
/// are hashed as they arrive, and never pass `limit`.
struct ResumableDownload {
    let writer: StreamingFileWriter
    /// The most bytes the file may have: the exact size when `exact`, else a bound.
    let limit: Int64?
    let exact: Bool
    /// How to allow more, for the error when a body passes `limit` (not `exact`).
    let limitHint: String
    private(set) var hasher = SHA256()
    private(set) var offset: Int64 = 0
    /// The validator of the response the bytes came from (`ETag`, else `Last-Modified`): a resumed
    /// request sends it as `If-Range`, so a file that changed meanwhile starts over.
    private(set) var validator: String?

    init(writer: StreamingFileWriter, limit: Int64?, exact: Bool, limitHint: String = "") {
        self.writer = writer
        self.limit = limit
        self.exact = exact
        self.limitHint = limitHint
    }

    /// Whether every byte of an exact-size body is here.
    var isComplete: Bool { exact && limit == offset }

    /// Drops what was received, for a download that must start over.
    mutating func reset() throws {
        try writer.truncate()
        hasher = SHA256()
        offset = 0
        validator = nil
    }

    /// Creates `path` and runs `attempt` (one request, streamed in) until it completes. After a
    /// transient failure the next attempt resumes where the bytes stopped; bytes that arrived count as
    /// progress, so only six failures in a row end the download.
    static func run<T>(
        to path: String, limit: Int64?, exact: Bool, limitHint: String = "", note: (String) -> Void,
        _ attempt: (inout ResumableDownload) async throws -> T
    ) async throws -> (result: T, download: ResumableDownload) {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("cannot create", path: path, errno: errno) }
        defer { close(fd) }
        var download = ResumableDownload(
            writer: StreamingFileWriter(fd: fd, path: path), limit: limit, exact: exact, limitHint: limitHint)
        var failures = 0
        while true {
            let before = download.offset
            do {
                return (try await attempt(&download), download)
            } catch let error as NetworkError where error.transient {
                failures = download.offset > before ? 1 : failures + 1
                guard failures < 6 else { throw error }
                let delay = min(8.0, 0.25 * Double(1 << failures))
                note("\(error.message) after \(ProgressReporter.bytes(download.offset)); resuming in \(delay) s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
    }

    /// The `Range` header that asks for the rest, when part of the file is here.
    var rangeHeader: String? { offset > 0 ? "bytes=\(offset)-" : nil }

    /// Takes a 200 (a whole body: what was received is dropped) or a 206 that starts where asked.
    mutating func begin(_ response: HTTPClientResponse, what: String) throws {
        switch response.status.code {
        case 200:
            if offset > 0 { try reset() }
            if let length = response.headers.first(name: "content-length").flatMap(Int64.init), let limit {
                if exact && length != limit {
                    throw HostileInputError(
                        "\(what) is \(length) bytes, but its descriptor says \(limit); it was not kept")
                }
                if !exact && length > limit { throw tooLong(length, what: what) }
            }
            validator = response.headers.first(name: "etag") ?? response.headers.first(name: "last-modified")
        case 206:
            let range = response.headers.first(name: "content-range") ?? ""
            guard range.hasPrefix("bytes \(offset)-") else {
                throw NetworkError(
                    "\(what): the resumed answer starts elsewhere (`Content-Range: \(ServerText.clean(range, limit: 80))`)"
                )
            }
        default:
            preconditionFailure("begin takes 200 and 206 answers only")
        }
    }

    private func tooLong(_ size: Int64, what: String) -> Error {
        exact
            ? HostileInputError("\(what) is longer than its descriptor's \(limit!) bytes; it was not kept")
            : InputError(
                "\(what) is \(size) bytes, more than the \(ProgressReporter.bytes(limit!)) allowed",
                hint: limitHint.isEmpty ? nil : limitHint)
    }

    /// Streams the body in. A failure of the connection is a transient `NetworkError`; what arrived
    /// before it stays, for the next request to resume from.
    mutating func receive(
        _ response: HTTPClientResponse, what: String, host: String, progress: (Int64) -> Void
    ) async throws {
        do {
            for try await chunk in response.body {
                let count = Int64(chunk.readableBytes)
                if let limit, offset + count > limit { throw tooLong(offset + count, what: what) }
                let at = offset
                try chunk.withUnsafeReadableBytes { bytes in
                    try writer.write(bytes, at: at)
                    hasher.update(bufferPointer: bytes)
                }
                offset += count
                progress(offset)
            }
        } catch let error as UserFacingError {
            throw error
        } catch {
            throw NetworkError.describe(error, what: what, host: host)
        }
        if exact, let limit, offset < limit {
            throw NetworkError("\(what): the connection ended after \(offset) of \(limit) bytes", transient: true)
        }
    }

    var sha256: String { hasher.finalize().hexString }
}
