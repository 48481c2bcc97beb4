/// A registry image reference, normalised as docker normalises it: `alpine` is
/// `docker.io/library/alpine:latest`, `user/app` is `docker.io/user/app:latest`, and a first
/// component with a `.` or a `:`, or `localhost`, is a registry host. `@sha256:…` pins the manifest.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    public var registry: String
    /// `library/alpine`, `nvidia/cuda`.
    public var repository: String
    public var tag: String?
    public var digest: ContentDigest?

    public static let dockerHub = "docker.io"

    public init(registry: String, repository: String, tag: String?, digest: ContentDigest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// `REF` or `docker://REF`. `text` is what the user wrote, for messages.
    public init(parsing input: String) throws {
        var text = input
        if text.hasPrefix("docker://") { text.removeFirst("docker://".count) }
        func bad(_ why: String, _ hint: String? = nil) -> InputError {
            InputError(
                "`\(input)` is not an image reference: \(why)",
                hint: hint ?? "write [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. docker.io/library/alpine:3.20")
        }
        guard !text.isEmpty else { throw bad("it is empty", nil) }
        guard text.utf8.count <= 4096 else { throw bad("it is longer than 4096 bytes") }
        var digest: ContentDigest?
        if let at = text.firstIndex(of: "@") {
            do {
                digest = try ContentDigest(String(text[text.index(after: at)...]), context: "the digest")
            } catch let error as UserFacingError {
                throw bad(error.message, nil)
            }
            text = String(text[..<at])
        }
        // The tag follows the last `:` after the last `/`; a `:` before it is a registry port.
        var tag: String?
        let lastSlash = text.lastIndex(of: "/")
        if let colon = text.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            tag = String(text[text.index(after: colon)...])
            text = String(text[..<colon])
        }
        var registry = Self.dockerHub
        var path = text
        if let slash = text.firstIndex(of: "/") {
            let first = text[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost"
                || first.contains(where: \.isUppercase)
            {
                registry = String(first)
                path = String(text[text.index(after: slash)...])
            }
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Self.dockerHub }
        if registry == Self.dockerHub && !path.contains("/") { path = "library/" + path }
        try Self.checkRegistry(registry, bad: bad)
        guard !path.isEmpty else { throw bad("the repository is empty") }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isPathComponent(component) else {
                throw bad(
                    component.contains(where: \.isUppercase)
                        ? "repository names must be lowercase (`\(component)`)"
                        : "`\(component)` is not a repository name component")
            }
        }
        if let tag {
            guard Self.isTag(tag) else {
                throw bad("`\(tag)` is not a tag (letters, digits, `_`, `.`, `-`; up to 128)")
            }
        }
        self.init(registry: registry, repository: path, tag: digest == nil ? (tag ?? "latest") : tag, digest: digest)
    }

    /// What a manifest request names: the digest when pinned, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// `docker.io/library/alpine:3.20`, `host/repo@sha256:…`.
    public var description: String {
        var text = "\(registry)/\(repository)"
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    /// `host/repo`, for messages about the repository.
    public var name: String { "\(registry)/\(repository)" }

    /// The host to talk to: Docker Hub's API is not at docker.io.
    public var apiHost: String { registry == Self.dockerHub ? "registry-1.docker.io" : registry }

    /// The same reference on another registry and repository (a mirror or a registries.conf location).
    public func relocated(registry: String, repository: String) -> ImageReference {
        ImageReference(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    static func checkRegistry(_ registry: String, bad: (String, String?) -> InputError) throws {
        var host = Substring(registry)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw bad("`\(registry)` is not a host", nil) }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), !host.isEmpty else {
                throw bad("`\(registry)` is not a host", nil)
            }
            if !after.isEmpty { try port(after, registry: registry, bad: bad) }
            return
        }
        if let colon = host.firstIndex(of: ":") {
            try port(host[colon...], registry: registry, bad: bad)
            host = host[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard !host.isEmpty,
            labels.allSatisfy({ label in
                !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            })
        else { throw bad("`\(registry)` is not a registry host", nil) }
    }

    private static func port(_ text: Substring, registry: String, bad: (String, String?) -> InputError) throws {
        let digits = text.dropFirst()
        guard text.first == ":", !digits.isEmpty, digits.count <= 5, digits.allSatisfy(\.isASCII),
            let number = Int(digits), (1...65535).contains(number)
        else { throw bad("`\(registry)` has no valid port", nil) }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution grammar of one path component.
    static func isPathComponent(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard let first = bytes.first, let last = bytes.last, alnum(first), alnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            if alnum(bytes[index]) {
                index += 1
                continue
            }
            // A separator run: `.`, `_`, `__` or any number of `-`, always between alphanumerics.
            let start = index
            while index < bytes.count, !alnum(bytes[index]) { index += 1 }
            let separator = bytes[start..<index]
            let valid =
                separator.elementsEqual([0x2e]) || separator.elementsEqual([0x5f])
                || separator.elementsEqual([0x5f, 0x5f]) || separator.allSatisfy { $0 == 0x2d }
            guard valid else { return false }
        }
        return bytes.count <= 255
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    package static func isTag(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        func word(_ b: UInt8) -> Bool {
            (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b == 0x5f
        }
        guard let first = bytes.first, word(first), bytes.count <= 128 else { return false }
        return bytes.allSatisfy { word($0) || $0 == 0x2e || $0 == 0x2d }
    }
}
