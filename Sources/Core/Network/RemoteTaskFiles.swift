import Core
import Crypto
import Foundation

/// Fetches what a task names by URL: `spec.image` into the cache (keyed by its sha256, with a record
/// per URL so that a repeated run sends a conditional request and downloads nothing new), and each
/// remote `inputContexts[].source` into the run's scratch, from where it is moved into the input
/// share under its target name. Offline, remote sources are refused as before.
public struct RemoteTaskFiles {
    public var cache: CacheDirectory
    public var offline = false
    /// `--max-download-size`: the most one download may be.
    public var maximumSize: Int64 = 32 << 30
    public var certDirectory: String?
    public var progress: ProgressReporter.Mode = .lines
    public var note: @Sendable (String) -> Void = { _ in }
    public var environment = ProcessInfo.processInfo.environment

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    /// The local path of the image `spec` names, downloaded when it is a URL. `expectedSHA256`
    /// (`--image-sha256`) or a `#sha256=` fragment is checked, for local files too. A local path
    /// that must not exist yet is left for the runner to judge (a plugin's image may be no file).
    public func image(_ spec: String, expectedSHA256 given: String?, what: String, mustExist: Bool = true) throws
        -> String
    {
        let source = TaskSource.classify(spec)
        var expected = try given.map { try Self.checkedHex($0, flag: "--image-sha256") }
        if case .url(_, let fragment?) = source {
            let fromURL = try Self.checkedHex(fragment, flag: "the #sha256= of \(ServerText.url(spec))")
            if let expected, expected != fromURL {
                throw InputError(
                    "--image-sha256 \(expected) differs from the #sha256= of \(ServerText.url(spec)) (\(fromURL))",
                    hint: "give one of them, or make them agree")
            }
            expected = fromURL
        }
        switch source {
        case .local(let path):
            guard FileManager.default.fileExists(atPath: path) || (!mustExist && expected == nil) else {
                throw InputError(
                    "\(what) \(path) does not exist", hint: "give a local image, a file:// or an http(s):// URL")
            }
            if let expected { try Self.verify(file: path, expected: expected, what: "\(what) \(path)") }
            return path
        case .ipfs(let cid):
            throw UnsupportedError(
                "\(what) \(cid) is an IPFS CID, which is not supported: gvlt cannot reach Firestarter's private IPFS network",
                hint: "give a URL (http:// or https://) or a local image")
        case .unsupported(let text):
            throw UnsupportedError(
                "\(what) \(text): only http://, https:// and file:// URLs are supported",
                hint: "give a URL or a local image")
        case .url(let url, _):
            if offline { throw Self.offlineError(what: what, source: ServerText.url(spec), flagHint: "gvlt run IMAGE") }
            return try downloadImage(url, expected: expected, what: what)
        }
    }

    static func offlineError(what: String, source: String, flagHint: String) -> InputError {
        InputError(
            "\(what) \(source) is remote, and --offline keeps gvlt run from fetching it",
            hint: "drop --offline, or download it and give its local path (\(flagHint))")
    }

    static func checkedHex(_ text: String, flag: String) throws -> String {
        let hex = text.lowercased().hasPrefix("sha256:") ? String(text.dropFirst(7)).lowercased() : text.lowercased()
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else {
            throw InputError("\(flag) `\(text)` is not a sha256 (64 hex digits)")
        }
        return hex
    }

    static func verify(file: String, expected: String, what: String) throws {
        let actual = try SHA256Hex.of(file: file)
        guard actual == expected else {
            throw HostileInputError(
                "\(what) has sha256 \(actual), not the \(expected) asked for",
                hint: "the file is not the one the task names; check the URL and the sha256")
        }
    }

    struct URLRecord: Codable {
        var url: String
        var sha256: String
        var bytes: Int64
        var validator: URLDownloader.Validator
    }

    private func downloadImage(_ url: String, expected: String?, what: String) throws -> String {
        let blobs = BlobCache(cache)
        if let expected, let digest = try? ContentDigest("sha256:" + expected, context: "sha256"),
            blobs.contains(digest)
        {
            return blobs.path(digest)
        }
        let recordPath = cache.root + "/urls/" + SHA256Hex.of(data: Data(url.utf8)) + ".json"
        let record = CacheDirectory.readRecord(URLRecord.self, at: recordPath)
        let cached = record.flatMap { record -> ContentDigest? in
            guard record.url == url, let digest = try? ContentDigest("sha256:" + record.sha256, context: "sha256"),
                blobs.contains(digest, size: record.bytes)
            else { return nil }
            return digest
        }
        let staging = try blobs.staging()
        let session = HTTPSession()
        defer { session.shutdown() }
        defer { staging.remove() }
        let file = staging.path + "/image"
        let display = TransferProgress(mode: progress, title: "downloading \(what) \(ServerText.url(url))")
        let line = display.add(
            URLComponents(string: url)?.path.split(separator: "/").last.map(String.init) ?? "image", total: nil)
        display.start()
        let outcome = try fetch(
            url, to: file, what: what, session: session, validator: cached != nil ? record?.validator : nil
        ) {
            display.update(line, bytes: $0)
        }
        display.finish(line)
        guard case .downloaded(let sha256, let bytes, let validator) = outcome else {
            // 304: the cached copy is the URL's current content.
            let digest = cached!
            if let expected, expected != digest.hex {
                throw HostileInputError(
                    "\(what) \(ServerText.url(url)) has sha256 \(digest.hex), not the \(expected) asked for",
                    hint: "the file is not the one the task names; check the URL and the sha256")
            }
            note("\(what): \(ServerText.url(url)) is unchanged; using the cached copy")
            return blobs.path(digest)
        }
        if let expected, expected != sha256 {
            throw HostileInputError(
                "\(what) \(ServerText.url(url)) has sha256 \(sha256), not the \(expected) asked for; it was not kept",
                hint: "the file is not the one the task names; check the URL and the sha256")
        }
        try Self.refuseExternalReferences(file, what: "\(what) \(ServerText.url(url))")
        let digest = try ContentDigest("sha256:" + sha256, context: "sha256")
        if blobs.contains(digest) { unlink(file) } else { try blobs.publish(file, as: digest) }
        CacheDirectory.writeRecord(
            URLRecord(url: url, sha256: sha256, bytes: bytes, validator: validator), to: recordPath)
        return blobs.path(digest)
    }

    /// The task with each remote input source downloaded into `directory` and replaced by its path;
    /// and those paths, which the run may move instead of copying.
    public func fetchInputs(_ task: GevulotTask, into directory: String) throws -> (
        GevulotTask, downloaded: Set<String>
    ) {
        var task = task
        var wanted: [(index: Int, url: String, target: String, sha256: String?)] = []
        for (index, context) in task.inputContexts.enumerated() {
            let what = "input context source"
            switch TaskSource.classify(context.source) {
            case .local(let path):
                task.inputContexts[index].source = path
            case .ipfs(let cid):
                throw UnsupportedError(
                    "\(what) \(cid) is an IPFS CID, which is not supported: gvlt cannot reach Firestarter's private IPFS network",
                    hint: "give a URL (http:// or https://) or a local file (--input FILE:\(context.target))")
            case .unsupported(let text):
                throw UnsupportedError("\(what) \(text): only http://, https:// and file:// URLs are supported")
            case .url(let url, let sha):
                if offline {
                    throw Self.offlineError(
                        what: what, source: ServerText.url(context.source), flagHint: "--input FILE:\(context.target)")
                }
                let expected = try sha.map { try Self.checkedHex($0, flag: "the #sha256= of \(ServerText.url(url))") }
                wanted.append((index, url, context.target, expected))
            }
        }
        guard !wanted.isEmpty else { return (task, []) }
        // One client for every input: connections to the same server are reused.
        let session = HTTPSession()
        defer { session.shutdown() }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let display = TransferProgress(
            mode: progress, title: "downloading \(wanted.count) input\(wanted.count == 1 ? "" : "s")")
        var downloaded: Set<String> = []
        for item in wanted {
            let line = display.add(item.target, total: nil)
            let path = "\(directory)/\(item.index)-" + (URL(fileURLWithPath: item.target).lastPathComponent)
            display.start()
            let outcome = try fetch(item.url, to: path, what: "input \(item.target)", session: session) {
                display.update(line, bytes: $0)
            }
            display.finish(line)
            if let expected = item.sha256, case .downloaded(let actual, _, _) = outcome, actual != expected {
                throw HostileInputError(
                    "input \(item.target) from \(ServerText.url(item.url)) has sha256 \(actual), not the \(expected) its URL names"
                )
            }
            task.inputContexts[item.index].source = path
            downloaded.insert(path)
        }
        display.end()
        return (task, downloaded)
    }

    private func fetch(
        _ url: String, to path: String, what: String, session: HTTPSession, validator: URLDownloader.Validator? = nil,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) throws -> URLDownloader.Outcome {
        let host = URLComponents(string: url)?.host ?? url
        let port = URLComponents(string: url)?.port
        let trust = try TLSTrust.forHost(
            host + (port.map { ":\($0)" } ?? ""), certDirectory: certDirectory, environment: environment)
        let downloader = URLDownloader(session: session, trust: trust, note: note)
        let limit = maximumSize
        return try Blocking.run {
            try await downloader.download(
                url, to: path, limit: limit, what: what, validator: validator, progress: progress)
        }
    }

    /// A qcow2 disk names other files in its header (a backing file, an external data file), which
    /// QEMU would open on the host: a downloaded image could read the host's files into the guest.
    /// Raw disks name nothing.
    static func refuseExternalReferences(_ path: String, what: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let header = [UInt8]((try? handle.read(upToCount: 104)) ?? Data())
        guard header.count >= 72, header.starts(with: [0x51, 0x46, 0x49, 0xFB]) else { return }
        func big(_ offset: Int, _ count: Int) -> UInt64 {
            header[offset..<offset + count].reduce(0) { $0 << 8 | UInt64($1) }
        }
        let version = big(4, 4)
        let backingFile = big(8, 8)
        // Version 3 headers carry feature bits; bit 2 of the incompatible ones is an external data file.
        let externalData = version >= 3 && header.count >= 80 && big(72, 8) & 0b100 != 0
        if backingFile != 0 || externalData {
            throw HostileInputError(
                "\(what) is a qcow2 disk that names \(backingFile != 0 ? "a backing file" : "an external data file") on the host, which a downloaded image may not do",
                hint: "give a raw or self-contained qcow2 image (qemu-img convert -O qcow2 IN OUT)")
        }
    }
}
