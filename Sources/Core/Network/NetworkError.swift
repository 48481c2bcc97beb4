import Core
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// A download or registry request that failed: the message names the server (and the repository or
/// URL), the HTTP status when there was one, and what the user can do.
public struct NetworkError: UserFacingError {
    public let message: String
    public let hint: String?
    /// The HTTP status, when the server answered.
    public let status: Int?
    /// Whether trying again may help (a dropped connection, a 5xx, a 429).
    public let transient: Bool

    public init(_ message: String, hint: String? = nil, status: Int? = nil, transient: Bool = false) {
        self.message = message
        self.hint = hint
        self.status = status
        self.transient = transient
    }

    /// An error of the HTTP client or the network below it, in words: `what` names the request
    /// ("registry 127.0.0.1:5000: GET the manifest of …"), `host` the server.
    public static func describe(_ error: Error, what: String, host: String) -> Error {
        if error is UserFacingError || error is CancellationError { return error }
        let text = String(describing: error)
        if let ssl = error as? NIOSSLError {
            return tls(ssl, text: text, what: what, host: host)
        }
        if let extra = error as? NIOSSLExtraError {
            return tls(extra, text: text, what: what, host: host)
        }
        if let connection = error as? NIOConnectionError {
            if connection.dnsAError != nil || connection.dnsAAAAError != nil,
                connection.connectionErrors.isEmpty
            {
                return NetworkError(
                    "\(what): cannot resolve the host \(host)",
                    hint: "check the name (a typo?) and the network; --offline uses the cache only")
            }
            if let first = connection.connectionErrors.first?.error {
                return describe(first, what: what, host: host)
            }
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED:
                return NetworkError(
                    "\(what): \(host) refused the connection", hint: "is the server running on that port?",
                    transient: true)
            case ECONNRESET, EPIPE:
                return NetworkError("\(what): \(host) dropped the connection", transient: true)
            case ENETUNREACH, EHOSTUNREACH:
                return NetworkError(
                    "\(what): \(host) is unreachable", hint: "check the network; --offline uses the cache only",
                    transient: true)
            default:
                return NetworkError("\(what): \(host): \(io)", transient: true)
            }
        }
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout, .tlsHandshakeTimeout:
                return NetworkError(
                    "\(what): connecting to \(host) timed out", hint: "check the network and the host",
                    transient: true)
            case .readTimeout, .deadlineExceeded:
                return NetworkError("\(what): \(host) stopped sending (timed out)", transient: true)
            case .remoteConnectionClosed, .uncleanShutdown:
                return NetworkError("\(what): \(host) closed the connection early", transient: true)
            default:
                return NetworkError("\(what): \(host): \(client)", transient: true)
            }
        }
        if error is ChannelError {
            return NetworkError("\(what): \(host): the connection failed (\(text))", transient: true)
        }
        if text.contains("DNS") || text.contains("resolve") {
            return NetworkError(
                "\(what): cannot resolve the host \(host)",
                hint: "check the name (a typo?) and the network; --offline uses the cache only")
        }
        return NetworkError("\(what): \(host): \(text)", transient: true)
    }

    private static func tls(_ error: Error, text: String, what: String, host: String) -> NetworkError {
        let verification =
            text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify")
            || text.contains("unableToValidateCertificate") || text.contains("hostname")
        if verification {
            let reason = text.contains("CERTIFICATE_VERIFY_FAILED") ? "CERTIFICATE_VERIFY_FAILED" : text
            return NetworkError(
                "\(what): the TLS certificate of \(host) is not trusted (\(reason))",
                hint:
                    "add its CA with --cert-dir DIR (*.crt files) or $SSL_CERT_FILE; --tls-verify=false is allowed only for a loopback registry or one registries.conf lists as insecure"
            )
        }
        // BoringSSL's words carry a source path; the reason is what the user needs.
        let reason =
            text.range(of: "OPENSSL_internal:").map { String(text[$0.upperBound...].prefix { $0 != " " }) } ?? text
        return NetworkError(
            "\(what): TLS with \(host) failed (\(reason))",
            hint: "is it an https server? a registries.conf `insecure = true` entry allows plain http")
    }
}
