import Core
import Crypto
import Foundation
import Logging

/// How gvlt may reach registries: the flags and files that govern pulls.
public struct RegistryAccess: Sendable {
    public var cache: CacheDirectory
    public var credentials: CredentialStore
    public var registriesConf: RegistriesConf
    /// `--cert-dir`: replaces the default certificate directories.
    public var certDirectory: String?
    /// `--tls-verify=false`: allowed for a loopback registry or one registries.conf lists as insecure.
    public var tlsVerify = true
    /// `--offline`: the cache only.
    public var offline = false
    /// Blobs downloaded at once.
    public var jobs = 4
    public var environment: [String: String]

    public init(
        cache: CacheDirectory, credentials: CredentialStore, registriesConf: RegistriesConf,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.cache = cache
        self.credentials = credentials
        self.registriesConf = registriesConf
        self.environment = environment
    }
}

/// An image pulled into the blob cache: every blob of the chosen platform is there, verified.
public struct PulledImage {
    /// The reference as given, and where it was pulled from (a mirror, a registries.conf location).
    public var reference: ImageReference
    public var pulledFrom: ImageReference
    /// The manifest or index the reference names.
    public var top: Descriptor
    /// The platform's manifest, with its platform.
    public var manifest: Descriptor
    public var config: ImageConfig
    public var configDescriptor: Descriptor
    public var layers: [LayerBlob]
    public var layerDescriptors: [Descriptor]
    /// Bytes downloaded by this pull (0 when the cache had everything).
    public var downloadedBytes: Int64
}

/// Pulls an image from a registry into the blob cache (`BlobCache`), resolving its tag, the
/// platform's manifest, its config and its layers; layers download in parallel. Mirrors and
/// locations from registries.conf are tried in order. Offline, the cache alone answers.
public final class RegistryPuller {
    let access: RegistryAccess
    let progress: ProgressReporter
    let logger: Logger
    let cache: BlobCache
    let notes: NoteSink

    public init(access: RegistryAccess, progress: ProgressReporter, logger: Logger) {
        self.access = access
        self.progress = progress
        self.logger = logger
        cache = BlobCache(access.cache)
        notes = NoteSink(logger: logger)
    }

    public func pull(_ reference: ImageReference, platform: Platform) throws -> PulledImage {
        let started = Date()
        let staging = try cache.staging()
        defer { staging.remove() }
        let session = access.offline ? nil : HTTPSession()
        defer { session?.shutdown() }

        let sources = try access.registriesConf.pullSources(for: reference)
        for (index, source) in sources.enumerated() {
            do {
                let client = try session.map { try makeClient(for: source, session: $0) }
                let store = RegistryBlobStore(
                    reference: reference, repository: source.reference.repository, client: client, cache: cache,
                    staging: staging)
                let top = try resolveTop(reference: reference, at: source.reference, client: client, store: store)
                let image = try pullImage(top: top, from: source.reference, store: store, platform: platform)
                cache.record(
                    reference, BlobCache.TagRecord(digest: top.digest, mediaType: top.mediaType ?? "", size: top.size))
                progress.record(step: "pulling \(reference)", seconds: Date().timeIntervalSince(started))
                return image
            } catch let error where index + 1 < sources.count && !(error is HostileInputError) {
                // A mirror that fails hands over to the next place, as containers/image does; each
                // failure is said as it happens, so the last error stands for the last place only.
                logger.warning(
                    "\(source.isMirror ? "mirror" : "location") \(source.reference.registry) failed for \(reference): \(error); trying \(sources[index + 1].reference.registry)"
                )
            }
        }
        fatalError("unreachable: the last source rethrows")
    }

    func makeClient(for source: RegistriesConf.PullSource, session: HTTPSession) throws -> RegistryClient {
        let registry = source.reference.registry
        var trust = try TLSTrust.forHost(registry, certDirectory: access.certDirectory, environment: access.environment)
        // `insecure` as registries.conf scopes it: this source's prefix, not every image on the host.
        let listedInsecure = source.insecure
        if !access.tlsVerify {
            guard TLSTrust.isLoopback(registry) || listedInsecure else {
                throw InputError(
                    "--tls-verify=false is refused for \(registry): it is allowed only for a loopback registry or one that registries.conf lists as insecure",
                    hint:
                        "add its CA with --cert-dir DIR or $SSL_CERT_FILE, or list it with `insecure = true` in registries.conf"
                )
            }
            logger.warning(
                "TLS verification is off for \(registry) (--tls-verify=false): its certificate is not checked")
        }
        if !access.tlsVerify || listedInsecure { trust.verify = false }
        let notes = self.notes
        return RegistryClient(
            registry: registry, host: source.reference.apiHost, session: session, tls: trust,
            allowPlainHTTP: !access.tlsVerify || listedInsecure,
            credential: try access.credentials.credential(registry: registry, repository: source.reference.repository),
            note: { notes.post($0) })
    }

    /// The descriptor of what `reference` names: from the cache for a cached digest (and offline for
    /// a recorded tag), else from the registry (a HEAD first, so a warm cache costs no manifest
    /// download).
    func resolveTop(
        reference: ImageReference, at location: ImageReference, client: RegistryClient?, store: RegistryBlobStore
    ) throws -> Descriptor {
        if let digest = reference.digest, cache.contains(digest) {
            return try cachedDescriptor(digest)
        }
        guard let client else {
            guard let record = cache.tag(reference) else {
                throw InputError(
                    "--offline: \(reference) is not in the cache (\(cache.root))",
                    hint: "pull it once with the network (`gvlt pull \(reference)`), or drop --offline")
            }
            let digest = try ContentDigest(record.digest, context: "the cache's record of \(reference)")
            guard cache.contains(digest) else {
                throw InputError(
                    "--offline: the manifest \(digest.short) of \(reference) is not in the cache (\(cache.root))",
                    hint: "pull it once with the network, or drop --offline")
            }
            return try cachedDescriptor(digest)
        }
        let repository = location.repository
        let named = location.manifestReference
        return try Blocking.run {
            if location.digest == nil,
                let digest = try await client.manifestDigest(repository: repository, reference: named),
                self.cache.contains(digest)
            {
                return try self.cachedDescriptor(digest)
            }
            let manifest = try await client.manifest(repository: repository, reference: named)
            try self.cache.store(manifest.data, as: manifest.digest, staging: store.staging)
            return Descriptor(
                mediaType: manifest.mediaType, digest: manifest.digest.description, size: Int64(manifest.data.count))
        }
    }

    func cachedDescriptor(_ digest: ContentDigest) throws -> Descriptor {
        let (file, offset, length) = try cache.store.blob(digest, context: "manifest")
        let data = try JSONFiles.read(
            file: file, offset: offset, length: length, what: "cached manifest \(digest.short)")
        guard "sha256:" + SHA256.hash(data: data).hexString == digest.description else {
            // A damaged cache entry is dropped, so the next pull fetches it again.
            unlink(cache.path(digest))
            throw InputError(
                "the cached manifest \(digest.short) in \(cache.root) is damaged; it was removed",
                hint: "run the command again (with the network) to fetch it anew")
        }
        return Descriptor(mediaType: ManifestShape(data).mediaTypeOrShape, digest: digest.description, size: length)
    }

    func pullImage(top: Descriptor, from location: ImageReference, store: RegistryBlobStore, platform: Platform)
        throws -> PulledImage
    {
        let resolver = OCIImageResolver(store: store, platform: platform)
        let chosen = try resolver.choose(
            index: ImageIndex(schemaVersion: 2, mediaType: nil, manifests: [top]), tag: nil)
        var descriptor = chosen.descriptor
        if descriptor.platform == nil, let os = chosen.config.os, let architecture = chosen.config.architecture {
            descriptor.platform = Platform(os: os, architecture: architecture, variant: chosen.config.variant)
        }
        let downloaded = try store.prefetch(
            chosen.manifest.layers, jobs: max(1, access.jobs), mode: progress.mode,
            title: "pulling \(store.reference) (\(chosen.manifest.layers.count) layers)", notes: notes)
        return PulledImage(
            reference: store.reference, pulledFrom: location, top: top, manifest: descriptor,
            config: chosen.config, configDescriptor: chosen.manifest.config, layers: try resolver.layers(of: chosen),
            layerDescriptors: chosen.manifest.layers, downloadedBytes: downloaded)
    }
}

/// What a manifest or index says of itself; the OCI spec makes `mediaType` optional.
struct ManifestShape: Decodable {
    var mediaType: String?
    var manifests: [Descriptor]?
    var schemaVersion: Int?

    init(_ data: Data) {
        self =
            (try? JSONDecoder().decode(ManifestShape.self, from: data))
            ?? ManifestShape(mediaType: nil, manifests: nil, schemaVersion: nil)
    }

    init(mediaType: String?, manifests: [Descriptor]?, schemaVersion: Int?) {
        self.mediaType = mediaType
        self.manifests = manifests
        self.schemaVersion = schemaVersion
    }

    /// The OCI type its shape gives: an index lists `manifests`.
    var typeByShape: String { manifests != nil ? MediaType.ociIndex : MediaType.ociManifest }

    /// Its own `mediaType`, else the type its shape gives.
    var mediaTypeOrShape: String { mediaType ?? typeByShape }
}

/// The blobs of one repository: the cache first, then the registry (unless offline). What arrives
/// is verified before it enters the cache.
final class RegistryBlobStore: BlobStore {
    let reference: ImageReference
    let repository: String
    let client: RegistryClient?
    let cache: BlobCache
    let staging: ScratchDirectory

    init(
        reference: ImageReference, repository: String, client: RegistryClient?, cache: BlobCache,
        staging: ScratchDirectory
    ) {
        self.reference = reference
        self.repository = repository
        self.client = client
        self.cache = cache
        self.staging = staging
    }

    var displayName: String { "docker://\(reference)" }

    func blob(_ digest: ContentDigest, context: String) throws -> (file: SharedFile, offset: Int64, length: Int64) {
        if !cache.contains(digest) { try fetch(digest, isManifest: false, context: context) }
        return try cache.store.blob(digest, context: context)
    }

    func manifest(_ digest: ContentDigest, context: String) throws -> (file: SharedFile, offset: Int64, length: Int64) {
        if !cache.contains(digest) { try fetch(digest, isManifest: true, context: context) }
        return try cache.store.blob(digest, context: context)
    }

    private func missing(_ what: String) -> InputError {
        InputError(
            "--offline: \(what) of \(reference) is not in the cache (\(cache.root))",
            hint: "pull it once with the network (`gvlt pull \(reference)`), or drop --offline")
    }

    private func fetch(_ digest: ContentDigest, isManifest: Bool, context: String) throws {
        guard let client else { throw missing("\(context) \(digest.short)") }
        let repository = self.repository
        if isManifest {
            let manifest = try Blocking.run {
                try await client.manifest(repository: repository, reference: digest.description)
            }
            try cache.store(manifest.data, as: digest, staging: staging)
        } else {
            // Only a config is fetched here (layers are prefetched with their sizes): bounded as JSON.
            let path = staging.path + "/blob-" + digest.hex
            try Blocking.run {
                try await client.download(
                    repository: repository, digest: digest, size: nil, maximum: JSONFiles.maximumSize, to: path
                ) { _ in }
            }
            try cache.publish(path, as: digest)
        }
    }

    /// Downloads the layers not yet cached, `jobs` at a time; returns the bytes downloaded.
    func prefetch(_ layers: [Descriptor], jobs: Int, mode: ProgressReporter.Mode, title: String, notes: NoteSink)
        throws -> Int64
    {
        let display = TransferProgress(mode: mode, title: title)
        var wanted: [(index: Int, digest: ContentDigest, size: Int64)] = []
        var seen: Set<ContentDigest> = []
        for (number, layer) in layers.enumerated() {
            let digest = try ContentDigest(layer.digest, context: "\(displayName): layer \(number + 1) digest")
            let label = "layer \(number + 1)/\(layers.count) \(digest.short)"
            guard layer.size >= 0 else {
                throw HostileInputError("\(displayName): layer \(number + 1) has a negative size (\(layer.size))")
            }
            if cache.contains(digest, size: layer.size) || seen.contains(digest) {
                display.add(label, total: layer.size, cached: true)
                continue
            }
            guard client != nil else { throw missing("layer \(number + 1)/\(layers.count) \(digest.short)") }
            seen.insert(digest)
            wanted.append((display.add(label, total: layer.size), digest, layer.size))
        }
        guard let client, !wanted.isEmpty else { return 0 }
        var total: Int64 = 0
        for item in wanted {
            let (sum, overflow) = total.addingReportingOverflow(item.size)
            guard !overflow else {
                throw HostileInputError("\(displayName): its layers' sizes add up past 2^63 bytes")
            }
            total = sum
        }
        try checkSpace(for: total)
        let queue = wanted
        notes.display = display
        defer { notes.display = nil }
        display.start()
        let repository = self.repository, staging = self.staging.path, cache = self.cache
        try Blocking.run {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var pending = queue[...]
                func startNext() {
                    guard let item = pending.popFirst() else { return }
                    group.addTask {
                        let path = staging + "/blob-" + item.digest.hex
                        do {
                            try await client.download(
                                repository: repository, digest: item.digest, size: item.size, to: path
                            ) { display.update(item.index, bytes: $0) }
                            TestTrap.reach("pull-blob")
                            try cache.publish(path, as: item.digest)
                        } catch {
                            unlink(path)
                            throw error
                        }
                        display.finish(item.index)
                    }
                }
                for _ in 0..<min(jobs, queue.count) { startNext() }
                while try await group.next() != nil { startNext() }
            }
        }
        display.end()
        return display.downloadedBytes
    }
}

extension RegistryBlobStore {
    /// Refuses a pull that cannot fit: the layers' sizes come from the manifest, and a disk filled
    /// halfway helps nobody.
    func checkSpace(for bytes: Int64) throws {
        var info = statvfs()
        guard statvfs(cache.root, &info) == 0 else { return }
        let (product, overflow) = UInt64(info.f_bavail).multipliedReportingOverflow(by: UInt64(info.f_frsize))
        let free = overflow ? Int64.max : Int64(clamping: product)
        guard bytes <= free else {
            throw InputError(
                "\(displayName) needs \(ProgressReporter.bytes(bytes)) for its layers, and the cache \(cache.root) has \(ProgressReporter.bytes(free)) free",
                hint: "free space there, or point --cache-dir at a larger disk")
        }
    }
}

/// Where a pull's notes (a retry, a resumed blob) go: through the transfer display while it draws,
/// so that its lines stay in place, else to the log.
final class NoteSink: @unchecked Sendable {
    let logger: Logger
    private let lock = NSLock()
    private var current: TransferProgress?

    init(logger: Logger) { self.logger = logger }

    var display: TransferProgress? {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }

    func post(_ text: String) {
        if let display { display.message("warning: " + text) } else { logger.warning("\(text)") }
    }
}
